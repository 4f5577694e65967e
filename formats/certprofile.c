/*
 * Certificate profiles (formats/certprofile.h): the strict loader of
 * certprofiles/NAME.json, the checks of a profile set, and issuance.
 *
 * Everything that does not depend on the board (basicConstraints,
 * keyUsage, extKeyUsage, CRL distribution points, authorityInfoAccess)
 * is encoded once at load; issuance adds only the subject, the key
 * identifiers and subjectAltName, so a profile costs no more than the
 * fixed roles of x509.c. Extensions are written in one order: BC, KU,
 * EKU, SKI, AKI, SAN, CRLDP, AIA (the default profile's certificates are
 * then byte for byte those of fmt_cert_issue).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "formats/certprofile.h"
#include "formats/config.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "x509_int.h"

#define SUBJECT_MAX 16u
#define SAN_MAX 8u
#define URL_MAX 4u
#define PATH_LEN_MAX 8
#define OID_HW_MODULE_NAME "1.3.6.1.5.5.7.8.4" /* id-on-hardwareModuleName, RFC 4108 5 */

static const char *const role_names[FMT_CP_ROLE_COUNT] = {
	[FMT_CP_ROOT] = "root",
	[FMT_CP_DEVICE_CA] = "device-ca",
	[FMT_CP_RECORD_SIGNING] = "record-signing",
	[FMT_CP_CODE_SIGNING] = "code-signing",
	[FMT_CP_REVOCATION] = "revocation",
	[FMT_CP_DEVICE] = "device",
};

const char *fmt_certprof_role_name(enum fmt_certprof_role role)
{
	return (unsigned)role < FMT_CP_ROLE_COUNT ? role_names[role] : "?";
}

/* keyUsage names (RFC 5280 4.2.1.3) with their bit and FMT_KU_* value. */
static const struct {
	const char *name;
	int bit;
	unsigned mask;
} ku_names[] = {
	{ "digitalSignature", 0, 0x0080u }, { "nonRepudiation", 1, 0x0040u },
	{ "keyEncipherment", 2, 0x0020u },  { "dataEncipherment", 3, 0x0010u },
	{ "keyAgreement", 4, 0x0008u },     { "keyCertSign", 5, 0x0004u },
	{ "cRLSign", 6, 0x0002u },
};

enum { V_SERIAL = 1, V_UID = 2, V_SKU = 4, V_VID = 8, V_PID = 16, V_ORG = 32, V_COUNTRY = 64 };

static const struct {
	const char *ph;
	unsigned bit;
} placeholders[] = {
	{ "{serial}", V_SERIAL }, { "{uid}", V_UID }, { "{sku}", V_SKU },
	{ "{vid}", V_VID },       { "{pid}", V_PID }, { "{org}", V_ORG },
	{ "{country}", V_COUNTRY },
};

enum cp_validity { CP_VAL_CONFIG = 0, CP_VAL_DAYS = 1, CP_VAL_NO_EXPIRY = 2 };

struct cp_attr {
	char *attr; /* as written: a name or a dotted OID */
	char *tmpl;
	bool optional;
};

enum cp_gn { CP_GN_DNS, CP_GN_URI, CP_GN_OTHER_UTF8, CP_GN_HW_MODULE };

struct cp_gname {
	enum cp_gn kind;
	char *tmpl;
	ASN1_OBJECT *type_id;  /* otherName */
	ASN1_OBJECT *hw_type;  /* hardwareModuleName */
	bool hex;              /* hwSerialNum: the bytes the hex digits spell */
};

struct fmt_certprof {
	char *name;
	char *path;
	enum fmt_certprof_role role;
	char *issuer;                 /* profile name; device and device-ca only */
	char *signer[3];              /* root only: record, code, revocation profiles */
	struct cp_attr subject[SUBJECT_MAX];
	size_t nsubject;              /* 0: the configuration's certificate.subject */
	unsigned serial_bytes;
	enum cp_validity vkind;
	unsigned days;                /* effective (CP_VAL_CONFIG: the configuration's) */
	const char *days_key;         /* the configuration key days came from, or NULL */
	bool ca;
	int path_len;                 /* -1: none */
	unsigned ku;
	bool ski, aki;
	X509_EXTENSION *pre[3];       /* BC, KU, EKU */
	size_t npre;
	struct cp_gname san[SAN_MAX];
	size_t nsan;
	bool san_critical;
	X509_EXTENSION *post[2];      /* CRLDP, AIA */
	size_t npost;
	unsigned vars;                /* V_* the templates use */
	char vars_where[64];          /* JSON path of the first use of {vid} / {pid} */
	char pid_where[64];
};

/* ------------------------------------------------------------ errors */

struct pctx {
	const char *name;
	const char *path;
	char *msg;
	size_t cap;
};

static imp_err pfail(struct pctx *c, const char *jpath, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static imp_err pfail(struct pctx *c, const char *jpath, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->msg, c->cap, "certificate profile '%s' (%s): %s%s", c->name,
		     c->path ? c->path : "?", jpath, jpath[0] ? ": " : "");
	if (n < 0 || (size_t)n >= c->cap)
		return IMP_ERR_CONFIG;
	va_start(ap, fmt);
	vsnprintf(c->msg + n, c->cap - (size_t)n, fmt, ap);
	va_end(ap);
	return IMP_ERR_CONFIG;
}

static imp_err poom(struct pctx *c)
{
	snprintf(c->msg, c->cap, "certificate profile '%s': out of memory", c->name);
	return IMP_ERR_NOMEM;
}

/* --------------------------------------------------------- templates */

/* The V_* a template uses; -1 for an unknown or unbalanced placeholder. */
static int template_vars(const char *t)
{
	unsigned used = 0;

	while (*t) {
		size_t i;

		if (*t == '}')
			return -1;
		if (*t != '{') {
			t++;
			continue;
		}
		for (i = 0; i < IMP_ARRAY_SIZE(placeholders); i++)
			if (strncmp(t, placeholders[i].ph, strlen(placeholders[i].ph)) == 0)
				break;
		if (i == IMP_ARRAY_SIZE(placeholders))
			return -1;
		used |= placeholders[i].bit;
		t += strlen(placeholders[i].ph);
	}
	return (int)used;
}

static const char *var_value(const struct fmt_certprof_vars *v, unsigned bit)
{
	const char *s = NULL;

	switch (bit) {
	case V_SERIAL: s = v->serial; break;
	case V_UID: s = v->uid; break;
	case V_SKU: s = v->sku; break;
	case V_VID: s = v->vid; break;
	case V_PID: s = v->pid; break;
	case V_ORG: s = v->org; break;
	case V_COUNTRY: s = v->country; break;
	}
	return s ? s : "";
}

/* tmpl with every placeholder replaced; *out malloc'ed. Checked at load. */
static imp_err expand(const char *tmpl, const struct fmt_certprof_vars *v, char **out)
{
	size_t cap = strlen(tmpl) + 1, len = 0;
	char *buf;

	for (const char *t = tmpl; *t; t++)
		if (*t == '{')
			for (size_t i = 0; i < IMP_ARRAY_SIZE(placeholders); i++)
				if (strncmp(t, placeholders[i].ph, strlen(placeholders[i].ph)) == 0)
					cap += strlen(var_value(v, placeholders[i].bit));
	buf = malloc(cap);
	if (!buf)
		return IMP_ERR_NOMEM;
	for (const char *t = tmpl; *t;) {
		size_t i = IMP_ARRAY_SIZE(placeholders);

		if (*t == '{')
			for (i = 0; i < IMP_ARRAY_SIZE(placeholders); i++)
				if (strncmp(t, placeholders[i].ph, strlen(placeholders[i].ph)) == 0)
					break;
		if (i == IMP_ARRAY_SIZE(placeholders)) {
			buf[len++] = *t++;
			continue;
		}
		{
			const char *val = var_value(v, placeholders[i].bit);
			size_t vl = strlen(val);

			memcpy(buf + len, val, vl);
			len += vl;
			t += strlen(placeholders[i].ph);
		}
	}
	buf[len] = '\0';
	*out = buf;
	return IMP_OK;
}

/* ------------------------------------------------------------ loader */

