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
#include "formats/jsonread.h"
#include "imprint/log.h"
#include "imprint/paths.h"
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

/* keyUsage names (RFC 5280 4.2.1.3) with their FMT_KU_* value, whose
 * highest bit (0x80) is the KeyUsage BIT STRING's bit 0. */
static const struct fmt_jr_name ku_names[] = {
	{ "digitalSignature", 0x0080u }, { "nonRepudiation", 0x0040u },
	{ "keyEncipherment", 0x0020u },  { "dataEncipherment", 0x0010u },
	{ "keyAgreement", 0x0008u },     { "keyCertSign", 0x0004u },
	{ "cRLSign", 0x0002u },          { NULL, 0 },
};

/* The KeyUsage bit of a FMT_KU_* value of ku_names. */
static int ku_bit(uint32_t mask)
{
	return 7 - __builtin_ctz(mask);
}

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
	bool bc_critical, ku_critical, eku_critical; /* as the file says */
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
	char vars_where[FMT_JR_PATH_MAX]; /* JSON path of the first use of {vid} / {pid}: */
	char pid_where[FMT_JR_PATH_MAX];  /* as long as the paths the reader builds */
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

/*
 * The profile's members are tables for formats/jsonread.h. Setters read
 * into the struct fmt_certprof being loaded; the reader's context is the
 * configuration's settings.
 */
#define CP_AT(m) FMT_JR_AT(struct fmt_certprof, m)

/* The reader's context: the profile being loaded and the configuration's
 * settings it is loaded for. */
struct cp_ctx {
	struct fmt_certprof *p;
	const struct fmt_certprof_settings *s;
};

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

/* The placeholders a template at the reader's path uses (for {vid}/{pid}). */
static void note_vars(struct fmt_certprof *p, unsigned used, const char *jpath)
{
	if ((used & V_VID) && !(p->vars & V_VID))
		snprintf(p->vars_where, sizeof(p->vars_where), "%s", jpath);
	if ((used & V_PID) && !(p->vars & V_PID))
		snprintf(p->pid_where, sizeof(p->pid_where), "%s", jpath);
	p->vars |= used;
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

/* Append an encoded extension to a profile's list (pre or post). */
static imp_err add_ext(struct fmt_jr *r, X509_EXTENSION **list, size_t *n, X509_EXTENSION *ext)
{
	if (!ext)
		return fmt_jr_oom(r);
	list[(*n)++] = ext;
	return IMP_OK;
}

/* ---- subject ---- */

static imp_err set_attr(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct cp_attr *a = obj;
	const char *attr = get_text(v);

	(void)f;
	if (!attr)
		return fmt_jr_fail(r, NULL, "expected an attribute name (CN, O, serialNumber, ...) "
				   "or a dotted OID");
	if (OBJ_txt2nid(attr) == NID_undef) {
		ASN1_OBJECT *o = dotted_oid(attr);

		if (!o)
			return fmt_jr_fail(r, NULL, "'%s' is neither an attribute name OpenSSL knows "
					   "nor a dotted OID", attr);
		ASN1_OBJECT_free(o);
	}
	return fmt_jr_set_str(r, &a->attr, attr);
}

static imp_err set_attr_value(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
			      void *obj)
{
	struct cp_attr *a = obj;
	const char *val = get_text(v);

	(void)f;
	if (!val)
		return fmt_jr_fail(r, NULL, "expected a non-empty string");
	if (template_vars(val) < 0)
		return fmt_jr_fail(r, NULL, "unknown placeholder (expected {serial}, {uid}, {sku}, "
				   "{vid}, {pid}, {org} or {country})");
	return fmt_jr_set_str(r, &a->tmpl, val);
}

/* An attribute's placeholders count unless it is optional: an optional one
 * may use a value the configuration leaves unset. */
static imp_err attr_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	struct fmt_certprof *p = ((struct cp_ctx *)r->ctx)->p;
	const struct cp_attr *a = obj;
	size_t mark;

	(void)o;
	if (a->optional)
		return IMP_OK;
	mark = fmt_jr_push_key(r, "value");
	note_vars(p, (unsigned)template_vars(a->tmpl), r->path);
	fmt_jr_pop(r, mark);
	return IMP_OK;
}

static const struct fmt_jr_table attr_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "attr", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED, .set = set_attr,
		  .expect = "an attribute name (CN, O, serialNumber, ...) or a dotted OID" },
		{ .name = "value", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED,
		  .set = set_attr_value, .expect = "a non-empty string" },
		{ .name = "optional", .type = FMT_JR_BOOL, FMT_JR_AT(struct cp_attr, optional) },
		{ 0 },
	},
	.finish = attr_finish,
};

