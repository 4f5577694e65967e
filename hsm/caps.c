/*
 * Key modes: what each needs from the token (hsm.h, docs/HSM.md), checked
 * against C_GetMechanismList / C_GetMechanismInfo and the token flags, plus
 * a probe for the attribute combinations a mechanism list cannot show.
 */
#include <stdio.h>
#include <string.h>

#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define MODE_COUNT 3
#define M_ALL HSM_MODES_ALL
#define M_WRAP (HSM_MODE_HSM | HSM_MODE_PSK)

enum req_kind {
	REQ_MECH,       /* mechanism with flags and a key size in its range */
	REQ_TOKEN_FLAG, /* token flag set */
	REQ_TOKEN_NOT,  /* token flag clear */
	REQ_PROBE,      /* a probe (below) succeeds */
};

enum size_unit { SZ_NONE, SZ_EC_BITS, SZ_AES_BYTES };

enum probe { PROBE_EC_WRAPPABLE = 1u << 0, PROBE_AES_WRAPPABLE = 1u << 1 };

struct req {
	unsigned modes;        /* enum hsm_mode bits that need it */
	enum req_kind kind;
	CK_MECHANISM_TYPE mech; /* REQ_MECH */
	CK_MECHANISM_TYPE alt;  /* REQ_MECH: another mechanism that will do, 0: none */
	CK_FLAGS flags;         /* REQ_MECH: CKF_ bits; REQ_TOKEN_*: token flag;
				 * REQ_PROBE: enum probe */
	enum size_unit unit;
	CK_ULONG size;          /* 256 bits or 32 bytes */
	const char *what;       /* the missing item, for messages */
};

static const struct req reqs[] = {
	{ M_ALL, REQ_MECH, CKM_EC_KEY_PAIR_GEN, 0, CKF_GENERATE_KEY_PAIR, SZ_EC_BITS, 256,
	  "CKM_EC_KEY_PAIR_GEN (generate key pair, P-256)" },
	{ M_ALL, REQ_MECH, CKM_ECDSA, 0, CKF_SIGN, SZ_EC_BITS, 256, "CKM_ECDSA (sign, P-256)" },
	{ M_ALL, REQ_TOKEN_FLAG, 0, 0, CKF_RNG, SZ_NONE, 0, "a random generator (CKF_RNG)" },
	{ M_ALL, REQ_TOKEN_NOT, 0, 0, CKF_WRITE_PROTECTED, SZ_NONE, 0,
	  "a writable token (it is CKF_WRITE_PROTECTED)" },
	{ M_WRAP, REQ_MECH, CKM_ECDH1_DERIVE, 0, CKF_DERIVE, SZ_EC_BITS, 256,
	  "CKM_ECDH1_DERIVE (derive, P-256)" },
	{ M_WRAP, REQ_MECH, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD, CKF_WRAP, SZ_AES_BYTES, 32,
	  "CKM_AES_KEY_WRAP_KWP or CKM_AES_KEY_WRAP_PAD (wrap, AES-256)" },
	{ HSM_MODE_HSM, REQ_PROBE, 0, 0, PROBE_EC_WRAPPABLE, SZ_NONE, 0,
	  "EC session keys that are sensitive and extractable (wrap only)" },
	{ HSM_MODE_PSK, REQ_MECH, CKM_AES_KEY_GEN, 0, CKF_GENERATE, SZ_AES_BYTES, 32,
	  "CKM_AES_KEY_GEN (generate, AES-256)" },
	{ HSM_MODE_PSK, REQ_MECH, CKM_AES_ECB_ENCRYPT_DATA, 0, CKF_DERIVE, SZ_NONE, 0,
	  "CKM_AES_ECB_ENCRYPT_DATA (derive)" },
	{ HSM_MODE_PSK, REQ_MECH, CKM_AES_CMAC, 0, CKF_SIGN, SZ_AES_BYTES, 32,
	  "CKM_AES_CMAC (sign, AES-256)" },
	{ HSM_MODE_PSK, REQ_PROBE, 0, 0, PROBE_AES_WRAPPABLE, SZ_NONE, 0,
	  "AES session keys that are sensitive and extractable (wrap only)" },
};

static const char *const mode_names[MODE_COUNT] = { "device", "hsm", "psk" };

const char *hsm_mode_name(enum hsm_mode mode)
{
	for (unsigned i = 0; i < MODE_COUNT; i++)
		if (mode == 1u << i)
			return mode_names[i];
	return "?";
}

static const struct hsm_mech_cache *mech_find(const struct hsm *h, CK_MECHANISM_TYPE type)
{
	for (size_t i = 0; i < h->n_mechs; i++)
		if (h->mechs[i].type == type)
			return &h->mechs[i];
	return NULL;
}

/*
 * PKCS#11 gives EC sizes in bits and AES sizes in bytes; some tokens give
 * AES in bits, and 0..0 means "not stated". Accept the size in either unit.
 */