static imp_err check_keys(struct pctx *c, json_t *o, const char *jpath,
			  const char *const *allowed)
{
	const char *key;
	json_t *v;

	if (!json_is_object(o))
		return pfail(c, jpath[0] ? jpath : "(top level)", "expected an object");
	json_object_foreach(o, key, v) {
		size_t i;
		char exp[256] = "";

		for (i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i])
			continue;
		for (i = 0; allowed[i]; i++) {
			strncat(exp, i ? ", " : "", sizeof(exp) - strlen(exp) - 1);
			strncat(exp, allowed[i], sizeof(exp) - strlen(exp) - 1);
		}
		{
			char p[128];

			snprintf(p, sizeof(p), "%s%s%s", jpath, jpath[0] ? "." : "", key);
			return pfail(c, p, "unknown key (expected %s)", exp);
		}
	}
	return IMP_OK;
}

static imp_err get_bool(struct pctx *c, json_t *o, const char *jpath, const char *key,
			bool required, bool *dst)
{
	json_t *v = json_object_get(o, key);
	char p[96];

	snprintf(p, sizeof(p), "%s%s%s", jpath, jpath[0] ? "." : "", key);
	if (!v)
		return required ? pfail(c, p, "missing (expected true or false)") : IMP_OK;
	if (!json_is_boolean(v))
		return pfail(c, p, "expected true or false");
	*dst = json_is_true(v);
	return IMP_OK;
}

/* A non-empty string of printable ASCII or UTF-8 (no control characters). */
static const char *get_text(json_t *v)
{
	const char *s = json_string_value(v);

	if (!s || !s[0] || strlen(s) != json_string_length(v))
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return NULL;
	return s;
}

/*
 * An IA5String URI with a scheme (RFC 5280 4.2.1.6: no spaces, ASCII); a
 * URL (CRL, OCSP, caIssuers: url true) also with "//" and a host.
 */
static int uri_ok(const char *s, bool url)
{
	const char *colon = strchr(s, ':');

	if (!colon || colon == s || !colon[1] || (url && (strncmp(colon, "://", 3) || !colon[3])))
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	for (const char *p = s; p < colon; p++)
		if (!isalnum((unsigned char)*p) && !strchr("+-.", *p))
			return 0;
	return 1;
}

/* A dotted OID (at least two arcs, digits only); *out new. */
static ASN1_OBJECT *dotted_oid(const char *s)
{
	int dots = 0;

	if (!s || !isdigit((unsigned char)s[0]))
		return NULL;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (!isdigit((unsigned char)p[1]))
				return NULL;
			dots++;
		} else if (!isdigit((unsigned char)*p)) {
			return NULL;
		}
	}
	if (dots < 1)
		return NULL;
	return OBJ_txt2obj(s, 1);
}

static void note_vars(struct fmt_certprof *p, unsigned used, const char *jpath)
{
	if ((used & V_VID) && !(p->vars & V_VID))
		snprintf(p->vars_where, sizeof(p->vars_where), "%s", jpath);
	if ((used & V_PID) && !(p->vars & V_PID))
		snprintf(p->pid_where, sizeof(p->pid_where), "%s", jpath);
	p->vars |= used;
}

static imp_err parse_subject(struct pctx *c, json_t *a, struct fmt_certprof *p)
{
	size_t i;
	json_t *e;

	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > SUBJECT_MAX)
		return pfail(c, "subject", "expected an array of 1 to %u attributes",
			     SUBJECT_MAX);
	json_array_foreach(a, i, e) {
		static const char *const keys[] = { "attr", "value", "optional", NULL };
		char jp[64], jv[80];
		const char *attr, *val;
		int used;
		imp_err rc;

		snprintf(jp, sizeof(jp), "subject[%zu]", i);
		rc = check_keys(c, e, jp, keys);
		if (rc != IMP_OK)
			return rc;
		attr = get_text(json_object_get(e, "attr"));
		snprintf(jv, sizeof(jv), "%s.attr", jp);
		if (!attr)
			return pfail(c, jv, "expected an attribute name (CN, O, serialNumber, ...) "
					    "or a dotted OID");
		if (OBJ_txt2nid(attr) == NID_undef) {
			ASN1_OBJECT *o = dotted_oid(attr);

			if (!o)
				return pfail(c, jv, "'%s' is neither an attribute name OpenSSL knows "
						    "nor a dotted OID", attr);
			ASN1_OBJECT_free(o);
		}
		snprintf(jv, sizeof(jv), "%s.value", jp);
		val = get_text(json_object_get(e, "value"));
		if (!val)
			return pfail(c, jv, "expected a non-empty string");
		used = template_vars(val);
		if (used < 0)
			return pfail(c, jv, "unknown placeholder (expected {serial}, {uid}, {sku}, "
					    "{vid}, {pid}, {org} or {country})");
		p->subject[p->nsubject].attr = strdup(attr);
		p->subject[p->nsubject].tmpl = strdup(val);
		if (!p->subject[p->nsubject].attr || !p->subject[p->nsubject].tmpl) {
			p->nsubject++;
			return poom(c);
		}
		rc = get_bool(c, e, jp, "optional", false, &p->subject[p->nsubject].optional);
		/* an optional attribute may use a value the configuration leaves unset */
		if (!p->subject[p->nsubject].optional)
			note_vars(p, (unsigned)used, jv);
		p->nsubject++;
		if (rc != IMP_OK)
			return rc;
	}
	return IMP_OK;
}

static imp_err parse_validity(struct pctx *c, json_t *o, struct fmt_certprof *p)
{
	static const char *const keys[] = { "days", "not_after", NULL };
	json_t *d, *na;
	imp_err rc;

	rc = check_keys(c, o, "validity", keys);
	if (rc != IMP_OK)
		return rc;
	d = json_object_get(o, "days");
	na = json_object_get(o, "not_after");
	if ((d != NULL) == (na != NULL))
		return pfail(c, "validity", "expected exactly one of days or not_after");
	if (d) {
		json_int_t n = json_integer_value(d);

		if (!json_is_integer(d) || n < 1 || n > 36500)
			return pfail(c, "validity.days", "expected an integer from 1 to 36500");
		p->vkind = CP_VAL_DAYS;
		p->days = (unsigned)n;
		return IMP_OK;
	}
	if (!json_is_string(na) || strcmp(json_string_value(na), "99991231235959Z") != 0)
		return pfail(c, "validity.not_after",
			     "expected \"99991231235959Z\" (RFC 5280 4.1.2.5: no well-defined "
			     "expiration date)");
	p->vkind = CP_VAL_NO_EXPIRY;
	return IMP_OK;
}

static imp_err parse_bc(struct pctx *c, json_t *o, struct fmt_certprof *p)
{
	static const char *const keys[] = { "critical", "ca", "path_len", NULL };
	BASIC_CONSTRAINTS *bc = NULL;
	bool crit = false;
	json_t *pl;
	imp_err rc;

	if (!o)
		return pfail(c, "basic_constraints", "missing (expected {\"critical\": true, "
						     "\"ca\": false})");
	rc = check_keys(c, o, "basic_constraints", keys);
	if (rc == IMP_OK)
		rc = get_bool(c, o, "basic_constraints", "critical", true, &crit);
	if (rc == IMP_OK)
		rc = get_bool(c, o, "basic_constraints", "ca", true, &p->ca);
	if (rc != IMP_OK)
		return rc;
	p->path_len = -1;
	pl = json_object_get(o, "path_len");
	if (pl) {
		json_int_t n = json_integer_value(pl);

		if (!p->ca)
			return pfail(c, "basic_constraints.path_len",
				     "not allowed when ca is false (RFC 5280 4.2.1.9)");
		if (!json_is_integer(pl) || n < 0 || n > PATH_LEN_MAX)
			return pfail(c, "basic_constraints.path_len",
				     "expected an integer from 0 to %d", PATH_LEN_MAX);
		p->path_len = (int)n;
	}
	if (p->ca && !crit)
		return pfail(c, "basic_constraints.critical",
			     "a CA's basicConstraints must be critical (RFC 5280 4.2.1.9)");
	bc = BASIC_CONSTRAINTS_new();
	if (!bc)
		return poom(c);
	bc->ca = p->ca ? 0xff : 0;
	if (p->path_len >= 0) {
		bc->pathlen = ASN1_INTEGER_new();
		if (!bc->pathlen || ASN1_INTEGER_set(bc->pathlen, p->path_len) != 1) {
			BASIC_CONSTRAINTS_free(bc);
			return poom(c);
		}
	}
	p->pre[p->npre] = X509V3_EXT_i2d(NID_basic_constraints, crit, bc);
	BASIC_CONSTRAINTS_free(bc);
	if (!p->pre[p->npre])
		return poom(c);
	p->npre++;
	return IMP_OK;
}