static imp_err set_subject(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *a, void *obj)
{
	struct fmt_certprof *p = obj;
	size_t i;
	json_t *e;

	(void)f;
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > SUBJECT_MAX)
		return fmt_jr_fail(r, NULL, "expected an array of 1 to %u attributes", SUBJECT_MAX);
	json_array_foreach(a, i, e) {
		size_t mark = fmt_jr_push_index(r, i);
		imp_err rc;

		rc = fmt_jr_object(r, e, &attr_table, &p->subject[p->nsubject++]);
		if (rc != IMP_OK)
			return rc;
		fmt_jr_pop(r, mark);
	}
	return IMP_OK;
}

/* ---- validity ---- */

static imp_err set_days(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_certprof *p = obj;

	(void)r;
	(void)f;
	p->vkind = CP_VAL_DAYS;
	p->days = (unsigned)json_integer_value(v);
	return IMP_OK;
}

static imp_err set_not_after(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_certprof *p = obj;

	(void)f;
	if (!json_is_string(v) || strcmp(json_string_value(v), "99991231235959Z") != 0)
		return fmt_jr_fail(r, NULL, "expected \"99991231235959Z\" (RFC 5280 4.1.2.5: no "
				   "well-defined expiration date)");
	p->vkind = CP_VAL_NO_EXPIRY;
	return IMP_OK;
}

static imp_err validity_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	(void)obj;
	if ((json_object_get(o, "days") != NULL) == (json_object_get(o, "not_after") != NULL))
		return fmt_jr_fail(r, NULL, "expected exactly one of days or not_after");
	return IMP_OK;
}

static const struct fmt_jr_table validity_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "days", .type = FMT_JR_UINT, .min = 1, .max = 36500, .set = set_days },
		{ .name = "not_after", .type = FMT_JR_ANY, .set = set_not_after },
		{ 0 },
	},
	.finish = validity_finish,
};

/* ---- basicConstraints, keyUsage, extKeyUsage ---- */

static imp_err set_path_len(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_certprof *p = obj;

	(void)f;
	if (!p->ca)
		return fmt_jr_fail(r, NULL, "not allowed when ca is false (RFC 5280 4.2.1.9)");
	p->path_len = (int)json_integer_value(v);
	return IMP_OK;
}

static imp_err bc_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	struct fmt_certprof *p = obj;
	BASIC_CONSTRAINTS *bc;
	X509_EXTENSION *ext;

	(void)o;
	if (p->ca && !p->bc_critical)
		return fmt_jr_fail(r, "critical", "a CA's basicConstraints must be critical (RFC "
				   "5280 4.2.1.9)");
	if ((p->role == FMT_CP_ROOT || p->role == FMT_CP_DEVICE_CA) != p->ca)
		return fmt_jr_fail(r, "ca", "expected %s for role %s", p->ca ? "false" : "true",
				   role_names[p->role]);
	bc = BASIC_CONSTRAINTS_new();
	if (!bc)
		return fmt_jr_oom(r);
	bc->ca = p->ca ? 0xff : 0;
	if (p->path_len >= 0) {
		bc->pathlen = ASN1_INTEGER_new();
		if (!bc->pathlen || ASN1_INTEGER_set(bc->pathlen, p->path_len) != 1) {
			BASIC_CONSTRAINTS_free(bc);
			return fmt_jr_oom(r);
		}
	}
	ext = X509V3_EXT_i2d(NID_basic_constraints, p->bc_critical, bc);
	BASIC_CONSTRAINTS_free(bc);
	return add_ext(r, p->pre, &p->npre, ext);
}

static const struct fmt_jr_table bc_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "critical", .type = FMT_JR_BOOL, .flags = FMT_JR_REQUIRED,
		  CP_AT(bc_critical) },
		{ .name = "ca", .type = FMT_JR_BOOL, .flags = FMT_JR_REQUIRED, CP_AT(ca) },
		{ .name = "path_len", .type = FMT_JR_UINT, .max = PATH_LEN_MAX, .set = set_path_len },
		{ 0 },
	},
	.finish = bc_finish,
};

static imp_err ku_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	struct fmt_certprof *p = obj;
	ASN1_BIT_STRING *bits;
	X509_EXTENSION *ext;

	(void)o;
	if (p->ca != ((p->ku & FMT_KU_KEY_CERT_SIGN) != 0))
		return fmt_jr_fail(r, "usages", "keyCertSign goes with basic_constraints.ca true, "
				   "and only with it (RFC 5280 4.2.1.3, 4.2.1.9)");
	if (p->role == FMT_CP_DEVICE && !(p->ku & FMT_KU_DIGITAL_SIGNATURE))
		return fmt_jr_fail(r, "usages", "a device certificate needs digitalSignature (the "
				   "identity challenge is a signature)");
	bits = ASN1_BIT_STRING_new();
	if (!bits)
		return fmt_jr_oom(r);
	for (size_t k = 0; ku_names[k].name; k++)
		if ((p->ku & ku_names[k].value) &&
		    ASN1_BIT_STRING_set_bit(bits, ku_bit(ku_names[k].value), 1) != 1) {
			ASN1_BIT_STRING_free(bits);
			return fmt_jr_oom(r);
		}
	ext = X509V3_EXT_i2d(NID_key_usage, p->ku_critical, bits);
	ASN1_BIT_STRING_free(bits);
	return add_ext(r, p->pre, &p->npre, ext);
}