static bool size_ok(const struct hsm_mech_cache *m, enum size_unit unit, CK_ULONG size)
{
	CK_ULONG other;

	if (unit == SZ_NONE || (m->min_size == 0 && m->max_size == 0))
		return true;
	other = unit == SZ_EC_BITS ? size / 8 : size * 8;
	return (m->min_size <= size && size <= m->max_size) ||
	       (m->min_size <= other && other <= m->max_size);
}

/*
 * Generate a session object with the combination a mode needs, check it
 * reads back as asked, destroy it. Failures are expected on tokens that
 * cannot do it; they are logged at debug level only, the caller reports.
 */
static bool probe_run(struct hsm *h, enum probe p)
{
	struct hsm_session *s = NULL;
	struct hsm_key_opts o = { HSM_KEY_WRAPPABLE | HSM_KEY_SIGN, "imprint-probe", NULL, 0 };
	struct hsm_obj_info info;
	hsm_obj pub = HSM_OBJ_NONE, key = HSM_OBJ_NONE;
	bool ok = false;
	imp_err rc;

	rc = hsm_session_open(h, &s);
	if (rc != IMP_OK)
		return false;
	hsm_p11_quiet(true);
	if (p == PROBE_EC_WRAPPABLE) {
		rc = hsm_ec_keygen(s, &o, &pub, &key);
	} else {
		o.flags = HSM_KEY_WRAPPABLE | HSM_KEY_SIGN;
		rc = hsm_aes_keygen(s, &o, &key);
	}
	if (rc == IMP_OK)
		rc = hsm_object_info(s, key, &info);
	hsm_p11_quiet(false);
	ok = rc == IMP_OK && info.sensitive && info.extractable && !info.token;
	if (!ok)
		IMP_DEBUG("probe %s on token \"%s\": %s", p == PROBE_EC_WRAPPABLE ? "ec" : "aes",
			  h->token_label, rc != IMP_OK ? imp_err_name(rc) : "attributes differ");
	if (key)
		hsm_destroy(s, key);
	if (pub)
		hsm_destroy(s, pub);
	hsm_session_close(s);
	return ok;
}

/* Is requirement r met? Probes run at most once per struct hsm. */
static bool req_met(struct hsm *h, const struct req *r)
{
	const struct hsm_mech_cache *m;

	switch (r->kind) {
	case REQ_MECH:
		for (int k = 0; k < (r->alt ? 2 : 1); k++) {
			m = mech_find(h, k == 0 ? r->mech : r->alt);
			if (m && (m->flags & r->flags) == r->flags && size_ok(m, r->unit, r->size))
				return true;
		}
		return false;
	case REQ_TOKEN_FLAG:
		return (h->token_flags & r->flags) != 0;
	case REQ_TOKEN_NOT:
		return (h->token_flags & r->flags) == 0;
	case REQ_PROBE:
		if (!(h->probes_done & r->flags)) {
			h->probes_done |= (unsigned)r->flags;
			if (probe_run(h, (enum probe)r->flags))
				h->probes_ok |= (unsigned)r->flags;
		}
		return (h->probes_ok & r->flags) != 0;
	}
	return false;
}

/* What mode i lacks, into buf; true if nothing. Probes only run once every
 * mechanism of the mode is there (no key is generated for a lost cause). */
static bool mode_lacks(struct hsm *h, unsigned i, char *buf, size_t cap)
{
	size_t len = 0;
	bool ok = true;

	buf[0] = '\0';
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 0; k < IMP_ARRAY_SIZE(reqs); k++) {
			const struct req *r = &reqs[k];

			if (!(r->modes & (1u << i)) || (r->kind == REQ_PROBE) != (pass == 1))
				continue;
			if (req_met(h, r))
				continue;
			ok = false;
			if (len < cap)
				len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "",
							r->what);
		}
		if (!ok)
			break;
	}
	return ok;
}

unsigned hsm_modes(struct hsm *h, char missing[3][512])
{
	char scratch[512];
	unsigned modes = 0;

	for (unsigned i = 0; i < MODE_COUNT; i++)
		if (mode_lacks(h, i, missing ? missing[i] : scratch, sizeof(scratch)))
			modes |= 1u << i;
	return modes;
}

imp_err hsm_mode_check(struct hsm *h, enum hsm_mode mode)
{
	char missing[3][512];
	char can[64] = "";
	unsigned modes = hsm_modes(h, missing), idx = 0;
	size_t len = 0;

	if (modes & mode)
		return IMP_OK;
	for (unsigned i = 0; i < MODE_COUNT; i++) {
		if (mode == 1u << i)
			idx = i;
		if (modes & (1u << i))
			len += (size_t)snprintf(can + len, sizeof(can) - len, "%s%s",
						len ? ", " : "", mode_names[i]);
	}
	IMP_ERROR("token \"%s\" cannot do key mode %s: it lacks %s; %s%s%s; nothing was "
		  "touched (docs/HSM.md lists what each mode needs)", h->token_label,
		  mode_names[idx], missing[idx],
		  len ? "key modes this token can do: " : "this token can do no key mode",
		  can, len ? " (set key_mode to one of them, or use another token)" : "");
	return IMP_ERR_UNSUPPORTED;
}