static imp_err parse_ku(struct pctx *c, json_t *o, struct fmt_certprof *p)
{
	static const char *const keys[] = { "critical", "usages", NULL };
	ASN1_BIT_STRING *bits = NULL;
	bool crit = false;
	json_t *a, *e;
	size_t i;
	imp_err rc;

	if (!o)
		return pfail(c, "key_usage", "missing (expected {\"critical\": true, "
					     "\"usages\": [\"digitalSignature\"]})");
	rc = check_keys(c, o, "key_usage", keys);
	if (rc == IMP_OK)
		rc = get_bool(c, o, "key_usage", "critical", true, &crit);
	if (rc != IMP_OK)
		return rc;
	a = json_object_get(o, "usages");
	if (!json_is_array(a) || json_array_size(a) == 0)
		return pfail(c, "key_usage.usages", "expected a non-empty array of key usages");
	bits = ASN1_BIT_STRING_new();
	if (!bits)
		return poom(c);
	json_array_foreach(a, i, e) {
		const char *s = json_string_value(e);
		size_t k;

		for (k = 0; s && k < IMP_ARRAY_SIZE(ku_names); k++)
			if (strcmp(s, ku_names[k].name) == 0)
				break;
		if (!s || k == IMP_ARRAY_SIZE(ku_names) || (p->ku & ku_names[k].mask)) {
			char jp[64];

			ASN1_BIT_STRING_free(bits);
			snprintf(jp, sizeof(jp), "key_usage.usages[%zu]", i);
			return pfail(c, jp, "expected one of digitalSignature, nonRepudiation, "
					    "keyEncipherment, dataEncipherment, keyAgreement, "
					    "keyCertSign, cRLSign, each once");
		}
		p->ku |= ku_names[k].mask;
		if (ASN1_BIT_STRING_set_bit(bits, ku_names[k].bit, 1) != 1) {
			ASN1_BIT_STRING_free(bits);
			return poom(c);
		}
	}
	if (p->ca != ((p->ku & FMT_KU_KEY_CERT_SIGN) != 0)) {
		ASN1_BIT_STRING_free(bits);
		return pfail(c, "key_usage.usages",
			     "keyCertSign goes with basic_constraints.ca true, and only with it "
			     "(RFC 5280 4.2.1.3, 4.2.1.9)");
	}
	p->pre[p->npre] = X509V3_EXT_i2d(NID_key_usage, crit, bits);
	ASN1_BIT_STRING_free(bits);
	if (!p->pre[p->npre])
		return poom(c);
	p->npre++;
	return IMP_OK;
}

static imp_err parse_eku(struct pctx *c, json_t *o, struct fmt_certprof *p)
{
	static const char *const keys[] = { "critical", "purposes", NULL };
	EXTENDED_KEY_USAGE *eku = NULL;
	bool crit = false;
	json_t *a, *e;
	size_t i;
	imp_err rc;

	rc = check_keys(c, o, "extended_key_usage", keys);
	if (rc == IMP_OK)
		rc = get_bool(c, o, "extended_key_usage", "critical", true, &crit);
	if (rc != IMP_OK)
		return rc;
	a = json_object_get(o, "purposes");
	if (!json_is_array(a) || json_array_size(a) == 0)
		return pfail(c, "extended_key_usage.purposes",
			     "expected a non-empty array of purposes (clientAuth, serverAuth, "
			     "codeSigning, ... or dotted OIDs)");
	eku = sk_ASN1_OBJECT_new_null();
	if (!eku)
		return poom(c);
	json_array_foreach(a, i, e) {
		static const struct {
			const char *name;
			int nid;
		} purposes[] = { { "serverAuth", NID_server_auth },
				 { "clientAuth", NID_client_auth },
				 { "codeSigning", NID_code_sign },
				 { "emailProtection", NID_email_protect },
				 { "timeStamping", NID_time_stamp },
				 { "OCSPSigning", NID_OCSP_sign } };
		const char *s = json_string_value(e);
		ASN1_OBJECT *obj = NULL;
		int nid = NID_undef;

		for (size_t k = 0; s && k < IMP_ARRAY_SIZE(purposes); k++)
			if (strcmp(s, purposes[k].name) == 0)
				nid = purposes[k].nid;
		obj = nid != NID_undef ? OBJ_nid2obj(nid) : dotted_oid(s);
		if (!obj || !sk_ASN1_OBJECT_push(eku, obj)) {
			char jp[64];

			ASN1_OBJECT_free(obj);
			sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
			ERR_clear_error();
			snprintf(jp, sizeof(jp), "extended_key_usage.purposes[%zu]", i);
			return pfail(c, jp, "expected a purpose name (clientAuth, serverAuth, "
					    "codeSigning, ...) or a dotted OID");
		}
	}
	p->pre[p->npre] = X509V3_EXT_i2d(NID_ext_key_usage, crit, eku);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	if (!p->pre[p->npre])
		return poom(c);
	p->npre++;
	return IMP_OK;
}

static imp_err parse_gname(struct pctx *c, json_t *e, const char *jp, struct cp_gname *g,
			   struct fmt_certprof *p)
{
	static const char *const keys[] = { "dns", "uri", "other_name", NULL };
	static const char *const on_keys[] = { "type_id", "utf8", "hw_type", "hw_serial",
					       "encoding", NULL };
	char jv[96];
	json_t *on;
	const char *s;
	int used;
	imp_err rc;

	rc = check_keys(c, e, jp, keys);
	if (rc != IMP_OK)
		return rc;
	if (json_object_size(e) != 1)
		return pfail(c, jp, "expected exactly one of dns, uri or other_name");
	if ((s = get_text(json_object_get(e, "dns"))) != NULL ||
	    (s = get_text(json_object_get(e, "uri"))) != NULL) {
		g->kind = json_object_get(e, "dns") ? CP_GN_DNS : CP_GN_URI;
		snprintf(jv, sizeof(jv), "%s.%s", jp, g->kind == CP_GN_DNS ? "dns" : "uri");
		used = template_vars(s);
		if (used < 0)
			return pfail(c, jv, "unknown placeholder");
		if (g->kind == CP_GN_URI && !uri_ok(s, false))
			return pfail(c, jv, "expected an ASCII URI with a scheme (scheme:...)");
		note_vars(p, (unsigned)used, jv);
		g->tmpl = strdup(s);
		return g->tmpl ? IMP_OK : poom(c);
	}
	on = json_object_get(e, "other_name");
	snprintf(jv, sizeof(jv), "%s.other_name", jp);
	if (!on)
		return pfail(c, jp, "expected a non-empty string");
	rc = check_keys(c, on, jv, on_keys);
	if (rc != IMP_OK)
		return rc;
	snprintf(jv, sizeof(jv), "%s.other_name.type_id", jp);
	g->type_id = dotted_oid(json_string_value(json_object_get(on, "type_id")));
	if (!g->type_id)
		return pfail(c, jv, "expected a dotted OID");
	if (strcmp(json_string_value(json_object_get(on, "type_id")), OID_HW_MODULE_NAME) == 0) {
		/* RFC 4108 5: HardwareModuleName ::= SEQUENCE { hwType OBJECT
		 * IDENTIFIER, hwSerialNum OCTET STRING } */
		const char *enc = json_string_value(json_object_get(on, "encoding"));

		g->kind = CP_GN_HW_MODULE;
		snprintf(jv, sizeof(jv), "%s.other_name.utf8", jp);
		if (json_object_get(on, "utf8"))
			return pfail(c, jv, "hardwareModuleName takes hw_type and hw_serial");
		snprintf(jv, sizeof(jv), "%s.other_name.hw_type", jp);
		g->hw_type = dotted_oid(json_string_value(json_object_get(on, "hw_type")));
		if (!g->hw_type)
			return pfail(c, jv, "expected the hardware type as a dotted OID");
		snprintf(jv, sizeof(jv), "%s.other_name.encoding", jp);
		if (enc && strcmp(enc, "hex") != 0 && strcmp(enc, "utf8") != 0)
			return pfail(c, jv, "expected \"hex\" (the bytes the digits spell) or "
					    "\"utf8\" (the characters)");
		if (!enc && json_object_get(on, "encoding"))
			return pfail(c, jv, "expected \"hex\" or \"utf8\"");
		g->hex = enc && strcmp(enc, "hex") == 0;
		s = get_text(json_object_get(on, "hw_serial"));
		snprintf(jv, sizeof(jv), "%s.other_name.hw_serial", jp);
	} else {
		g->kind = CP_GN_OTHER_UTF8;
		if (json_object_get(on, "hw_type") || json_object_get(on, "hw_serial") ||
		    json_object_get(on, "encoding"))
			return pfail(c, jv, "hw_type, hw_serial and encoding belong to "
					    "hardwareModuleName (type_id 1.3.6.1.5.5.7.8.4)");
		s = get_text(json_object_get(on, "utf8"));
		snprintf(jv, sizeof(jv), "%s.other_name.utf8", jp);
	}
	if (!s)
		return pfail(c, jv, "expected a non-empty string");
	used = template_vars(s);
	if (used < 0)
		return pfail(c, jv, "unknown placeholder");
	note_vars(p, (unsigned)used, jv);
	g->tmpl = strdup(s);
	return g->tmpl ? IMP_OK : poom(c);
}