static const struct fmt_jr_table ku_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "critical", .type = FMT_JR_BOOL, .flags = FMT_JR_REQUIRED,
		  CP_AT(ku_critical) },
		{ .name = "usages", .type = FMT_JR_FLAGS, .flags = FMT_JR_REQUIRED | FMT_JR_ONCE,
		  .min = 1, .names = ku_names, .expect = "a non-empty array of key usages",
		  CP_AT(ku) },
		{ 0 },
	},
	.finish = ku_finish,
};

static imp_err set_purposes(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *a, void *obj)
{
	static const struct {
		const char *name;
		int nid;
	} purposes[] = { { "serverAuth", NID_server_auth }, { "clientAuth", NID_client_auth },
			 { "codeSigning", NID_code_sign }, { "emailProtection", NID_email_protect },
			 { "timeStamping", NID_time_stamp }, { "OCSPSigning", NID_OCSP_sign } };
	struct fmt_certprof *p = obj;
	EXTENDED_KEY_USAGE *eku;
	X509_EXTENSION *ext;
	size_t i;
	json_t *e;

	if (!json_is_array(a) || json_array_size(a) == 0)
		return fmt_jr_expected(r, f);
	eku = sk_ASN1_OBJECT_new_null();
	if (!eku)
		return fmt_jr_oom(r);
	json_array_foreach(a, i, e) {
		const char *s = json_string_value(e);
		ASN1_OBJECT *o = NULL;
		int nid = NID_undef;

		for (size_t k = 0; s && k < IMP_ARRAY_SIZE(purposes); k++)
			if (strcmp(s, purposes[k].name) == 0)
				nid = purposes[k].nid;
		o = nid != NID_undef ? OBJ_nid2obj(nid) : dotted_oid(s);
		if (!o || !sk_ASN1_OBJECT_push(eku, o)) {
			ASN1_OBJECT_free(o);
			sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
			ERR_clear_error();
			fmt_jr_push_index(r, i);
			return fmt_jr_fail(r, NULL, "expected a purpose name (clientAuth, serverAuth, "
					   "codeSigning, ...) or a dotted OID");
		}
	}
	ext = X509V3_EXT_i2d(NID_ext_key_usage, p->eku_critical, eku);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return add_ext(r, p->pre, &p->npre, ext);
}

static const struct fmt_jr_table eku_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "critical", .type = FMT_JR_BOOL, .flags = FMT_JR_REQUIRED,
		  CP_AT(eku_critical) },
		{ .name = "purposes", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED,
		  .set = set_purposes,
		  .expect = "a non-empty array of purposes (clientAuth, serverAuth, codeSigning, "
			    "... or dotted OIDs)" },
		{ 0 },
	},
};

/* ---- subjectAltName ---- */

static const struct fmt_jr_name gname_keys[] = {
	{ "dns", 0 }, { "uri", 0 }, { "other_name", 0 }, { NULL, 0 },
};
static const struct fmt_jr_name other_name_keys[] = {
	{ "type_id", 0 }, { "utf8", 0 }, { "hw_type", 0 }, { "hw_serial", 0 }, { "encoding", 0 },
	{ NULL, 0 },
};

/* A template string at key of o (the reader's path on o): *out borrowed. */
static imp_err gname_template(struct fmt_jr *r, json_t *o, const char *key, struct fmt_certprof *p,
			      bool uri, char **dst)
{
	const char *s = get_text(json_object_get(o, key));
	size_t mark = fmt_jr_push_key(r, key);
	int used;

	if (!s)
		return fmt_jr_fail(r, NULL, "expected a non-empty string");
	used = template_vars(s);
	if (used < 0)
		return fmt_jr_fail(r, NULL, "unknown placeholder");
	if (uri && !uri_ok(s, false))
		return fmt_jr_fail(r, NULL, "expected an ASCII URI with a scheme (scheme:...)");
	note_vars(p, (unsigned)used, r->path);
	fmt_jr_pop(r, mark);
	return fmt_jr_set_str(r, dst, s);
}

