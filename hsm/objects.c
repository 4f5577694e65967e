/*
 * Objects: find by label / id / RFC 7512 URI, list, read attributes,
 * destroy, store certificates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <p11-kit/uri.h>

#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

static const struct {
	enum hsm_class cls;
	CK_OBJECT_CLASS ck;
	const char *name; /* RFC 7512 "type" values where one exists */
} classes[] = {
	{ HSM_CLASS_PRIVATE_KEY, CKO_PRIVATE_KEY, "private" },
	{ HSM_CLASS_PUBLIC_KEY, CKO_PUBLIC_KEY, "public" },
	{ HSM_CLASS_SECRET_KEY, CKO_SECRET_KEY, "secret-key" },
	{ HSM_CLASS_CERTIFICATE, CKO_CERTIFICATE, "cert" },
	{ HSM_CLASS_DATA, CKO_DATA, "data" },
};

const char *hsm_class_name(enum hsm_class c)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(classes); i++)
		if (classes[i].cls == c)
			return classes[i].name;
	return c == HSM_CLASS_ANY ? "any" : "other";
}

static enum hsm_class class_from_ck(CK_OBJECT_CLASS ck)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(classes); i++)
		if (classes[i].ck == ck)
			return classes[i].cls;
	return HSM_CLASS_OTHER;
}

static CK_OBJECT_CLASS class_to_ck(enum hsm_class c)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(classes); i++)
		if (classes[i].cls == c)
			return classes[i].ck;
	return (CK_OBJECT_CLASS)~0UL;
}

enum { B_TOKEN, B_PRIVATE, B_MODIFIABLE, B_SENSITIVE, B_EXTRACTABLE, B_ALWAYS_SENSITIVE,
       B_NEVER_EXTRACTABLE, B_SIGN, B_VERIFY, B_DERIVE, B_WRAP, B_UNWRAP, B_ENCRYPT,
       B_DECRYPT, B__COUNT };

static const CK_ATTRIBUTE_TYPE bool_attrs[B__COUNT] = {
	CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE, CKA_SENSITIVE, CKA_EXTRACTABLE,
	CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_SIGN, CKA_VERIFY, CKA_DERIVE,
	CKA_WRAP, CKA_UNWRAP, CKA_ENCRYPT, CKA_DECRYPT,
};

/* hsm_object_info, with the token's answer in *rv: a caller that can do
 * without an object the token cannot describe looks at it first. */
static imp_err object_info(struct hsm_session *s, hsm_obj o, struct hsm_obj_info *out,
			   CK_RV *rv)
{
	CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)~0UL;
	CK_KEY_TYPE kt = (CK_KEY_TYPE)~0UL;
	CK_BBOOL b[B__COUNT];
	char label[256];
	CK_ATTRIBUTE a[4 + B__COUNT] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_LABEL, label, sizeof(label) },
		{ CKA_ID, out->id, sizeof(out->id) },
	};
	imp_err rc;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < B__COUNT; i++) {
		b[i] = CK_FALSE;
		a[4 + i].type = bool_attrs[i];
		a[4 + i].pValue = &b[i];
		a[4 + i].ulValueLen = sizeof(b[i]);
	}
	*rv = P11_CALL(s->fl, C_GetAttributeValue, s->sh, o, a, IMP_ARRAY_SIZE(a));
	if (*rv == CKR_OBJECT_HANDLE_INVALID || *rv == CKR_ATTRIBUTE_VALUE_INVALID)
		return IMP_ERR_HSM; /* the caller says it, or does without it */
	rc = hsm_p11_result("C_GetAttributeValue", *rv, HSM_RV_ATTR_PARTIAL);
	if (rc != IMP_OK)
		return rc;
	out->handle = o;
	out->cls = a[0].ulValueLen == sizeof(cls) ? class_from_ck(cls) : HSM_CLASS_OTHER;
	out->key_type = a[1].ulValueLen == sizeof(kt) ? kt : ~0UL;
	if (a[2].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
		size_t n = a[2].ulValueLen < HSM_LABEL_MAX ? a[2].ulValueLen : HSM_LABEL_MAX;

		memcpy(out->label, label, n);
		out->label[n] = '\0';
	}
	out->id_len = a[3].ulValueLen == CK_UNAVAILABLE_INFORMATION ? 0 : a[3].ulValueLen;
