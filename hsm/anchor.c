/* The journal's anchor in the HSM (hsm/anchor.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "hsm/anchor.h"
#include "hsm_int.h"
#include "imprint/log.h"

#define ANCHOR_LABEL "imprint-journal-anchor:" /* PERSISTED */
#define ANCHOR_TEXT "imprint-journal-anchor v1" /* PERSISTED */
#define ANCHOR_MAX_OBJS 256 /* two normally; more only where destroys kept failing */

static void label_of(const char *station_id, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s", ANCHOR_LABEL, station_id ? station_id : "");
}

/*
 * The two forms of the object: a data object (CKO_DATA, the label, the
 * text in CKA_VALUE), and, on a token that stores no data objects (NSS
 * softoken answers CKR_ATTRIBUTE_VALUE_INVALID), a generic secret key of no
 * use (every usage false, not extractable) whose CKA_ID is the label and
 * whose CKA_LABEL is the text.
 */
enum form { FORM_DATA, FORM_KEY };

static imp_err find_form(struct hsm_session *s, enum form f, const char *label,
			 CK_OBJECT_HANDLE *h, CK_ULONG cap, CK_ULONG *n)
{
	struct hsm_tmpl t = { .n = 0 };
	imp_err rc, rc2;

	hsm_tmpl_ulong(&t, CKA_CLASS, f == FORM_DATA ? CKO_DATA : CKO_SECRET_KEY);
	hsm_tmpl_bool(&t, CKA_TOKEN, 1);
	hsm_tmpl_bytes(&t, f == FORM_DATA ? CKA_LABEL : CKA_ID, label, strlen(label));
	*n = 0;
	rc = P11(s->fl, C_FindObjectsInit, s->sh, t.a, t.n);
	if (rc != IMP_OK)
		return rc;
	rc = P11(s->fl, C_FindObjects, s->sh, h, cap, n);
	rc2 = P11(s->fl, C_FindObjectsFinal, s->sh);
	return rc != IMP_OK ? rc : rc2;
}

/* Every object of both forms: h[0..*n), form[i] the form of h[i]. */
static imp_err find_all(struct hsm_session *s, const char *label, CK_OBJECT_HANDLE *h,
			enum form *form, CK_ULONG *n)
{
	CK_ULONG nd = 0, nk = 0;
	imp_err rc = find_form(s, FORM_DATA, label, h, ANCHOR_MAX_OBJS, &nd);

	if (rc == IMP_OK)
		rc = find_form(s, FORM_KEY, label, h + nd, ANCHOR_MAX_OBJS - nd, &nk);
	for (CK_ULONG i = 0; i < nd + nk; i++)
		form[i] = i < nd ? FORM_DATA : FORM_KEY;
	*n = nd + nk;
	if (rc == IMP_OK && *n == ANCHOR_MAX_OBJS)
		IMP_WARN("hsm: %u journal anchor objects of %s on token \"%s\", the most read: the "
			 "newest may be among those not read; remove the older ones", ANCHOR_MAX_OBJS,
			 label, s->h->token_label);
	return rc;
}

bool hsm_anchor_key_form(const struct hsm_obj_info *o)
{
	return o->cls == HSM_CLASS_SECRET_KEY && o->key_type == CKK_GENERIC_SECRET &&
	       !o->extractable && !o->sign && !o->verify && !o->derive && !o->wrap &&
	       !o->unwrap && !o->encrypt && !o->decrypt && o->id_len > strlen(ANCHOR_LABEL) &&
	       memcmp(o->id, ANCHOR_LABEL, strlen(ANCHOR_LABEL)) == 0;
}

static bool parse(const char *v, size_t n, struct hsm_anchor *a)
{
	char buf[256], head[65];
	unsigned long long counter, seq, reserved = 0;
	int got;

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, v, n);
	buf[n] = '\0';
	got = sscanf(buf, ANCHOR_TEXT " %llu %llu %64s %llu", &counter, &seq, head, &reserved);
	if (got < 3 || (strlen(head) != 64 && !(seq == 0 && strcmp(head, "-") == 0)))
		return false;
	a->serial_counter = counter;
	a->seq = seq;
	if (strcmp(head, "-") == 0)
		head[0] = '\0';
	memcpy(a->head, head, sizeof(a->head));
	a->reserved = got == 4 ? reserved : 0;
	return true;
}

static bool higher(const struct hsm_anchor *x, const struct hsm_anchor *y)
{
	return x->seq > y->seq || (x->seq == y->seq && x->serial_counter > y->serial_counter);
}

/* x with each part raised to y's where y's is higher. */
static void merge(struct hsm_anchor *x, const struct hsm_anchor *y)
{
	if (!y->found)
		return;
	if (higher(y, x)) {
		x->seq = y->seq;
		x->serial_counter = y->serial_counter;
		memcpy(x->head, y->head, sizeof(x->head));
	}
	if (y->reserved > x->reserved)
		x->reserved = y->reserved;
}