/* One GeneralName of subject_alt_name.names (the reader's path on e). */
static imp_err read_gname(struct fmt_jr *r, json_t *e, struct cp_gname *g, struct fmt_certprof *p)
{
	json_t *on;
	const char *tid;
	size_t mark;
	imp_err rc;

	if (!json_is_object(e))
		return fmt_jr_fail(r, NULL, "expected an object");
	rc = fmt_jr_keys(r, e, NULL, gname_keys);
	if (rc != IMP_OK)
		return rc;
	if (json_object_size(e) != 1)
		return fmt_jr_fail(r, NULL, "expected exactly one of dns, uri or other_name");
	if (get_text(json_object_get(e, "dns")) || get_text(json_object_get(e, "uri"))) {
		g->kind = json_object_get(e, "dns") ? CP_GN_DNS : CP_GN_URI;
		return gname_template(r, e, g->kind == CP_GN_DNS ? "dns" : "uri", p,
				      g->kind == CP_GN_URI, &g->tmpl);
	}
	on = json_object_get(e, "other_name");
	if (!on)
		return fmt_jr_fail(r, NULL, "expected a non-empty string");
	mark = fmt_jr_push_key(r, "other_name");
	if (!json_is_object(on))
		return fmt_jr_fail(r, NULL, "expected an object");
	rc = fmt_jr_keys(r, on, NULL, other_name_keys);
	if (rc != IMP_OK)
		return rc;
	tid = json_string_value(json_object_get(on, "type_id"));
	g->type_id = dotted_oid(tid);
	if (!g->type_id)
		return fmt_jr_fail(r, "type_id", "expected a dotted OID");
	if (strcmp(tid, OID_HW_MODULE_NAME) == 0) {
		/* RFC 4108 5: HardwareModuleName ::= SEQUENCE { hwType OBJECT
		 * IDENTIFIER, hwSerialNum OCTET STRING } */
		const char *enc = json_string_value(json_object_get(on, "encoding"));

		g->kind = CP_GN_HW_MODULE;
		if (json_object_get(on, "utf8"))
			return fmt_jr_fail(r, "utf8", "hardwareModuleName takes hw_type and hw_serial");
		g->hw_type = dotted_oid(json_string_value(json_object_get(on, "hw_type")));
		if (!g->hw_type)
			return fmt_jr_fail(r, "hw_type", "expected the hardware type as a dotted OID");
		if (enc && strcmp(enc, "hex") != 0 && strcmp(enc, "utf8") != 0)
			return fmt_jr_fail(r, "encoding", "expected \"hex\" (the bytes the digits "
					   "spell) or \"utf8\" (the characters)");
		if (!enc && json_object_get(on, "encoding"))
			return fmt_jr_fail(r, "encoding", "expected \"hex\" or \"utf8\"");
		g->hex = enc && strcmp(enc, "hex") == 0;
		rc = gname_template(r, on, "hw_serial", p, false, &g->tmpl);
	} else {
		g->kind = CP_GN_OTHER_UTF8;
		if (json_object_get(on, "hw_type") || json_object_get(on, "hw_serial") ||
		    json_object_get(on, "encoding"))
			return fmt_jr_fail(r, NULL, "hw_type, hw_serial and encoding belong to "
					   "hardwareModuleName (type_id 1.3.6.1.5.5.7.8.4)");
		rc = gname_template(r, on, "utf8", p, false, &g->tmpl);
	}
	fmt_jr_pop(r, mark);
	return rc;
}

static imp_err set_san_names(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *a, void *obj)
{
	struct fmt_certprof *p = obj;
	size_t i;
	json_t *e;

	(void)f;
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > SAN_MAX)
		return fmt_jr_fail(r, NULL, "expected an array of 1 to %u names", SAN_MAX);
	json_array_foreach(a, i, e) {
		size_t mark = fmt_jr_push_index(r, i);
		imp_err rc;

		rc = read_gname(r, e, &p->san[p->nsan++], p);
		if (rc != IMP_OK)
			return rc;
		fmt_jr_pop(r, mark);
	}
	return IMP_OK;
}

static const struct fmt_jr_table san_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "critical", .type = FMT_JR_BOOL, .flags = FMT_JR_REQUIRED,
		  CP_AT(san_critical) },
		{ .name = "names", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED,
		  .set = set_san_names, .expect = "an array of 1 to 8 names" },
		{ 0 },
	},
};

/* ---- crlDistributionPoints, authorityInfoAccess ---- */

/* URIs of an array (1..URL_MAX, the reader's path on a); each a new
 * GENERAL_NAME in out. */
static imp_err uri_list(struct fmt_jr *r, json_t *a, GENERAL_NAME **out, size_t *n)
{
	json_t *e;
	size_t i;

	*n = 0;
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > URL_MAX)
		return fmt_jr_fail(r, NULL, "expected an array of 1 to %u URLs", URL_MAX);
	json_array_foreach(a, i, e) {
		const char *s = get_text(e);
		ASN1_IA5STRING *ia5;

		if (!s || template_vars(s) != 0 || !uri_ok(s, true)) {
			fmt_jr_push_index(r, i);
			return fmt_jr_fail(r, NULL, "expected an ASCII URL with a scheme (http://...), "
					   "without placeholders");
		}
		ia5 = ASN1_IA5STRING_new();
		out[*n] = GENERAL_NAME_new();
		if (!ia5 || !out[*n] || ASN1_STRING_set(ia5, s, -1) != 1) {
			ASN1_IA5STRING_free(ia5);
			return fmt_jr_oom(r);
		}
		GENERAL_NAME_set0_value(out[*n], GEN_URI, ia5);
		(*n)++;
	}
	return IMP_OK;
}