#define BOOL(i) (a[4 + (i)].ulValueLen == sizeof(CK_BBOOL) && b[i] == CK_TRUE)
	out->token = BOOL(B_TOKEN);
	out->private_ = BOOL(B_PRIVATE);
	out->modifiable = BOOL(B_MODIFIABLE);
	out->sensitive = BOOL(B_SENSITIVE);
	out->extractable = BOOL(B_EXTRACTABLE);
	out->always_sensitive = BOOL(B_ALWAYS_SENSITIVE);
	out->never_extractable = BOOL(B_NEVER_EXTRACTABLE);
	out->sign = BOOL(B_SIGN);
	out->verify = BOOL(B_VERIFY);
	out->derive = BOOL(B_DERIVE);
	out->wrap = BOOL(B_WRAP);
	out->unwrap = BOOL(B_UNWRAP);
	out->encrypt = BOOL(B_ENCRYPT);
	out->decrypt = BOOL(B_DECRYPT);
#undef BOOL
	return IMP_OK;
}

imp_err hsm_object_info(struct hsm_session *s, hsm_obj o, struct hsm_obj_info *out)
{
	CK_RV rv = CKR_OK;
	imp_err rc = object_info(s, o, out, &rv);

	if (rc != IMP_OK && (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID))
		rc = hsm_p11_result("C_GetAttributeValue", rv, CKR_OK);
	return rc;
}

/* Find up to `max` handles matching template t; *found receives the count
 * (capped at max). */
static imp_err find_handles(struct hsm_session *s, CK_ATTRIBUTE *t, CK_ULONG tn,
			    CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *found)
{
	imp_err rc, rc2;

	*found = 0;
	rc = P11(s->fl, C_FindObjectsInit, s->sh, t, tn);
	if (rc != IMP_OK)
		return rc;
	rc = P11(s->fl, C_FindObjects, s->sh, out, max, found);
	rc2 = P11(s->fl, C_FindObjectsFinal, s->sh);
	return rc != IMP_OK ? rc : rc2;
}

static imp_err find_one(struct hsm_session *s, CK_ATTRIBUTE *t, CK_ULONG tn, const char *what,
			hsm_obj *out)
{
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n;
	imp_err rc;

	rc = find_handles(s, t, tn, h, 2, &n);
	if (rc != IMP_OK)
		return rc;
	if (n == 0) {
		/* Absence is often expected (init checks first); callers say what it means. */
		IMP_DEBUG("no object %s on token \"%s\"", what, s->h->token_label);
		return IMP_ERR_NOT_FOUND;
	}
	if (n > 1) {
		IMP_ERROR("several objects match %s on token \"%s\": name one by its id too",
			  what, s->h->token_label);
		return IMP_ERR_CONFIG;
	}
	*out = h[0];
	return IMP_OK;
}

imp_err hsm_find(struct hsm_session *s, enum hsm_class cls, const char *label,
		 const uint8_t *id, size_t id_len, hsm_obj *out)
{
	struct hsm_tmpl t = { .n = 0 };
	char what[HSM_LABEL_MAX + 64];

	if (cls != HSM_CLASS_ANY)
		hsm_tmpl_ulong(&t, CKA_CLASS, class_to_ck(cls));
	if (label)
		hsm_tmpl_bytes(&t, CKA_LABEL, label, strlen(label));
	if (id)
		hsm_tmpl_bytes(&t, CKA_ID, id, id_len);
	snprintf(what, sizeof(what), "%s%s%s (%s)", label ? "labelled \"" : "",
		 label ? label : "", label ? "\"" : "with that id", hsm_class_name(cls));
	return find_one(s, t.a, t.n, what, out);
}