static imp_err parse_san(struct pctx *c, json_t *o, struct fmt_certprof *p)
{
	static const char *const keys[] = { "critical", "names", NULL };
	json_t *a, *e;
	size_t i;
	imp_err rc;

	rc = check_keys(c, o, "subject_alt_name", keys);
	if (rc == IMP_OK)
		rc = get_bool(c, o, "subject_alt_name", "critical", true, &p->san_critical);
	if (rc != IMP_OK)
		return rc;
	a = json_object_get(o, "names");
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > SAN_MAX)
		return pfail(c, "subject_alt_name.names", "expected an array of 1 to %u names",
			     SAN_MAX);
	json_array_foreach(a, i, e) {
		char jp[64];

		snprintf(jp, sizeof(jp), "subject_alt_name.names[%zu]", i);
		rc = parse_gname(c, e, jp, &p->san[p->nsan], p);
		p->nsan++;
		if (rc != IMP_OK)
			return rc;
	}
	return IMP_OK;
}

/* URIs of an array member (1..URL_MAX); each a new GENERAL_NAME in *out. */
static imp_err uri_list(struct pctx *c, json_t *a, const char *jpath, GENERAL_NAME **out,
			size_t *n)
{
	json_t *e;
	size_t i;

	*n = 0;
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > URL_MAX)
		return pfail(c, jpath, "expected an array of 1 to %u URLs", URL_MAX);
	json_array_foreach(a, i, e) {
		const char *s = get_text(e);
		ASN1_IA5STRING *ia5;
		char jp[96];

		snprintf(jp, sizeof(jp), "%s[%zu]", jpath, i);
		if (!s || template_vars(s) != 0 || !uri_ok(s, true))
			return pfail(c, jp, "expected an ASCII URL with a scheme (http://...), "
					    "without placeholders");
		ia5 = ASN1_IA5STRING_new();
		out[*n] = GENERAL_NAME_new();
		if (!ia5 || !out[*n] || ASN1_STRING_set(ia5, s, -1) != 1) {
			ASN1_IA5STRING_free(ia5);
			return poom(c);
		}
		GENERAL_NAME_set0_value(out[*n], GEN_URI, ia5);
		(*n)++;
	}
	return IMP_OK;
}

static imp_err parse_crldp(struct pctx *c, json_t *a, struct fmt_certprof *p)
{
	GENERAL_NAME *names[URL_MAX] = { 0 };
	CRL_DIST_POINTS *dps = NULL;
	size_t n = 0, i;
	imp_err rc;

	rc = uri_list(c, a, "crl_distribution_points", names, &n);
	if (rc != IMP_OK)
		goto cleanup;
	rc = poom(c);
	dps = sk_DIST_POINT_new_null();
	if (!dps)
		goto cleanup;
	/* One DistributionPoint per URL, each a fullName (RFC 5280 4.2.1.13). */
	for (i = 0; i < n; i++) {
		DIST_POINT *dp = DIST_POINT_new();

		if (!dp || !sk_DIST_POINT_push(dps, dp)) {
			DIST_POINT_free(dp);
			goto cleanup;
		}
		dp->distpoint = DIST_POINT_NAME_new();
		if (!dp->distpoint)
			goto cleanup;
		dp->distpoint->type = 0;
		dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null();
		if (!dp->distpoint->name.fullname ||
		    !sk_GENERAL_NAME_push(dp->distpoint->name.fullname, names[i]))
			goto cleanup;
		names[i] = NULL;
	}
	p->post[p->npost] = X509V3_EXT_i2d(NID_crl_distribution_points, 0, dps);
	if (!p->post[p->npost])
		goto cleanup;
	p->npost++;
	rc = IMP_OK;
cleanup:
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	for (i = 0; i < URL_MAX; i++)
		GENERAL_NAME_free(names[i]);
	return rc;
}

static imp_err parse_aia(struct pctx *c, json_t *o, struct fmt_certprof *p)
{
	static const char *const keys[] = { "ocsp", "ca_issuers", NULL };
	static const struct {
		const char *key;
		int nid;
	} methods[] = { { "ocsp", NID_ad_OCSP }, { "ca_issuers", NID_ad_ca_issuers } };
	AUTHORITY_INFO_ACCESS *aia = NULL;
	GENERAL_NAME *names[URL_MAX] = { 0 };
	size_t n = 0;
	imp_err rc;

	rc = check_keys(c, o, "authority_info_access", keys);
	if (rc != IMP_OK)
		return rc;
	if (json_object_size(o) == 0)
		return pfail(c, "authority_info_access", "expected ocsp and/or ca_issuers");
	aia = sk_ACCESS_DESCRIPTION_new_null();
	if (!aia)
		return poom(c);
	for (size_t m = 0; m < IMP_ARRAY_SIZE(methods); m++) {
		json_t *a = json_object_get(o, methods[m].key);
		char jp[64];

		if (!a)
			continue;
		snprintf(jp, sizeof(jp), "authority_info_access.%s", methods[m].key);
		rc = uri_list(c, a, jp, names, &n);
		for (size_t i = 0; i < n && rc == IMP_OK; i++) {
			ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();

			if (!ad || !sk_ACCESS_DESCRIPTION_push(aia, ad)) {
				ACCESS_DESCRIPTION_free(ad);
				rc = poom(c);
				break;
			}
			ad->method = OBJ_nid2obj(methods[m].nid);
			GENERAL_NAME_free(ad->location);
			ad->location = names[i];
			names[i] = NULL;
		}
		for (size_t i = 0; i < URL_MAX; i++) {
			GENERAL_NAME_free(names[i]);
			names[i] = NULL;
		}
		if (rc != IMP_OK)
			goto cleanup;
	}
	p->post[p->npost] = X509V3_EXT_i2d(NID_info_access, 0, aia);
	rc = p->post[p->npost] ? IMP_OK : poom(c);
	if (rc == IMP_OK)
		p->npost++;
cleanup:
	sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
	return rc;
}

static enum fmt_certprof_role role_parse(const char *s)
{
	for (int r = 0; s && r < FMT_CP_ROLE_COUNT; r++)
		if (strcmp(s, role_names[r]) == 0)
			return (enum fmt_certprof_role)r;
	return FMT_CP_ROLE_COUNT;
}