static imp_err set_crldp(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *a, void *obj)
{
	struct fmt_certprof *p = obj;
	GENERAL_NAME *names[URL_MAX] = { 0 };
	CRL_DIST_POINTS *dps = NULL;
	size_t n = 0, i;
	imp_err rc;

	(void)f;
	rc = uri_list(r, a, names, &n);
	if (rc != IMP_OK)
		goto cleanup;
	rc = IMP_ERR_NOMEM;
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
	rc = add_ext(r, p->post, &p->npost, X509V3_EXT_i2d(NID_crl_distribution_points, 0, dps));
cleanup:
	if (rc == IMP_ERR_NOMEM)
		fmt_jr_oom(r);
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	for (i = 0; i < URL_MAX; i++)
		GENERAL_NAME_free(names[i]);
	return rc;
}

static const struct fmt_jr_name aia_keys[] = {
	{ "ocsp", NID_ad_OCSP }, { "ca_issuers", NID_ad_ca_issuers }, { NULL, 0 },
};

static imp_err set_aia(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *o, void *obj)
{
	struct fmt_certprof *p = obj;
	AUTHORITY_INFO_ACCESS *aia = NULL;
	GENERAL_NAME *names[URL_MAX] = { 0 };
	size_t n = 0;
	imp_err rc;

	if (!json_is_object(o))
		return fmt_jr_expected(r, f);
	rc = fmt_jr_keys(r, o, NULL, aia_keys);
	if (rc != IMP_OK)
		return rc;
	if (json_object_size(o) == 0)
		return fmt_jr_fail(r, NULL, "expected ocsp and/or ca_issuers");
	aia = sk_ACCESS_DESCRIPTION_new_null();
	if (!aia)
		return fmt_jr_oom(r);
	for (size_t m = 0; aia_keys[m].name; m++) {
		json_t *a = json_object_get(o, aia_keys[m].name);
		size_t mark;

		if (!a)
			continue;
		mark = fmt_jr_push_key(r, aia_keys[m].name);
		rc = uri_list(r, a, names, &n);
		fmt_jr_pop(r, mark);
		for (size_t i = 0; i < n && rc == IMP_OK; i++) {
			ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();

			if (!ad || !sk_ACCESS_DESCRIPTION_push(aia, ad)) {
				ACCESS_DESCRIPTION_free(ad);
				rc = fmt_jr_oom(r);
				break;
			}
			ad->method = OBJ_nid2obj((int)aia_keys[m].value);
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
	rc = add_ext(r, p->post, &p->npost, X509V3_EXT_i2d(NID_info_access, 0, aia));
cleanup:
	sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
	return rc;
}

/* ---- the profile ---- */

static imp_err set_format(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	(void)obj;
	if (!json_is_string(v) || strcmp(json_string_value(v), FMT_CERTPROF_FORMAT) != 0)
		return fmt_jr_expected(r, f);
	return IMP_OK;
}

static imp_err set_name(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	const struct fmt_certprof *p = obj;

	(void)f;
	if (!json_is_string(v) || strcmp(json_string_value(v), p->name) != 0)
		return fmt_jr_fail(r, NULL, "expected \"%s\" (the file's name)", p->name);
	return IMP_OK;
}

static imp_err set_text(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	(void)f;
	(void)obj;
	return get_text(v) ? IMP_OK : fmt_jr_fail(r, NULL, "expected a non-empty string");
}

static imp_err set_issuer(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_certprof *p = obj;

	(void)f;
	if (p->role == FMT_CP_ROOT)
		return fmt_jr_fail(r, NULL, "a root is its own issuer");
	if (p->role != FMT_CP_DEVICE && p->role != FMT_CP_DEVICE_CA)
		return fmt_jr_fail(r, NULL, "not allowed: the root issues this role (name it in the "
				   "root profile's signers)");
	if (!name_ok(json_string_value(v)))
		return fmt_jr_fail(r, NULL, "expected the issuing CA's profile name");
	return fmt_jr_set_str(r, &p->issuer, json_string_value(v));
}

static imp_err set_signer(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	if (!name_ok(json_string_value(v)))
		return fmt_jr_fail(r, NULL, "expected a profile name");
	return fmt_jr_set_str(r, (char **)((char *)obj + f->offset), json_string_value(v));
}

static const struct fmt_jr_table signers_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "record-signing", .type = FMT_JR_ANY, .set = set_signer, CP_AT(signer[0]) },
		{ .name = "code-signing", .type = FMT_JR_ANY, .set = set_signer, CP_AT(signer[1]) },
		{ .name = "revocation", .type = FMT_JR_ANY, .set = set_signer, CP_AT(signer[2]) },
		{ 0 },
	},
};

static imp_err set_signers(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_certprof *p = obj;

	(void)f;
	if (p->role != FMT_CP_ROOT)
		return fmt_jr_fail(r, NULL, "only a root profile names its signers");
	return fmt_jr_object(r, v, &signers_table, p);
}