/* Read every object; *best the highest; handles in h (count *n). */
static imp_err read_all(struct hsm_session *s, const char *label, struct hsm_anchor *best,
			CK_OBJECT_HANDLE *h, CK_ULONG *n)
{
	enum form form[ANCHOR_MAX_OBJS];
	imp_err rc;

	memset(best, 0, sizeof(*best));
	rc = find_all(s, label, h, form, n);
	if (rc != IMP_OK)
		return rc;
	for (CK_ULONG i = 0; i < *n; i++) {
		char v[256];
		CK_ATTRIBUTE at = { form[i] == FORM_DATA ? CKA_VALUE : CKA_LABEL, v, sizeof(v) };
		struct hsm_anchor one = { 0 };

		CK_RV rv = P11_CALL(s->fl, C_GetAttributeValue, s->sh, h[i], &at, 1);

		/* Another station process on the token (a second station on the
		 * data directory, `export --follow`) replaced it since the find:
		 * nothing is wrong. */
		if (rv == CKR_OBJECT_HANDLE_INVALID ||
		    hsm_p11_result("C_GetAttributeValue", rv, CKR_OK) != IMP_OK)
			continue;
		if (!parse(v, at.ulValueLen, &one)) {
			IMP_WARN("hsm: a journal anchor object on token \"%s\" is not readable; "
				 "ignored", s->h->token_label);
			continue;
		}
		one.found = true;
		if (!best->found)
			*best = one;
		else
			merge(best, &one);
	}
	return IMP_OK;
}

imp_err hsm_anchor_get(struct hsm_session *s, const char *station_id, struct hsm_anchor *out)
{
	CK_OBJECT_HANDLE h[ANCHOR_MAX_OBJS];
	CK_ULONG n;
	char label[128];

	label_of(station_id, label, sizeof(label));
	return read_all(s, label, out, h, &n);
}

imp_err hsm_anchor_put(struct hsm_session *s, const char *station_id,
		       const struct hsm_anchor *a)
{
	CK_OBJECT_HANDLE h[ANCHOR_MAX_OBJS], nh;
	CK_ULONG n;
	struct hsm_anchor cur, v;
	struct hsm_tmpl t = { .n = 0 };
	CK_RV rv;
	char label[128], value[200];
	int len;
	imp_err rc;

	label_of(station_id, label, sizeof(label));
	rc = read_all(s, label, &cur, h, &n);
	if (rc != IMP_OK)
		return rc;
	v = *a;
	v.found = true;
	merge(&v, &cur);
	if (cur.found && !higher(&v, &cur) && v.reserved == cur.reserved)
		return IMP_OK;
	/* A reservation before any checkpoint has no head yet: "-". */
	len = snprintf(value, sizeof(value), ANCHOR_TEXT " %" PRIu64 " %" PRIu64 " %s %" PRIu64,
		       v.serial_counter, v.seq, v.head[0] ? v.head : "-", v.reserved);
	hsm_tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	hsm_tmpl_bool(&t, CKA_TOKEN, 1);
	hsm_tmpl_bool(&t, CKA_PRIVATE, 1);
	hsm_tmpl_bool(&t, CKA_MODIFIABLE, 0);
	hsm_tmpl_bytes(&t, CKA_LABEL, label, strlen(label));
	hsm_tmpl_bytes(&t, CKA_APPLICATION, "imprint", 7);
	hsm_tmpl_bytes(&t, CKA_VALUE, value, (size_t)len);
	rv = P11_CALL(s->fl, C_CreateObject, s->sh, t.a, t.n, &nh);
	if (rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT ||
	    rv == CKR_ATTRIBUTE_TYPE_INVALID) {
		/* No data objects on this token: the key form. Its value is the
		 * text's digest: NSS hands back the existing object for a key
		 * of the same value instead of making a second one. */
		uint8_t none[SHA256_DIGEST_LENGTH];

		SHA256((const uint8_t *)value, (size_t)len, none);

		t.n = 0;
		hsm_tmpl_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
		hsm_tmpl_ulong(&t, CKA_KEY_TYPE, CKK_GENERIC_SECRET);
		hsm_tmpl_bool(&t, CKA_TOKEN, 1);
		hsm_tmpl_bool(&t, CKA_PRIVATE, 1);
		hsm_tmpl_bool(&t, CKA_SENSITIVE, 1);
		hsm_tmpl_bool(&t, CKA_EXTRACTABLE, 0);
		hsm_tmpl_bool(&t, CKA_SIGN, 0);
		hsm_tmpl_bool(&t, CKA_VERIFY, 0);
		hsm_tmpl_bool(&t, CKA_ENCRYPT, 0);
		hsm_tmpl_bool(&t, CKA_DECRYPT, 0);
		hsm_tmpl_bool(&t, CKA_WRAP, 0);
		hsm_tmpl_bool(&t, CKA_UNWRAP, 0);
		hsm_tmpl_bool(&t, CKA_DERIVE, 0);
		hsm_tmpl_bytes(&t, CKA_ID, label, strlen(label));
		hsm_tmpl_bytes(&t, CKA_LABEL, value, (size_t)len);
		hsm_tmpl_bytes(&t, CKA_VALUE, none, sizeof(none));
		rv = P11_CALL(s->fl, C_CreateObject, s->sh, t.a, t.n, &nh);
	}
	rc = hsm_p11_result("C_CreateObject", rv, CKR_OK);
	if (rc != IMP_OK)
		return rc;
	/* The new value exists: the older ones can go. Another station process
	 * that read the same ones may have destroyed them already: that is
	 * their end too, not an error. */
	for (CK_ULONG i = 0; i < n; i++) {
		if (h[i] == nh)
			continue;
		rv = P11_CALL(s->fl, C_DestroyObject, s->sh, h[i]);
		/* Left behind, an older value only costs a read: the highest counts. */
		if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID)
			IMP_WARN("hsm: an older journal anchor object on token \"%s\" was not "
				 "removed (C_DestroyObject: %s); the newest value counts",
				 s->h->token_label, hsm_ckr_name(rv));
	}
	return IMP_OK;
}