imp_err hsm_find_uri(struct hsm_session *s, const char *uri_str, hsm_obj *out)
{
	P11KitUri *uri = NULL;
	CK_TOKEN_INFO ti;
	CK_ATTRIBUTE *attrs;
	CK_ULONG n = 0;
	imp_err rc;
	int r;

	uri = p11_kit_uri_new();
	if (!uri)
		return IMP_ERR_NOMEM;
	r = p11_kit_uri_parse(uri_str, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, uri);
	if (r != P11_KIT_URI_OK) {
		IMP_ERROR("invalid pkcs11 uri %s: %s", uri_str, p11_kit_uri_message(r));
		rc = IMP_ERR_USAGE;
		goto cleanup;
	}
	if (p11_kit_uri_any_unrecognized(uri)) {
		IMP_ERROR("pkcs11 uri %s has attributes imprint does not know: use object, id, "
			  "type, token, serial, manufacturer, model", uri_str);
		rc = IMP_ERR_USAGE;
		goto cleanup;
	}
	rc = hsm_token_info_raw(s->h, &ti);
	if (rc != IMP_OK)
		goto cleanup;
	if (!p11_kit_uri_match_token_info(uri, &ti)) {
		IMP_ERROR("pkcs11 uri %s names another token than \"%s\"", uri_str,
			  s->h->token_label);
		rc = IMP_ERR_NOT_FOUND;
		goto cleanup;
	}
	attrs = p11_kit_uri_get_attributes(uri, &n);
	rc = find_one(s, attrs, n, uri_str, out);
cleanup:
	p11_kit_uri_free(uri);
	return rc;
}

imp_err hsm_list(struct hsm_session *s, enum hsm_class cls, struct hsm_obj_info **out,
		 size_t *n_out)
{
	struct hsm_tmpl t = { .n = 0 };
	CK_OBJECT_HANDLE *h = NULL;
	struct hsm_obj_info *infos = NULL;
	CK_ULONG n = 0, k = 0, cap = 0, got;
	imp_err rc, rc2;

	*out = NULL;
	*n_out = 0;
	if (cls != HSM_CLASS_ANY)
		hsm_tmpl_ulong(&t, CKA_CLASS, class_to_ck(cls));
	rc = P11(s->fl, C_FindObjectsInit, s->sh, t.a, t.n);
	if (rc != IMP_OK)
		return rc;
	do {
		if (cap - n < 64) {
			CK_OBJECT_HANDLE *nh = realloc(h, (cap + 256) * sizeof(*h));

			if (!nh) {
				rc = IMP_ERR_NOMEM;
				break;
			}
			h = nh;
			cap += 256;
		}
		rc = P11(s->fl, C_FindObjects, s->sh, h + n, 64, &got);
		n += got;
	} while (rc == IMP_OK && got > 0);
	rc2 = P11(s->fl, C_FindObjectsFinal, s->sh);
	if (rc == IMP_OK)
		rc = rc2;
	if (rc != IMP_OK)
		goto cleanup;
	infos = calloc(n ? n : 1, sizeof(*infos));
	if (!infos) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		CK_RV rv = CKR_OK;

		rc = object_info(s, h[i], &infos[k], &rv);
		/* Gone since the find (another station process destroyed it), or
		 * an object the token cannot describe (SoftHSM2 loads an object
		 * file cut short after its header as an object without
		 * attributes, and the token guard warns about that file): neither
		 * is one imprint uses, and neither may stop the listing. */
		if (rc != IMP_OK && rv == CKR_OBJECT_HANDLE_INVALID)
			continue;
		if (rc != IMP_OK && rv == CKR_ATTRIBUTE_VALUE_INVALID) {
			IMP_WARN("hsm: object %lu on the token has no readable attributes (a token "
				 "file cut short: the warning about it names it); left out",
				 (unsigned long)h[i]);
			continue;
		}
		if (rc != IMP_OK)
			goto cleanup;
		k++;
	}
	*out = infos;
	*n_out = k;
	infos = NULL;