static const struct fmt_jr_name role_list[] = {
	{ "device", FMT_CP_DEVICE }, { "device-ca", FMT_CP_DEVICE_CA }, { "root", FMT_CP_ROOT },
	{ "record-signing", FMT_CP_RECORD_SIGNING }, { "code-signing", FMT_CP_CODE_SIGNING },
	{ "revocation", FMT_CP_REVOCATION }, { NULL, 0 },
};

static void profile_init(void *obj)
{
	struct fmt_certprof *p = obj;

	p->serial_bytes = 16;
	p->path_len = -1;
	p->ski = p->aki = true;
	p->vkind = CP_VAL_CONFIG;
}

/* What the rows cannot say alone: members a role needs, defaults from the
 * configuration, and placeholders the configuration must fill. */
static imp_err profile_finish(struct fmt_jr *r, json_t *root, void *obj)
{
	const struct fmt_certprof_settings *s = ((struct cp_ctx *)r->ctx)->s;
	struct fmt_certprof *p = obj;

	if ((p->role == FMT_CP_DEVICE || p->role == FMT_CP_DEVICE_CA) && !p->issuer)
		return fmt_jr_fail(r, "issuer", "expected the issuing CA's profile name");
	if (!json_object_get(root, "subject") && p->role != FMT_CP_DEVICE)
		return fmt_jr_fail(r, "subject", "missing (only a device profile may take "
				   "certificate.subject from the configuration)");
	if (p->vkind == CP_VAL_CONFIG) {
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
	if (p->ca && !p->ski)
		return fmt_jr_fail(r, "subject_key_identifier", "a CA must carry it (RFC 5280 "
				   "4.2.1.2)");
	if (p->role != FMT_CP_ROOT && !p->aki)
		return fmt_jr_fail(r, "authority_key_identifier", "required except in a self-signed "
				   "root (RFC 5280 4.2.1.1)");
	if ((p->vars & V_VID) && !s->has_vid)
		return fmt_jr_fail(r, p->vars_where, "{vid} needs matter.vendor_id in the station "
				   "configuration");
	if ((p->vars & V_PID) && !s->has_pid)
		return fmt_jr_fail(r, p->pid_where, "{pid} needs matter.product_id in the station "
				   "configuration");
	return IMP_OK;
}

static const struct fmt_jr_table profile_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "format", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED, .set = set_format,
		  .expect = "\"" FMT_CERTPROF_FORMAT "\"" },
		{ .name = "name", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED, .set = set_name,
		  .expect = "the file's name" },
		{ .name = "description", .type = FMT_JR_ANY, .set = set_text },
		{ .name = "standard", .type = FMT_JR_ANY, .set = set_text },
		{ .name = "role", .type = FMT_JR_ENUM, .flags = FMT_JR_REQUIRED, .names = role_list,
		  CP_AT(role) },
		{ .name = "issuer", .type = FMT_JR_ANY, .set = set_issuer },
		{ .name = "signers", .type = FMT_JR_ANY, .set = set_signers },
		{ .name = "subject", .type = FMT_JR_ANY, .set = set_subject },
		{ .name = "serial_bytes", .type = FMT_JR_UINT, .min = 2, .max = 20,
		  .expect = "an integer from 2 to 20 (RFC 5280 4.1.2.2: at most 20 octets)",
		  CP_AT(serial_bytes) },
		{ .name = "validity", .type = FMT_JR_OBJECT, .sub = &validity_table },
		{ .name = "basic_constraints", .type = FMT_JR_OBJECT, .flags = FMT_JR_REQUIRED,
		  .sub = &bc_table, .expect = "{\"critical\": true, \"ca\": false}" },
		{ .name = "key_usage", .type = FMT_JR_OBJECT, .flags = FMT_JR_REQUIRED,
		  .sub = &ku_table,
		  .expect = "{\"critical\": true, \"usages\": [\"digitalSignature\"]}" },
		{ .name = "extended_key_usage", .type = FMT_JR_OBJECT, .sub = &eku_table },
		{ .name = "subject_key_identifier", .type = FMT_JR_BOOL, CP_AT(ski) },
		{ .name = "authority_key_identifier", .type = FMT_JR_BOOL, CP_AT(aki) },
		{ .name = "subject_alt_name", .type = FMT_JR_OBJECT, .sub = &san_table },
		{ .name = "crl_distribution_points", .type = FMT_JR_ANY, .set = set_crldp },
		{ .name = "authority_info_access", .type = FMT_JR_ANY, .set = set_aia },
		{ 0 },
	},
	.init = profile_init,
	.finish = profile_finish,
};

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
	{
		struct cp_ctx cc = { p, s };
		struct fmt_jr r;

		fmt_jr_init(&r, &cc);
		rc = fmt_jr_object(&r, root, &profile_table, p);
		if (rc == IMP_ERR_NOMEM)
			poom(&c);
		else if (rc != IMP_OK)
			snprintf(err, cap, "certificate profile '%s' (%s): %s", p->name, p->path, r.msg);
	}
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