static int name_ok(const char *s)
{
	if (!s || !s[0] || s[0] == '.' || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return 0;
	return 1;
}

static imp_err parse_signers(struct pctx *c, json_t *o, struct fmt_certprof *p)
{
	static const char *const keys[] = { "record-signing", "code-signing", "revocation", NULL };
	imp_err rc;

	rc = check_keys(c, o, "signers", keys);
	for (int i = 0; i < 3 && rc == IMP_OK; i++) {
		json_t *v = json_object_get(o, keys[i]);
		char jp[64];

		if (!v)
			continue;
		snprintf(jp, sizeof(jp), "signers.%s", keys[i]);
		if (!name_ok(json_string_value(v)))
			return pfail(c, jp, "expected a profile name");
		p->signer[i] = strdup(json_string_value(v));
		if (!p->signer[i])
			rc = poom(c);
	}
	return rc;
}

static imp_err parse_profile(struct pctx *c, json_t *root, const struct fmt_certprof_settings *s,
			     struct fmt_certprof *p)
{
	static const char *const keys[] = { "format", "name", "description", "standard", "role",
					    "issuer", "signers", "subject", "serial_bytes",
					    "validity", "basic_constraints", "key_usage",
					    "extended_key_usage", "subject_key_identifier",
					    "authority_key_identifier", "subject_alt_name",
					    "crl_distribution_points", "authority_info_access",
					    NULL };
	json_t *v;
	imp_err rc;

	rc = check_keys(c, root, "", keys);
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(root, "format");
	if (!json_is_string(v) || strcmp(json_string_value(v), FMT_CERTPROF_FORMAT) != 0)
		return pfail(c, "format", "expected \"%s\"", FMT_CERTPROF_FORMAT);
	v = json_object_get(root, "name");
	if (!json_is_string(v) || strcmp(json_string_value(v), p->name) != 0)
		return pfail(c, "name", "expected \"%s\" (the file's name)", p->name);
	v = json_object_get(root, "description");
	if (v && !get_text(v))
		return pfail(c, "description", "expected a non-empty string");
	v = json_object_get(root, "standard");
	if (v && !get_text(v))
		return pfail(c, "standard", "expected a non-empty string");
	p->role = role_parse(json_string_value(json_object_get(root, "role")));
	if (p->role == FMT_CP_ROLE_COUNT)
		return pfail(c, "role", "expected \"device\", \"device-ca\", \"root\", "
					"\"record-signing\", \"code-signing\" or \"revocation\"");
	v = json_object_get(root, "issuer");
	if (p->role == FMT_CP_DEVICE || p->role == FMT_CP_DEVICE_CA) {
		if (!name_ok(json_string_value(v)))
			return pfail(c, "issuer", "expected the issuing CA's profile name");
		p->issuer = strdup(json_string_value(v));
		if (!p->issuer)
			return poom(c);
	} else if (v) {
		return pfail(c, "issuer", p->role == FMT_CP_ROOT
						  ? "a root is its own issuer"
						  : "not allowed: the root issues this role (name it "
						    "in the root profile's signers)");
	}
	v = json_object_get(root, "signers");
	if (v && p->role != FMT_CP_ROOT)
		return pfail(c, "signers", "only a root profile names its signers");
	if (v) {
		rc = parse_signers(c, v, p);
		if (rc != IMP_OK)
			return rc;
	}
	v = json_object_get(root, "subject");
	if (v) {
		rc = parse_subject(c, v, p);
		if (rc != IMP_OK)
			return rc;
	} else if (p->role != FMT_CP_DEVICE) {
		return pfail(c, "subject", "missing (only a device profile may take "
					   "certificate.subject from the configuration)");
	}
	p->serial_bytes = 16;
	v = json_object_get(root, "serial_bytes");
	if (v) {
		json_int_t n = json_integer_value(v);

		if (!json_is_integer(v) || n < 2 || n > 20)
			return pfail(c, "serial_bytes", "expected an integer from 2 to 20 "
							"(RFC 5280 4.1.2.2: at most 20 octets)");
		p->serial_bytes = (unsigned)n;
	}
	v = json_object_get(root, "validity");
	if (v) {
		rc = parse_validity(c, v, p);
		if (rc != IMP_OK)
			return rc;
	} else {
		p->vkind = CP_VAL_CONFIG;
		if (p->role == FMT_CP_DEVICE) {
			p->days = s->device_days;
			p->days_key = "certificate.validity_days";
		} else if (p->role == FMT_CP_ROOT) {
			p->days = s->root_days;
			p->days_key = "organisation.root_validity_days";
		} else {
			p->days = s->ca_days;
			p->days_key = "organisation.ca_validity_days";
		}
	}
	rc = parse_bc(c, json_object_get(root, "basic_constraints"), p);
	if (rc != IMP_OK)
		return rc;
	if ((p->role == FMT_CP_ROOT || p->role == FMT_CP_DEVICE_CA) != p->ca)
		return pfail(c, "basic_constraints.ca", "expected %s for role %s",
			     p->ca ? "false" : "true", role_names[p->role]);
	rc = parse_ku(c, json_object_get(root, "key_usage"), p);
	if (rc != IMP_OK)
		return rc;
	if (p->role == FMT_CP_DEVICE && !(p->ku & FMT_KU_DIGITAL_SIGNATURE))
		return pfail(c, "key_usage.usages", "a device certificate needs digitalSignature "
						    "(the identity challenge is a signature)");
	v = json_object_get(root, "extended_key_usage");
	if (v) {
		rc = parse_eku(c, v, p);
		if (rc != IMP_OK)
			return rc;
	}
	p->ski = p->aki = true;
	rc = get_bool(c, root, "", "subject_key_identifier", false, &p->ski);
	if (rc == IMP_OK)
		rc = get_bool(c, root, "", "authority_key_identifier", false, &p->aki);
	if (rc != IMP_OK)
		return rc;
	if (p->ca && !p->ski)
		return pfail(c, "subject_key_identifier",
			     "a CA must carry it (RFC 5280 4.2.1.2)");
	if (p->role != FMT_CP_ROOT && !p->aki)
		return pfail(c, "authority_key_identifier",
			     "required except in a self-signed root (RFC 5280 4.2.1.1)");
	v = json_object_get(root, "subject_alt_name");
	if (v) {
		rc = parse_san(c, v, p);
		if (rc != IMP_OK)
			return rc;
	}
	v = json_object_get(root, "crl_distribution_points");
	if (v) {
		rc = parse_crldp(c, v, p);
		if (rc != IMP_OK)
			return rc;
	}
	v = json_object_get(root, "authority_info_access");
	if (v) {
		rc = parse_aia(c, v, p);
		if (rc != IMP_OK)
			return rc;
	}
	if ((p->vars & V_VID) && !s->has_vid)
		return pfail(c, p->vars_where, "{vid} needs matter.vendor_id in the station "
					       "configuration");
	if ((p->vars & V_PID) && !s->has_pid)
		return pfail(c, p->pid_where, "{pid} needs matter.product_id in the station "
					      "configuration");
	return IMP_OK;
}

void fmt_certprof_free(struct fmt_certprof *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->path);
	free(p->issuer);
	for (int i = 0; i < 3; i++)
		free(p->signer[i]);
	for (size_t i = 0; i < p->nsubject; i++) {
		free(p->subject[i].attr);
		free(p->subject[i].tmpl);
	}
	for (size_t i = 0; i < p->npre; i++)
		X509_EXTENSION_free(p->pre[i]);
	for (size_t i = 0; i < p->nsan; i++) {
		free(p->san[i].tmpl);
		ASN1_OBJECT_free(p->san[i].type_id);
		ASN1_OBJECT_free(p->san[i].hw_type);
	}
	for (size_t i = 0; i < p->npost; i++)
		X509_EXTENSION_free(p->post[i]);
	free(p);
}

static char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	size_t n;

	b = b ? b + 1 : path;
	n = strlen(b);
	if (n > 5 && strcmp(b + n - 5, ".json") == 0)
		n -= 5;
	return strndup(b, n);
}

imp_err fmt_certprof_load_file(const char *path, const struct fmt_certprof_settings *s,
			       struct fmt_certprof **out, char *err, size_t cap)
{
	struct fmt_certprof *p = NULL;
	struct pctx c = { "?", path, err, cap };
	uint8_t *data = NULL;
	size_t n = 0;
	json_t *root = NULL;
	json_error_t jerr;
	imp_err rc;