cleanup:
	free(infos);
	free(h);
	return rc;
}

imp_err hsm_destroy(struct hsm_session *s, hsm_obj o)
{
	return P11(s->fl, C_DestroyObject, s->sh, o);
}

imp_err hsm_cert_store(struct hsm_session *s, const uint8_t *der, size_t n, const char *label,
		       const uint8_t *id, size_t id_len, hsm_obj *out)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	unsigned char *subj = NULL, *iss = NULL, *ser = NULL;
	int subj_len, iss_len, ser_len;
	struct hsm_tmpl t = { .n = 0 };
	CK_OBJECT_HANDLE h;
	imp_err rc;

	x = d2i_X509(NULL, &p, (long)n);
	if (!x || p != der + n) {
		IMP_ERROR("not a DER X.509 certificate");
		rc = IMP_ERR_CRYPTO;
		goto cleanup;
	}
	subj_len = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	iss_len = i2d_X509_NAME(X509_get_issuer_name(x), &iss);
	ser_len = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &ser);
	if (subj_len <= 0 || iss_len <= 0 || ser_len <= 0) {
		rc = IMP_ERR_CRYPTO;
		goto cleanup;
	}
	hsm_tmpl_ulong(&t, CKA_CLASS, CKO_CERTIFICATE);
	hsm_tmpl_ulong(&t, CKA_CERTIFICATE_TYPE, CKC_X_509);
	hsm_tmpl_bool(&t, CKA_TOKEN, 1);
	hsm_tmpl_bool(&t, CKA_PRIVATE, 0);
	hsm_tmpl_bytes(&t, CKA_VALUE, der, n);
	hsm_tmpl_bytes(&t, CKA_SUBJECT, subj, (size_t)subj_len);
	hsm_tmpl_bytes(&t, CKA_ISSUER, iss, (size_t)iss_len);
	hsm_tmpl_bytes(&t, CKA_SERIAL_NUMBER, ser, (size_t)ser_len);
	if (label)
		hsm_tmpl_bytes(&t, CKA_LABEL, label, strlen(label));
	if (id && id_len)
		hsm_tmpl_bytes(&t, CKA_ID, id, id_len);
	rc = P11(s->fl, C_CreateObject, s->sh, t.a, t.n, &h);
	if (rc == IMP_OK)
		*out = h;
cleanup:
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	X509_free(x);
	return rc;
}

imp_err hsm_object_value(struct hsm_session *s, hsm_obj o, uint8_t **out, size_t *n)
{
	CK_ATTRIBUTE a = { CKA_VALUE, NULL, 0 };
	uint8_t *buf = NULL;
	imp_err rc;

	*out = NULL;
	*n = 0;
	rc = P11(s->fl, C_GetAttributeValue, s->sh, o, &a, 1);
	if (rc != IMP_OK)
		return rc;
	buf = malloc(a.ulValueLen ? a.ulValueLen : 1);
	if (!buf)
		return IMP_ERR_NOMEM;
	a.pValue = buf;
	rc = P11(s->fl, C_GetAttributeValue, s->sh, o, &a, 1);
	if (rc != IMP_OK) {
		free(buf);
		return rc;
	}
	*out = buf;
	*n = a.ulValueLen;
	return IMP_OK;
}

/* A copy may raise CKA_SENSITIVE and lower CKA_EXTRACTABLE, never the
 * reverse (PKCS#11 3.0, 4.1.3 and 4.4), and gains no use: anything else is
 * a token bug. */