imp_err fmt_certprof_find(const char *name, const char *config_dir, char *out, size_t cap)
{
	const char *env = getenv("IMPRINT_CERTPROFILE_PATH");
	char buf[4096];

	if (strchr(name, '/') || (strlen(name) > 5 && !strcmp(name + strlen(name) - 5, ".json"))) {
		if ((size_t)snprintf(out, cap, "%s", name) >= cap)
			return IMP_ERR_CONFIG;
		return access(out, R_OK) == 0 ? IMP_OK : IMP_ERR_NOT_FOUND;
	}
	if (!name_ok(name))
		return IMP_ERR_CONFIG;
	if (imp_json_in_path(env, name, out, cap))
		return IMP_OK;
	if (config_dir && *config_dir) {
		snprintf(buf, sizeof(buf), "%s/certprofiles", config_dir);
		if (imp_json_in_dir(buf, strlen(buf), name, out, cap))
			return IMP_OK;
	}
	if (imp_data_dir("certprofiles", "certprofiles", buf, sizeof(buf)) == IMP_OK &&
	    imp_json_in_dir(buf, strlen(buf), name, out, cap))
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
		char shipped[4096];

		imp_data_dir("certprofiles", "certprofiles", shipped, sizeof(shipped));
		snprintf(err, cap, "%s: no certificate profile '%s' (looked in "
				   "$IMPRINT_CERTPROFILE_PATH, %s/certprofiles, %s); check the name",
			 why, name, s->config_dir ? s->config_dir : "CONFIG_DIR", shipped);
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

/* The subjectAltName extension of the profile (*out new). */
static imp_err san_ext(const struct fmt_certprof *p, const struct fmt_certprof_vars *v,
		       X509_EXTENSION **out)
{
	static const struct fmt_certprof_vars none = { 0 };
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	imp_err rc = IMP_OK;

	*out = NULL;
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
	if (rc == IMP_OK) {
		*out = X509V3_EXT_i2d(NID_subject_alt_name, p->san_critical ? 1 : 0, gens);
		if (!*out)
			rc = IMP_ERR_CRYPTO;
	}
	sk_GENERAL_NAME_pop_free(gens, GENERAL_NAME_free);
	return rc;
}

static imp_err add_san(X509 *x, const struct fmt_certprof *p, const struct fmt_certprof_vars *v)
{
	X509_EXTENSION *ext = NULL;
	imp_err rc = san_ext(p, v, &ext);

	if (rc == IMP_OK && X509_add_ext(x, ext, -1) != 1)
		rc = IMP_ERR_CRYPTO;
	X509_EXTENSION_free(ext);
	return rc;
}

/*
 * fmt_certprof_issue_der for a named-curve P-256 subject key: the same
 * certificate as the X509 path below (its parts made by the same calls, the
 * extensions in the same order), its TBSCertificate encoded directly
 * (fmt_x509_tbs_der) instead of through an X509 built and re-encoded.
 */
static imp_err issue_direct(const struct fmt_certprof_request *req,
			    const struct fmt_signer *signer, EVP_PKEY *issuer_pub,
			    const uint8_t point[65], uint8_t **der, size_t *der_len)
{
	const struct fmt_certprof *p = req->profile;
	X509_EXTENSION *ext[3 + 2 + 1 + 2] = { NULL };
	X509_EXTENSION *ski = NULL, *aki = NULL, *san = NULL;
	X509_NAME *subject = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *nbt = NULL, *nat = NULL;
	const ASN1_TIME *not_after;
	struct fmt_x509_tbs t = { 0 };
	uint8_t *tbs = NULL;
	size_t tbs_len = 0, ne = 0;
	time_t nb;
	imp_err rc;

	_Static_assert(sizeof(((struct fmt_certprof *)0)->pre) / sizeof(X509_EXTENSION *) == 3 &&
			       sizeof(((struct fmt_certprof *)0)->post) / sizeof(X509_EXTENSION *) ==
				       2,
		       "ext[] holds pre, the key ids, the SAN and post");
	rc = fmt_name_build(req->subject, req->subject_count, &subject);
	if (rc == IMP_OK)
		rc = fmt_x509_serial_new(req->serial, req->serial_len, p->serial_bytes, &serial);
	if (rc != IMP_OK)
		goto cleanup;
	rc = IMP_ERR_CRYPTO;
	nb = req->not_before ? req->not_before : time(NULL) - 300;
	nbt = X509_time_adj_ex(NULL, 0, 0, &nb);
	if (!nbt)
		goto cleanup;
	if (p->vkind == CP_VAL_NO_EXPIRY) {
		/* RFC 5280 4.1.2.5: no well-defined expiration date */
		nat = ASN1_TIME_new();
		if (!nat || ASN1_TIME_set_string_X509(nat, "99991231235959Z") != 1)
			goto cleanup;
	} else {
		nat = X509_time_adj_ex(NULL, (int)p->days, 0, &nb);
		if (!nat)
			goto cleanup;
	}
	not_after = nat;
	if (req->issuer) {
		/* A certificate never outlives its issuer (fmt_x509_cap_at_issuer). */
		const ASN1_TIME *ina = X509_get0_notAfter(req->issuer);

		if (ASN1_TIME_compare(nbt, ina) >= 0) {
			IMP_ERROR("certificate: the issuer's validity ends before this one would "
				  "begin: renew the issuing ca");
			rc = IMP_ERR_USAGE;
			goto cleanup;
		}
		if (ASN1_TIME_compare(nat, ina) > 0)
			not_after = ina;
	}
	rc = fmt_x509_key_id_exts(req->subject_key, point, req->issuer, p->ski, p->aki, &ski,
				  &aki);
	if (rc == IMP_OK && p->nsan)
		rc = san_ext(p, req->vars, &san);
	if (rc != IMP_OK)
		goto cleanup;
	for (size_t i = 0; i < p->npre; i++)
		ext[ne++] = p->pre[i];
	if (ski)
		ext[ne++] = ski;
	if (aki)
		ext[ne++] = aki;
	if (san)
		ext[ne++] = san;
	for (size_t i = 0; i < p->npost; i++)
		ext[ne++] = p->post[i];
	t.serial = serial;
	t.issuer = req->issuer ? X509_get_subject_name(req->issuer) : subject;
	t.not_before = nbt;
	t.not_after = not_after;
	t.subject = subject;
	t.point = point;
	t.ext = ext;
	t.n_ext = ne;
	rc = fmt_x509_tbs_der(&t, &tbs, &tbs_len);
	if (rc == IMP_OK)
		rc = fmt_x509_sign_tbs(tbs, tbs_len, issuer_pub, signer, der, der_len);
cleanup:
	ERR_clear_error();
	free(tbs);
	X509_EXTENSION_free(ski);
	X509_EXTENSION_free(aki);
	X509_EXTENSION_free(san);
	ASN1_TIME_free(nbt);
	ASN1_TIME_free(nat);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(subject);
	return rc;
}

/*
 * Issue as fmt_certprof_issue says, into *out (new) if out is not NULL,
 * else into *der (malloc'ed) and *der_len.
 */
static imp_err issue(const struct fmt_certprof_request *req, const struct fmt_signer *signer,
		     X509 **out, uint8_t **der, size_t *der_len)
{
	const struct fmt_certprof *p = req ? req->profile : NULL;
	EVP_PKEY *issuer_pub;
	X509_NAME *subject = NULL;
	X509 *x = NULL;
	uint8_t point[65];
	time_t nb;
	imp_err rc;

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
	if (!out && fmt_pubkey_p256_point(req->subject_key, point))
		return issue_direct(req, signer, issuer_pub, point, der, der_len);
	rc = IMP_ERR_CRYPTO;
	x = X509_new();
	if (!x || X509_set_version(x, X509_VERSION_3) != 1)
		goto cleanup;
	subject = X509_get_subject_name(x); /* x's own: filled in place */
	rc = fmt_name_fill(subject, req->subject, req->subject_count);
	if (rc == IMP_OK)
		rc = fmt_x509_set_serial(x, req->serial, req->serial_len, p->serial_bytes);
	if (rc != IMP_OK)
		goto cleanup;
	rc = IMP_ERR_CRYPTO;
	if (X509_set_issuer_name(x, req->issuer ? X509_get_subject_name(req->issuer) : subject) !=
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
	if (out)
		rc = fmt_x509_finish(x, issuer_pub, signer, out);
	else
		rc = fmt_x509_finish_der(x, issuer_pub, signer, der, der_len);
cleanup:
	ERR_clear_error();
	X509_free(x);
	return rc;
}

imp_err fmt_certprof_issue(const struct fmt_certprof_request *req,
			   const struct fmt_signer *signer, X509 **out)
{
	*out = NULL;
	return issue(req, signer, out, NULL, NULL);
}

imp_err fmt_certprof_issue_der(const struct fmt_certprof_request *req,
			       const struct fmt_signer *signer, uint8_t **der, size_t *der_len)
{
	*der = NULL;
	*der_len = 0;
	return issue(req, signer, NULL, der, der_len);
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
	for (size_t k = 0; ku_names[k].name; k++)
		if (device->ku & ku_names[k].value)
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
		IMP_ERROR("%s is damaged (not the note of the certificate profile the hierarchy "
			  "was made with): restore the trust folder from its backup ('imprint hsm "
			  "init' writes it only with a new hierarchy)", path);
		json_decref(o);
		return IMP_ERR_CONFIG;
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

		for (k = 0; ku_names[k].name; k++)
			if (json_is_string(e) && strcmp(json_string_value(e), ku_names[k].name) == 0)
				break;
		if (!ku_names[k].name) {
			rc = IMP_ERR_PROTOCOL;
			break;
		}
		*ku |= ku_names[k].value;
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