	*out = NULL;
	err[0] = '\0';
	p = calloc(1, sizeof(*p));
	if (!p)
		return poom(&c);
	p->name = base_name(path);
	p->path = strdup(path);
	if (!p->name || !p->path) {
		rc = poom(&c);
		goto cleanup;
	}
	c.name = p->name;
	c.path = p->path;
	rc = imp_read_file(path, &data, &n);
	if (rc != IMP_OK) {
		rc = pfail(&c, "", "cannot read the file");
		goto cleanup;
	}
	root = json_loadb((const char *)data, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = pfail(&c, "", "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		goto cleanup;
	}
	rc = parse_profile(&c, root, s, p);
	if (rc == IMP_OK) {
		*out = p;
		p = NULL;
	}
cleanup:
	json_decref(root);
	free(data);
	fmt_certprof_free(p);
	return rc;
}

/* ------------------------------------------------------------- finder */

static bool try_dir(const char *dir, size_t dlen, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%.*s/%s.json", (int)dlen, dir, name);

	return n > 0 && (size_t)n < cap && access(out, R_OK) == 0;
}

imp_err fmt_certprof_find(const char *name, const char *config_dir, char *out, size_t cap)
{
	static const char *const fixed[] = { IMPRINT_SOURCE_DIR "/certprofiles",
					     "/usr/share/imprint/certprofiles" };
	const char *env = getenv("IMPRINT_CERTPROFILE_PATH");
	char buf[4096];

	if (strchr(name, '/') || (strlen(name) > 5 && !strcmp(name + strlen(name) - 5, ".json"))) {
		if ((size_t)snprintf(out, cap, "%s", name) >= cap)
			return IMP_ERR_CONFIG;
		return access(out, R_OK) == 0 ? IMP_OK : IMP_ERR_NOT_FOUND;
	}
	if (!name_ok(name))
		return IMP_ERR_CONFIG;
	for (const char *p = env; p && *p;) {
		size_t len = strcspn(p, ":");

		if (len && try_dir(p, len, name, out, cap))
			return IMP_OK;
		p += len;
		if (*p == ':')
			p++;
	}
	if (config_dir && *config_dir) {
		snprintf(buf, sizeof(buf), "%s/certprofiles", config_dir);
		if (try_dir(buf, strlen(buf), name, out, cap))
			return IMP_OK;
	}
	for (size_t i = 0; i < IMP_ARRAY_SIZE(fixed); i++)
		if (try_dir(fixed[i], strlen(fixed[i]), name, out, cap))
			return IMP_OK;
	return IMP_ERR_NOT_FOUND;
}

/* --------------------------------------------------------------- sets */

void fmt_certprof_set_free(struct fmt_certprof_set *set)
{
	if (!set)
		return;
	for (int r = 0; r < FMT_CP_ROLE_COUNT; r++)
		fmt_certprof_free((struct fmt_certprof *)set->role[r]);
	free(set);
}

static imp_err load_named(const char *name, const char *why, const struct fmt_certprof_settings *s,
			  enum fmt_certprof_role want, struct fmt_certprof **out, char *err,
			  size_t cap)
{
	char path[4096];
	imp_err rc;

	rc = fmt_certprof_find(name, s->config_dir, path, sizeof(path));
	if (rc == IMP_ERR_CONFIG) {
		snprintf(err, cap, "%s: '%s' is not a profile name (A-Z a-z 0-9 - _ .)", why, name);
		return rc;
	}
	if (rc != IMP_OK) {
		snprintf(err, cap, "%s: no certificate profile '%s' (looked in "
				   "$IMPRINT_CERTPROFILE_PATH, %s/certprofiles, %s/certprofiles, "
				   "/usr/share/imprint/certprofiles); check the name",
			 why, name, s->config_dir ? s->config_dir : "CONFIG_DIR",
			 IMPRINT_SOURCE_DIR);
		return IMP_ERR_CONFIG;
	}
	rc = fmt_certprof_load_file(path, s, out, err, cap);
	if (rc != IMP_OK)
		return rc;
	if ((*out)->role != want) {
		struct pctx c = { (*out)->name, (*out)->path, err, cap };

		rc = pfail(&c, "role", "is %s, but %s needs a %s profile", role_names[(*out)->role],
			   why, role_names[want]);
		fmt_certprof_free(*out);
		*out = NULL;
	}
	return rc;
}

/* child certainly outlives issuer: refused (RFC 5280 6.1.3: a path is
 * only valid while every certificate in it is). */
static imp_err check_within(const struct fmt_certprof *child, const struct fmt_certprof *issuer,
			    char *err, size_t cap)
{
	struct pctx c = { child->name, child->path, err, cap };
	char jp[96];

	if (child->vkind == CP_VAL_NO_EXPIRY && issuer->vkind != CP_VAL_NO_EXPIRY)
		return pfail(&c, "validity.not_after",
			     "99991231235959Z would outlive the issuer '%s' (%u days): no "
			     "certificate ends after its issuer", issuer->name, issuer->days);
	if (child->vkind != CP_VAL_NO_EXPIRY && issuer->vkind != CP_VAL_NO_EXPIRY &&
	    child->days > issuer->days) {
		if (child->days_key)
			snprintf(jp, sizeof(jp), "validity (from %s)", child->days_key);
		else
			snprintf(jp, sizeof(jp), "validity.days");
		return pfail(&c, jp, "%u days would outlive the issuer '%s' (%u days%s%s): no "
				     "certificate ends after its issuer", child->days, issuer->name,
			     issuer->days, issuer->days_key ? ", " : "",
			     issuer->days_key ? issuer->days_key : "");
	}
	if (child->ca && issuer->path_len >= 0 && child->path_len >= issuer->path_len)
		return pfail(&c, "basic_constraints.path_len",
			     "the issuer '%s' allows %d CA(s) below it (path_len %d)", issuer->name,
			     issuer->path_len, issuer->path_len);
	if (child->ca && issuer->path_len == 0)
		return pfail(&c, "basic_constraints.ca",
			     "the issuer '%s' has path_len 0: no CA below it", issuer->name);
	return IMP_OK;
}

imp_err fmt_certprof_set_load(const char *device_name, const struct fmt_certprof_settings *s,
			      struct fmt_certprof_set **out, char *err, size_t cap)
{
	static const char *const default_signers[3] = { "default-record-signing",
							"default-code-signing",
							"default-revocation" };
	struct fmt_certprof *p[FMT_CP_ROLE_COUNT] = { 0 };
	struct fmt_certprof_set *set;
	char why[160];
	imp_err rc;

