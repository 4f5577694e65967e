/* The journal's anchor in the HSM (hsm/anchor.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/anchor.h"
#include "hsm_int.h"
#include "imprint/log.h"

#define ANCHOR_LABEL "imprint-journal-anchor:" /* PERSISTED */
#define ANCHOR_TEXT "imprint-journal-anchor v1" /* PERSISTED */
#define ANCHOR_MAX_OBJS 16

static void label_of(const char *station_id, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s", ANCHOR_LABEL, station_id ? station_id : "");
}

static imp_err find_all(struct hsm_session *s, const char *label, CK_OBJECT_HANDLE *h,
			CK_ULONG *n)
{
	struct hsm_tmpl t = { .n = 0 };
	imp_err rc, rc2;

	hsm_tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	hsm_tmpl_bool(&t, CKA_TOKEN, 1);
	hsm_tmpl_bytes(&t, CKA_LABEL, label, strlen(label));
	*n = 0;
	rc = P11(s->fl, C_FindObjectsInit, s->sh, t.a, t.n);
	if (rc != IMP_OK)
		return rc;
	rc = P11(s->fl, C_FindObjects, s->sh, h, ANCHOR_MAX_OBJS, n);
	rc2 = P11(s->fl, C_FindObjectsFinal, s->sh);
	return rc != IMP_OK ? rc : rc2;
}

static bool parse(const char *v, size_t n, struct hsm_anchor *a)
{
	char buf[256], head[65];
	unsigned long long counter, seq;

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, v, n);
	buf[n] = '\0';
	if (sscanf(buf, ANCHOR_TEXT " %llu %llu %64s", &counter, &seq, head) != 3 ||
	    strlen(head) != 64)
		return false;
	a->serial_counter = counter;
	a->seq = seq;
	memcpy(a->head, head, sizeof(a->head));
	return true;
}

static bool higher(const struct hsm_anchor *x, const struct hsm_anchor *y)
{
	return x->seq > y->seq || (x->seq == y->seq && x->serial_counter > y->serial_counter);
}

/* Read every object; *best the highest; handles in h (count *n). */
static imp_err read_all(struct hsm_session *s, const char *label, struct hsm_anchor *best,
			CK_OBJECT_HANDLE *h, CK_ULONG *n)
{
	imp_err rc;

	memset(best, 0, sizeof(*best));
	rc = find_all(s, label, h, n);
	if (rc != IMP_OK)
		return rc;
	for (CK_ULONG i = 0; i < *n; i++) {
		char v[256];
		CK_ATTRIBUTE at = { CKA_VALUE, v, sizeof(v) };
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
		if (!best->found || higher(&one, best))
			*best = one;
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
	struct hsm_anchor cur;
	struct hsm_tmpl t = { .n = 0 };
	char label[128], value[200];
	int len;
	imp_err rc;

	label_of(station_id, label, sizeof(label));
	rc = read_all(s, label, &cur, h, &n);
	if (rc != IMP_OK)
		return rc;
	if (cur.found && !higher(a, &cur))
		return IMP_OK;
	len = snprintf(value, sizeof(value), ANCHOR_TEXT " %" PRIu64 " %" PRIu64 " %s",
		       a->serial_counter, a->seq, a->head);
	hsm_tmpl_ulong(&t, CKA_CLASS, CKO_DATA);
	hsm_tmpl_bool(&t, CKA_TOKEN, 1);
	hsm_tmpl_bool(&t, CKA_PRIVATE, 1);
	hsm_tmpl_bool(&t, CKA_MODIFIABLE, 0);
	hsm_tmpl_bytes(&t, CKA_LABEL, label, strlen(label));
	hsm_tmpl_bytes(&t, CKA_APPLICATION, "imprint", 7);
	hsm_tmpl_bytes(&t, CKA_VALUE, value, (size_t)len);
	rc = P11(s->fl, C_CreateObject, s->sh, t.a, t.n, &nh);
	if (rc != IMP_OK)
		return rc;
	/* The new value exists: the older ones can go. Another station process
	 * that read the same ones may have destroyed them already: that is
	 * their end too, not an error. */
	for (CK_ULONG i = 0; i < n; i++)
		P11_OK_IF(CKR_OBJECT_HANDLE_INVALID, s->fl, C_DestroyObject, s->sh, h[i]);
	return IMP_OK;
}