static bool copy_as_guarded(const struct hsm_obj_info *src, const struct hsm_obj_info *cp)
{
	return !cp->token && cp->cls == src->cls && cp->private_ == src->private_ &&
	       (cp->sensitive || !src->sensitive) && (!cp->extractable || src->extractable) &&
	       cp->sign == src->sign && cp->derive == src->derive &&
	       (!cp->decrypt || src->decrypt) && (!cp->unwrap || src->unwrap) &&
	       (!cp->encrypt || src->encrypt) && (!cp->wrap || src->wrap) &&
	       (!cp->verify || src->verify);
}

/* hsm_object_info reads an attribute the token does not give as false,
 * which for CKA_TOKEN and CKA_EXTRACTABLE is the answer the guard wants:
 * the copy's own values of the three, read strictly. */
static bool copy_flags_read(struct hsm_session *s, CK_OBJECT_HANDLE h)
{
	CK_BBOOL b[3] = { CK_TRUE, CK_FALSE, CK_TRUE };
	CK_ATTRIBUTE a[3] = {
		{ CKA_TOKEN, &b[0], sizeof(b[0]) },
		{ CKA_SENSITIVE, &b[1], sizeof(b[1]) },
		{ CKA_EXTRACTABLE, &b[2], sizeof(b[2]) },
	};

	if (P11(s->fl, C_GetAttributeValue, s->sh, h, a, 3) != IMP_OK)
		return false;
	for (size_t i = 0; i < 3; i++)
		if (a[i].ulValueLen != sizeof(CK_BBOOL))
			return false;
	return true;
}

imp_err hsm_key_session_copy(struct hsm_session *s, hsm_obj key, hsm_obj *copy)
{
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE t[] = { { CKA_TOKEN, &no, sizeof(no) } };
	struct hsm_obj_info src, cp;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	imp_err rc;

	*copy = HSM_OBJ_NONE;
	if (!s->fl->C_CopyObject)
		return IMP_ERR_UNSUPPORTED;
	hsm_p11_quiet(true);
	rc = hsm_object_info(s, key, &src);
	hsm_p11_quiet(false);
	if (rc != IMP_OK) {
		IMP_DEBUG("token \"%s\": no attributes of the key to copy (%s): signing with "
			  "the token object", s->h ? s->h->token_label : "?", imp_err_name(rc));
		return IMP_ERR_UNSUPPORTED;
	}
	if (!src.token || (src.cls != HSM_CLASS_PRIVATE_KEY && src.cls != HSM_CLASS_SECRET_KEY)) {
		IMP_ERROR("only a token key is copied into a session");
		return IMP_ERR_USAGE;
	}
	/* A refusal is an answer (CKA_COPYABLE false, or no C_CopyObject):
	 * the caller goes on with the token object. */
	hsm_p11_quiet(true);
	rc = P11(s->fl, C_CopyObject, s->sh, key, t, IMP_ARRAY_SIZE(t), &h);
	if (rc == IMP_OK)
		rc = hsm_object_info(s, h, &cp);
	if (rc == IMP_OK && !copy_flags_read(s, h))
		rc = IMP_ERR_HSM;
	hsm_p11_quiet(false);
	if (rc != IMP_OK) {
		IMP_DEBUG("token \"%s\" keeps '%s' to itself (%s): signing with the token object",
			  s->h ? s->h->token_label : "?", src.label, imp_err_name(rc));
		if (h != CK_INVALID_HANDLE)
			(void)hsm_destroy(s, h);
		return IMP_ERR_UNSUPPORTED;
	}
	if (!copy_as_guarded(&src, &cp)) {
		IMP_WARN("token \"%s\" copied '%s' with weaker attributes (sensitive %d->%d, "
			 "extractable %d->%d): the copy is destroyed, the token object used",
			 s->h ? s->h->token_label : "?", src.label, src.sensitive, cp.sensitive,
			 src.extractable, cp.extractable);
		(void)hsm_destroy(s, h);
		return IMP_ERR_UNSUPPORTED;
	}
	*copy = h;
	return IMP_OK;
}