	*out = NULL;
	err[0] = '\0';
	rc = load_named(device_name, "certificate.profile", s, FMT_CP_DEVICE, &p[FMT_CP_DEVICE],
			err, cap);
	if (rc == IMP_OK) {
		snprintf(why, sizeof(why), "the issuer of '%s'", device_name);
		rc = load_named(p[FMT_CP_DEVICE]->issuer, why, s, FMT_CP_DEVICE_CA,
				&p[FMT_CP_DEVICE_CA], err, cap);
	}
	if (rc == IMP_OK) {
		snprintf(why, sizeof(why), "the issuer of '%s'", p[FMT_CP_DEVICE_CA]->name);
		rc = load_named(p[FMT_CP_DEVICE_CA]->issuer, why, s, FMT_CP_ROOT, &p[FMT_CP_ROOT],
				err, cap);
	}
	for (int i = 0; i < 3 && rc == IMP_OK; i++) {
		const char *name = p[FMT_CP_ROOT]->signer[i] ? p[FMT_CP_ROOT]->signer[i]
							     : default_signers[i];

		snprintf(why, sizeof(why), "the %s signer of '%s'",
			 role_names[FMT_CP_RECORD_SIGNING + i], p[FMT_CP_ROOT]->name);
		rc = load_named(name, why, s, (enum fmt_certprof_role)(FMT_CP_RECORD_SIGNING + i),
				&p[FMT_CP_RECORD_SIGNING + i], err, cap);
	}
	if (rc == IMP_OK)
		rc = check_within(p[FMT_CP_DEVICE], p[FMT_CP_DEVICE_CA], err, cap);
	for (int r = FMT_CP_DEVICE_CA; r <= FMT_CP_REVOCATION && rc == IMP_OK; r++)
		rc = check_within(p[r], p[FMT_CP_ROOT], err, cap);
	if (rc == IMP_OK && p[FMT_CP_DEVICE]->nsubject > 0 && s->subject_configured) {
		snprintf(err, cap, "config: certificate.subject: the certificate profile '%s' fixes "
				   "the subject; remove certificate.subject or use a profile "
				   "without one (default)", device_name);
		rc = IMP_ERR_CONFIG;
	}
	if (rc != IMP_OK) {
		for (int r = 0; r < FMT_CP_ROLE_COUNT; r++)
			fmt_certprof_free(p[r]);
		return rc;
	}
	set = calloc(1, sizeof(*set));
	if (!set) {
		for (int r = 0; r < FMT_CP_ROLE_COUNT; r++)
			fmt_certprof_free(p[r]);
		snprintf(err, cap, "certificate profiles: out of memory");
		return IMP_ERR_NOMEM;
	}
	for (int r = 0; r < FMT_CP_ROLE_COUNT; r++)
		set->role[r] = p[r];
	*out = set;
	return IMP_OK;
}

/* --------------------------------------------------------- accessors */

const char *fmt_certprof_name(const struct fmt_certprof *p)
{
	return p->name;
}

enum fmt_certprof_role fmt_certprof_role(const struct fmt_certprof *p)
{
	return p->role;
}

unsigned fmt_certprof_key_usage(const struct fmt_certprof *p)
{
	return p->ku;
}

bool fmt_certprof_has_subject(const struct fmt_certprof *p)
{
	return p->nsubject > 0;
}

const char *fmt_certprof_attr_template(const struct fmt_certprof *p, const char *attr)
{
	int nid = OBJ_txt2nid(attr);

	for (size_t i = 0; i < p->nsubject; i++)
		if (strcmp(p->subject[i].attr, attr) == 0 ||
		    (nid != NID_undef && OBJ_txt2nid(p->subject[i].attr) == nid))
			return p->subject[i].tmpl;
	return NULL;
}

imp_err fmt_certprof_subject(const struct fmt_certprof *p, const struct fmt_certprof_vars *v,
			     struct fmt_name_entry **out, size_t *n)
{
	struct fmt_name_entry *e;
	size_t k = 0;
	imp_err rc = IMP_OK;

	*out = NULL;
	*n = 0;
	if (p->nsubject == 0)
		return IMP_ERR_USAGE;
	e = calloc(p->nsubject, sizeof(*e));
	if (!e)
		return IMP_ERR_NOMEM;
	for (size_t i = 0; i < p->nsubject && rc == IMP_OK; i++) {
		char *val = NULL;

		rc = expand(p->subject[i].tmpl, v, &val);
		if (rc != IMP_OK)
			break;
		if (!val[0]) {
			free(val);
			if (p->subject[i].optional)
				continue;
			IMP_ERROR("certificate profile '%s': subject[%zu] (%s) is empty for this "
				  "certificate; set the value it is made of", p->name, i,
				  p->subject[i].attr);
			rc = IMP_ERR_USAGE;
			break;
		}
		e[k].value = val;
		e[k].attr = strdup(p->subject[i].attr);
		k++;
		if (!e[k - 1].attr)
			rc = IMP_ERR_NOMEM;
	}
	if (rc != IMP_OK) {
		fmt_name_entries_free(e, k);
		return rc;
	}
	*out = e;
	*n = k;
	return IMP_OK;
}

/* ------------------------------------------------------------- issue */

/* hardwareModuleName's SEQUENCE { hwType, hwSerialNum } as an ASN1_TYPE. */
static ASN1_TYPE *hw_module_value(const ASN1_OBJECT *hw_type, const uint8_t *sn, size_t sn_len)
{
	unsigned char *oid = NULL;
	int oid_len = i2d_ASN1_OBJECT(hw_type, &oid);
	uint8_t buf[512];
	size_t body, o = 0;
	ASN1_STRING *seq = NULL;
	ASN1_TYPE *t = NULL;

	if (oid_len <= 0 || sn_len > 127 || (size_t)oid_len > 200)
		goto cleanup;
	body = (size_t)oid_len + 2 + sn_len;
	if (body > 127)
		goto cleanup;
	buf[o++] = 0x30;
	buf[o++] = (uint8_t)body;
	memcpy(buf + o, oid, (size_t)oid_len);
	o += (size_t)oid_len;
	buf[o++] = 0x04;
	buf[o++] = (uint8_t)sn_len;
	memcpy(buf + o, sn, sn_len);
	o += sn_len;
	seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
	t = ASN1_TYPE_new();
	if (!seq || !t || ASN1_STRING_set(seq, buf, (int)o) != 1) {
		ASN1_TYPE_free(t);
		t = NULL;
		goto cleanup;
	}
	ASN1_TYPE_set(t, V_ASN1_SEQUENCE, seq);
	seq = NULL;
cleanup:
	ASN1_STRING_free(seq);
	OPENSSL_free(oid);
	return t;
}

static imp_err gname_build(const struct fmt_certprof *p, const struct cp_gname *g,
			   const struct fmt_certprof_vars *v, GENERAL_NAME **out)
{
	char *val = NULL;
	GENERAL_NAME *gn = NULL;
	imp_err rc;

	*out = NULL;
	rc = expand(g->tmpl, v, &val);
	if (rc != IMP_OK)
		return rc;
	rc = IMP_ERR_USAGE;
	if (!val[0]) {
		IMP_ERROR("certificate profile '%s': a subjectAltName expands to nothing for this "
			  "certificate", p->name);
		goto cleanup;
	}
	gn = GENERAL_NAME_new();
	if (!gn) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	if (g->kind == CP_GN_DNS || g->kind == CP_GN_URI) {
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();

		for (const char *c = val; *c; c++)
			if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
				IMP_ERROR("certificate profile '%s': a %s name holds a character an "
					  "IA5String cannot carry ('%s')", p->name,
					  g->kind == CP_GN_DNS ? "dNSName" : "URI", val);
				ASN1_IA5STRING_free(s);
				goto cleanup;
			}
		if (!s || ASN1_STRING_set(s, val, -1) != 1) {
			ASN1_IA5STRING_free(s);
			rc = IMP_ERR_NOMEM;
			goto cleanup;
		}
		GENERAL_NAME_set0_value(gn, g->kind == CP_GN_DNS ? GEN_DNS : GEN_URI, s);
	} else {
		ASN1_TYPE *t = NULL;
		ASN1_OBJECT *oid = OBJ_dup(g->type_id);

		if (g->kind == CP_GN_OTHER_UTF8) {
			ASN1_UTF8STRING *u = ASN1_UTF8STRING_new();

			t = ASN1_TYPE_new();
			if (!u || !t || ASN1_STRING_set(u, val, -1) != 1) {
				ASN1_UTF8STRING_free(u);
				ASN1_TYPE_free(t);
				t = NULL;
			} else {
				ASN1_TYPE_set(t, V_ASN1_UTF8STRING, u);
			}
		} else {
			uint8_t sn[64];
			size_t sn_len = strlen(val);

			if (g->hex) {
				if (sn_len % 2 || sn_len / 2 > sizeof(sn) ||
				    imp_hex_decode(val, sn, sn_len / 2) != IMP_OK) {
					IMP_ERROR("certificate profile '%s': hwSerialNum '%s' is not "
						  "an even number of hex digits (at most 128)",
						  p->name, val);
					ASN1_OBJECT_free(oid);
					goto cleanup;
				}
				sn_len /= 2;
			} else {
				if (sn_len > sizeof(sn)) {
					IMP_ERROR("certificate profile '%s': hwSerialNum longer than "
						  "%zu bytes", p->name, sizeof(sn));
					ASN1_OBJECT_free(oid);
					goto cleanup;
				}
				memcpy(sn, val, sn_len);
			}
			t = hw_module_value(g->hw_type, sn, sn_len);
		}
		if (!t || !oid || GENERAL_NAME_set0_othername(gn, oid, t) != 1) {
			ASN1_TYPE_free(t);
			ASN1_OBJECT_free(oid);
			rc = IMP_ERR_CRYPTO;
			goto cleanup;
		}
	}
	*out = gn;
	gn = NULL;
	rc = IMP_OK;
cleanup:
	GENERAL_NAME_free(gn);
	free(val);
	return rc;
}

