/* The members of records (record_int.h, docs/RECORD.md). */
#include <string.h>

#include "imprint/util.h"
#include "record_int.h"

#define M(name, kind, req) { name, sizeof(name) - 1, kind, req, NULL }
#define MOBJ(name, req, sub) { name, sizeof(name) - 1, FMT_MK_OBJ, req, sub }

static const struct fmt_member lock_state[] = {
	M("boot_locked", FMT_MK_BOOL, true),
	M("debug_locked", FMT_MK_BOOL, true),
	M("lifecycle", FMT_MK_STR, true),
	M("verified_at", FMT_MK_STR, true),
};

static const struct fmt_member_table lock_state_members = {
	"record.lock_state", lock_state, IMP_ARRAY_SIZE(lock_state)
};

static const struct fmt_member journal[] = {
	M("event_hash", FMT_MK_HEX64, true),
	M("prev_hash", FMT_MK_HEX64, true),
	M("seq", FMT_MK_INT, true),
};

static const struct fmt_member_table journal_members = {
	"record.journal", journal, IMP_ARRAY_SIZE(journal)
};

/* Matter factory data (docs/MATTER.md): never the passcode or the verifier. */
static const struct fmt_member matter[] = {
	M("discriminator", FMT_MK_INT, true),
	M("product_id", FMT_MK_INT, true),
	M("vendor_id", FMT_MK_INT, true),
	M("verifier_sha256", FMT_MK_HEX64, true),
};

static const struct fmt_member_table matter_members = {
	"record.matter", matter, IMP_ARRAY_SIZE(matter)
};

/*
 * public_key is checked as a JWK by fmt_jwk_to_pkey (jws.c), not here: its
 * members are JWK's (RFC 7517), not the record's.
 */
static const struct fmt_member identity[] = {
	M("chip_uid", FMT_MK_HEX, true),
	M("device_certificate", FMT_MK_STR, false),
	M("device_certificate_sha256", FMT_MK_HEX64, false),
	M("firmware_sha256", FMT_MK_HEX64, false),
	M("fixture", FMT_MK_STR, true),
	M("issued_at", FMT_MK_STR, true),
	MOBJ("journal", true, &journal_members),
	M("kcv", FMT_MK_HEX, false),
	M("key_mode", FMT_MK_STR, true),
	MOBJ("lock_state", true, &lock_state_members),
	MOBJ("matter", false, &matter_members),
	M("operator", FMT_MK_STR, false),
	MOBJ("public_key", false, NULL),
	M("record_id", FMT_MK_STR, true),
	M("record_version", FMT_MK_INT, true),
	M("serial", FMT_MK_STR, true),
	M("sku", FMT_MK_STR, true),
	M("station_id", FMT_MK_STR, true),
	M("type", FMT_MK_STR, true),
};

const struct fmt_member_table fmt_identity_members = {
	"record", identity, IMP_ARRAY_SIZE(identity)
};

static const struct fmt_member revocation[] = {
	M("operator", FMT_MK_STR, false),
	M("reason", FMT_MK_STR, true),
	M("record_id", FMT_MK_STR, false),
	M("record_version", FMT_MK_INT, true),
	M("revoked_at", FMT_MK_STR, true),
	M("serial", FMT_MK_STR, true),
	M("station_id", FMT_MK_STR, false),
	M("type", FMT_MK_STR, true),
};

const struct fmt_member_table fmt_revocation_members = {
	"revocation", revocation, IMP_ARRAY_SIZE(revocation)
};

const struct fmt_member *fmt_member_find(const struct fmt_member_table *t, const char *name,
					 size_t n)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->m[i].len == n && memcmp(t->m[i].name, name, n) == 0)
			return &t->m[i];
	return NULL;
}

bool fmt_is_lower_hex(const char *s, size_t n, size_t want_len)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return want_len ? n == want_len : n > 0 && n % 2 == 0;
}