static imp_err add_san(X509 *x, const struct fmt_certprof *p, const struct fmt_certprof_vars *v)
{
	static const struct fmt_certprof_vars none = { 0 };
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	imp_err rc = IMP_OK;

	if (!gens)
		return IMP_ERR_NOMEM;
	for (size_t i = 0; i < p->nsan && rc == IMP_OK; i++) {
		GENERAL_NAME *gn = NULL;

		rc = gname_build(p, &p->san[i], v ? v : &none, &gn);
		if (rc == IMP_OK && !sk_GENERAL_NAME_push(gens, gn)) {
			GENERAL_NAME_free(gn);
			rc = IMP_ERR_NOMEM;
		}
	}
	if (rc == IMP_OK && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, p->san_critical ? 1 : 0,
					      X509V3_ADD_DEFAULT) != 1)
		rc = IMP_ERR_CRYPTO;
	sk_GENERAL_NAME_pop_free(gens, GENERAL_NAME_free);
	return rc;
}

imp_err fmt_certprof_issue(const struct fmt_certprof_request *req,
			   const struct fmt_signer *signer, X509 **out)
{
	const struct fmt_certprof *p = req ? req->profile : NULL;
	EVP_PKEY *issuer_pub;
	X509_NAME *subject = NULL;
	X509 *x = NULL;
	time_t nb;
	imp_err rc;

	*out = NULL;
	if (!p || !signer || !signer->sign_digest || !signer->pub || !req->subject ||
	    req->subject_count == 0)
		return IMP_ERR_USAGE;
	if ((p->role == FMT_CP_ROOT) != (req->issuer == NULL)) {
		IMP_ERROR("certificate profile '%s': %s", p->name,
			  p->role == FMT_CP_ROOT ? "a root has no issuer certificate"
						 : "an issuer certificate is required");
		return IMP_ERR_USAGE;
	}
	if (!fmt_pubkey_is_p256(req->subject_key) || !fmt_pubkey_is_p256(signer->pub)) {
		IMP_ERROR("certificate keys: expected EC P-256");
		return IMP_ERR_USAGE;
	}
	issuer_pub = req->issuer ? X509_get0_pubkey(req->issuer) : req->subject_key;
	if (!fmt_pubkey_equal(issuer_pub, signer->pub)) {
		IMP_ERROR("certificate: the signer's key is not the issuer's key");
		return IMP_ERR_USAGE;
	}
	rc = fmt_name_build(req->subject, req->subject_count, &subject);
	if (rc != IMP_OK)
		return rc;
	rc = IMP_ERR_CRYPTO;
	x = X509_new();
	if (!x || X509_set_version(x, X509_VERSION_3) != 1)
		goto cleanup;
	rc = fmt_x509_set_serial(x, req->serial, req->serial_len, p->serial_bytes);
	if (rc != IMP_OK)
		goto cleanup;
	rc = IMP_ERR_CRYPTO;
	if (X509_set_subject_name(x, subject) != 1 ||
	    X509_set_issuer_name(x, req->issuer ? X509_get_subject_name(req->issuer) : subject) !=
		    1)
		goto cleanup;
	nb = req->not_before ? req->not_before : time(NULL) - 300;
	if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb))
		goto cleanup;
	if (p->vkind == CP_VAL_NO_EXPIRY) {
		/* RFC 5280 4.1.2.5: no well-defined expiration date */
		if (ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z") != 1)
			goto cleanup;
	} else if (!X509_time_adj_ex(X509_getm_notAfter(x), (int)p->days, 0, &nb)) {
		goto cleanup;
	}
	rc = fmt_x509_cap_at_issuer(x, req->issuer);
	if (rc == IMP_OK)
		rc = fmt_x509_set_pubkey(x, req->subject_key);
	if (rc != IMP_OK)
		goto cleanup;
	rc = IMP_ERR_CRYPTO;
	for (size_t i = 0; i < p->npre; i++)
		if (X509_add_ext(x, p->pre[i], -1) != 1)
			goto cleanup;
	rc = fmt_x509_add_key_ids(x, req->subject_key, req->issuer, p->ski, p->aki);
	if (rc == IMP_OK && p->nsan)
		rc = add_san(x, p, req->vars);
	if (rc != IMP_OK)
		goto cleanup;
	rc = IMP_ERR_CRYPTO;
	for (size_t i = 0; i < p->npost; i++)
		if (X509_add_ext(x, p->post[i], -1) != 1)
			goto cleanup;
	rc = fmt_x509_finish(x, issuer_pub, signer, out);
cleanup:
	ERR_clear_error();
	X509_free(x);
	X509_NAME_free(subject);
	return rc;
}

/* ------------------------------------------------------------- trust */

imp_err fmt_certprof_trust_write(const char *trust_dir, const struct fmt_certprof *device)
{
	json_t *o = json_pack("{s:s, s:[]}", "profile", device->name, "key_usage");
	char path[4096];
	char *text;
	imp_err rc;

	if (!o)
		return IMP_ERR_NOMEM;
	for (size_t k = 0; k < IMP_ARRAY_SIZE(ku_names); k++)
		if (device->ku & ku_names[k].mask)
			json_array_append_new(json_object_get(o, "key_usage"),
					      json_string(ku_names[k].name));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return IMP_ERR_NOMEM;
	snprintf(path, sizeof(path), "%s/%s", trust_dir, FMT_CERTPROF_TRUST_FILE);
	rc = imp_write_file_atomic(path, text, strlen(text), 0644);
	free(text);
	return rc;
}

static imp_err trust_read(const char *trust_dir, json_t **out)
{
	char path[4096];
	json_t *o;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/%s", trust_dir, FMT_CERTPROF_TRUST_FILE);
	if (access(path, F_OK) != 0)
		return IMP_ERR_NOT_FOUND;
	o = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_string(json_object_get(o, "profile")) ||
	    !json_is_array(json_object_get(o, "key_usage"))) {
		IMP_ERROR("%s: not a certificate profile note; 'imprint hsm init' writes it", path);
		json_decref(o);
		return IMP_ERR_PROTOCOL;
	}
	*out = o;
	return IMP_OK;
}

imp_err fmt_certprof_trust_ku(const char *trust_dir, unsigned *ku)
{
	json_t *o = NULL, *e;
	size_t i;
	imp_err rc;

	*ku = FMT_KU_DIGITAL_SIGNATURE | FMT_KU_KEY_AGREEMENT;
	rc = trust_read(trust_dir, &o);
	if (rc == IMP_ERR_NOT_FOUND)
		return IMP_OK;
	if (rc != IMP_OK)
		return rc;
	*ku = 0;
	json_array_foreach(json_object_get(o, "key_usage"), i, e) {
		size_t k;

		for (k = 0; k < IMP_ARRAY_SIZE(ku_names); k++)
			if (json_is_string(e) && strcmp(json_string_value(e), ku_names[k].name) == 0)
				break;
		if (k == IMP_ARRAY_SIZE(ku_names)) {
			rc = IMP_ERR_PROTOCOL;
			break;
		}
		*ku |= ku_names[k].mask;
	}
	if (rc == IMP_OK && !(*ku & FMT_KU_DIGITAL_SIGNATURE))
		rc = IMP_ERR_PROTOCOL;
	if (rc != IMP_OK) {
		IMP_ERROR("%s/%s: key_usage is not a device certificate's", trust_dir,
			  FMT_CERTPROF_TRUST_FILE);
		*ku = FMT_KU_DIGITAL_SIGNATURE | FMT_KU_KEY_AGREEMENT;
	}
	json_decref(o);
	return rc;
}

imp_err fmt_certprof_trust_name(const char *trust_dir, char *name, size_t cap)
{
	json_t *o = NULL;
	imp_err rc;

	name[0] = '\0';
	rc = trust_read(trust_dir, &o);
	if (rc == IMP_ERR_NOT_FOUND)
		return IMP_OK;
	if (rc == IMP_OK)
		snprintf(name, cap, "%s", json_string_value(json_object_get(o, "profile")));
	json_decref(o);
	return rc;
}
