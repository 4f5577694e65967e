#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "formats/config.h"
#include "formats/matter.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define PATH_MAX_JSON 128   /* longest JSON path we print */
#define FIXTURES_MAX 64u

/* Parsing context: where relative paths resolve, and the first error. */
struct cctx {
	const char *dir;
	char msg[FMT_CONFIG_ERR_MAX];
	imp_err rc;
};

static imp_err fail(struct cctx *c, const char *jpath, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static imp_err fail(struct cctx *c, const char *jpath, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->msg, sizeof(c->msg), "config: %s: ", jpath);
	if (n < 0 || (size_t)n >= sizeof(c->msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(c->msg + n, sizeof(c->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	c->rc = IMP_ERR_CONFIG;
	return IMP_ERR_CONFIG;
}

static imp_err oom(struct cctx *c)
{
	snprintf(c->msg, sizeof(c->msg), "config: out of memory");
	c->rc = IMP_ERR_NOMEM;
	return IMP_ERR_NOMEM;
}

/* jpath of member key of parent ("" is the top level). */
static void sub(char out[PATH_MAX_JSON], const char *parent, const char *key)
{
	int n;

	if (parent[0])
		n = snprintf(out, PATH_MAX_JSON, "%s.%s", parent, key);
	else
		n = snprintf(out, PATH_MAX_JSON, "%s", key);
	if (n < 0 || n >= PATH_MAX_JSON)
		out[PATH_MAX_JSON - 1] = '\0'; /* a cut path still names the field */
}

static imp_err check_keys(struct cctx *c, json_t *obj, const char *jpath,
			  const char *const *allowed, const char *expected)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return fail(c, jpath[0] ? jpath : "(top level)", "expected an object");
	json_object_foreach(obj, key, v) {
		size_t i;
		char p[PATH_MAX_JSON];

		for (i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (!allowed[i]) {
			sub(p, jpath, key);
			return fail(c, p, "unknown key (expected %s)", expected);
		}
	}
	return IMP_OK;
}

static int plain_chars(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return 0;
	return 1;
}

/* Optional non-empty string member; absent leaves *dst untouched. */
static imp_err get_str(struct cctx *c, json_t *obj, const char *parent, const char *key,
		       char **dst)
{
	json_t *v = json_object_get(obj, key);
	char p[PATH_MAX_JSON];
	char *s;

	if (!v)
		return IMP_OK;
	sub(p, parent, key);
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return fail(c, p, "expected a non-empty string");
	s = strdup(json_string_value(v));
	if (!s)
		return oom(c);
	free(*dst);
	*dst = s;
	return IMP_OK;
}

static imp_err get_uint(struct cctx *c, json_t *obj, const char *parent, const char *key,
			uint64_t min, uint64_t max, uint64_t *dst)
{
	json_t *v = json_object_get(obj, key);
	char p[PATH_MAX_JSON];
	json_int_t i;

	if (!v)
		return IMP_OK;
	sub(p, parent, key);
	i = json_integer_value(v);
	if (!json_is_integer(v) || i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return fail(c, p, "expected an integer from %llu to %llu",
			    (unsigned long long)min, (unsigned long long)max);
	*dst = (uint64_t)i;
	return IMP_OK;
}

static imp_err get_unsigned(struct cctx *c, json_t *obj, const char *parent, const char *key,
			    unsigned min, unsigned max, unsigned *dst)
{
	uint64_t v = *dst;
	imp_err rc;

	rc = get_uint(c, obj, parent, key, min, max, &v);
	if (rc == IMP_OK)
		*dst = (unsigned)v;
	return rc;
}

/* An absolute or config-relative path. */
static imp_err resolve(struct cctx *c, const char *path, char **out)
{
	char *r;

	if (path[0] == '/') {
		r = strdup(path);
	} else if (asprintf(&r, "%s/%s", c->dir, path) < 0) {
		r = NULL;
	}
	if (!r)
		return oom(c);
	*out = r;
	return IMP_OK;
}

static imp_err get_path(struct cctx *c, json_t *obj, const char *parent, const char *key,
			char **dst)
{
	char *raw = NULL;
	char *resolved = NULL;
	imp_err rc;

	rc = get_str(c, obj, parent, key, &raw);
	if (rc != IMP_OK || !raw)
		return rc;
	rc = resolve(c, raw, &resolved);
	free(raw);
	if (rc != IMP_OK)
		return rc;
	free(*dst);
	*dst = resolved;
	return IMP_OK;
}

static int env_name_ok(const char *s)
{
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	return plain_chars(s, "_");
}

static imp_err get_env_name(struct cctx *c, json_t *obj, const char *parent, const char *key,
			    char **dst)
{
	char p[PATH_MAX_JSON];
	imp_err rc;

	rc = get_str(c, obj, parent, key, dst);
	if (rc != IMP_OK || !*dst || !json_object_get(obj, key))
		return rc;
	if (!env_name_ok(*dst)) {
		sub(p, parent, key);
		return fail(c, p, "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
	}
	return IMP_OK;
}

/* ---- sections ---- */

static imp_err parse_product(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	static const char *const keys[] = { "name", "sku", NULL };
	imp_err rc;

	rc = check_keys(c, o, "product", keys, "name, sku");
	if (rc == IMP_OK)
		rc = get_str(c, o, "product", "name", &cfg->product.name);
	if (rc == IMP_OK)
		rc = get_str(c, o, "product", "sku", &cfg->product.sku);
	return rc;
}

static imp_err parse_serial(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	static const char *const keys[] = { "prefix", "width", "check_digit", "start", NULL };
	json_t *v;
	uint64_t limit = 1;
	imp_err rc;

	rc = check_keys(c, o, "serial", keys, "prefix, width, check_digit, start");
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(o, "prefix");
	if (v) {
		const char *s = json_string_value(v);
		char *d;

		if (!s || strlen(s) > FMT_SERIAL_PREFIX_MAX || !plain_chars(s, "") ||
		    strpbrk(s, "abcdefghijklmnopqrstuvwxyz"))
			return fail(c, "serial.prefix",
				    "expected 0 to %u characters of A-Z and 0-9",
				    FMT_SERIAL_PREFIX_MAX);
		d = strdup(s);
		if (!d)
			return oom(c);
		free(cfg->serial.prefix);
		cfg->serial.prefix = d;
	}
	rc = get_unsigned(c, o, "serial", "width", 1, FMT_SERIAL_WIDTH_MAX, &cfg->serial.width);
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(o, "check_digit");
	if (v && fmt_check_digit_parse(json_string_value(v), &cfg->serial.check_digit) != IMP_OK)
		return fail(c, "serial.check_digit", "expected \"none\", \"luhn36\" or \"mod97\"");
	for (unsigned i = 0; i < cfg->serial.width; i++)
		limit *= 10;
	return get_uint(c, o, "serial", "start", 0, limit - 1, &cfg->serial.start);
}

static const char *const subject_attrs[] = { "C", "ST", "L", "O", "OU", "CN", "serialNumber",
					     NULL };

static imp_err add_entry(struct fmt_name_entry **arr, size_t *n, const char *attr,
			 const char *value)
{
	struct fmt_name_entry *e = realloc(*arr, (*n + 1) * sizeof(**arr));
	char *a;
	char *v;

	if (!e)
		return IMP_ERR_NOMEM;
	*arr = e;
	a = strdup(attr);
	v = strdup(value);
	if (!a || !v) {
		free(a);
		free(v);
		return IMP_ERR_NOMEM;
	}
	e[*n].attr = a;
	e[*n].value = v;
	(*n)++;
	return IMP_OK;
}

static imp_err parse_subject(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	const char *key;
	json_t *v;

	if (!json_is_object(o) || json_object_size(o) == 0)
		return fail(c, "certificate.subject", "expected a non-empty object of attributes");
	json_object_foreach(o, key, v) {
		char p[PATH_MAX_JSON];
		char *probe = NULL;
		const char *s;
		size_t i;

		sub(p, "certificate.subject", key);
		for (i = 0; subject_attrs[i]; i++)
			if (strcmp(key, subject_attrs[i]) == 0)
				break;
		if (!subject_attrs[i])
			return fail(c, p, "unknown key (expected C, ST, L, O, OU, CN, serialNumber)");
		s = json_string_value(v);
		if (!s || !s[0])
			return fail(c, p, "expected a non-empty string");
		if (fmt_subject_expand(s, "S", "U", "K", &probe) != IMP_OK)
			return fail(c, p, "unknown placeholder (expected {serial}, {uid} or {sku})");
		free(probe);
		if (strcmp(key, "C") == 0 &&
		    !(strlen(s) == 2 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1])))
			return fail(c, p, "expected a 2-letter country code (\"DE\")");
		if (add_entry(&cfg->certificate.subject, &cfg->certificate.subject_count, key, s) !=
		    IMP_OK)
			return oom(c);
	}
	return IMP_OK;
}

static imp_err parse_certificate(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	static const char *const keys[] = { "subject", "validity_days", "profile", NULL };
	json_t *subj;
	imp_err rc;

	rc = check_keys(c, o, "certificate", keys, "subject, validity_days, profile");
	if (rc != IMP_OK)
		return rc;
	subj = json_object_get(o, "subject");
	if (subj) {
		rc = parse_subject(c, subj, cfg);
		if (rc != IMP_OK)
			return rc;
		cfg->certificate.subject_set = true;
	}
	rc = get_str(c, o, "certificate", "profile", &cfg->certificate.profile);
	if (rc != IMP_OK)
		return rc;
	if (!plain_chars(cfg->certificate.profile, "-_.") || cfg->certificate.profile[0] == '.')
		return fail(c, "certificate.profile",
			    "expected a certificate profile name (A-Z a-z 0-9 - _ .)");
	return get_unsigned(c, o, "certificate", "validity_days", 1, 36500,
			    &cfg->certificate.validity_days);
}

/* ---- matter (docs/MATTER.md) ---- */

/* "matter.vendor_id": 4 hex digits as the Matter specification writes them. */
static imp_err get_matter_id(struct cctx *c, json_t *o, const char *key, char out[5])
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	char p[PATH_MAX_JSON];

	if (!v)
		return IMP_OK;
	sub(p, "matter", key);
	if (!s || strlen(s) != 4 || !plain_chars(s, ""))
		return fail(c, p, "expected 4 hex digits, e.g. \"FFF1\"");
	for (int i = 0; i < 4; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return fail(c, p, "expected 4 hex digits, e.g. \"FFF1\"");
		if (islower((unsigned char)s[i]))
			return fail(c, p, "expected uppercase hex digits (\"FFF1\", as the "
					  "Matter specification writes them)");
	}
	memcpy(out, s, 5);
	return IMP_OK;
}

uint16_t fmt_matter_id_value(const char id[5])
{
	return id[0] ? (uint16_t)strtoul(id, NULL, 16) : 0;
}

static imp_err parse_matter(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	static const char *const keys[] = { "vendor_id", "product_id", "discriminator",
					    "spake2p_iterations", "salt_length", "discovery",
					    "commissioning_flow", "certification_declaration",
					    NULL };
	static const struct {
		const char *name;
		unsigned bit;
	} disc[] = { { "softap", FMT_MATTER_DISC_SOFTAP }, { "ble", FMT_MATTER_DISC_BLE },
		     { "on-network", FMT_MATTER_DISC_ON_NETWORK },
		     { "wifi-paf", FMT_MATTER_DISC_WIFI_PAF }, { "nfc", FMT_MATTER_DISC_NFC } };
	static const char *const flows[] = { "standard", "user-intent", "custom" };
	struct fmt_matter_config *m = &cfg->matter;
	unsigned d = 0;
	json_t *v;
	imp_err rc;

	rc = check_keys(c, o, "matter", keys,
			"vendor_id, product_id, discriminator, spake2p_iterations, salt_length, "
			"discovery, commissioning_flow, certification_declaration");
	if (rc == IMP_OK)
		rc = get_matter_id(c, o, "vendor_id", cfg->matter.vendor_id);
	if (rc == IMP_OK)
		rc = get_matter_id(c, o, "product_id", cfg->matter.product_id);
	if (rc == IMP_OK && strcmp(cfg->matter.vendor_id, "0000") == 0)
		rc = fail(c, "matter.vendor_id", "0000 is not a vendor id (Matter: reserved)");
	if (rc != IMP_OK)
		return rc;
	/* The factory data and the DAC carry both IDs. */
	if (!cfg->matter.vendor_id[0])
		return fail(c, "matter.vendor_id", "missing: the factory data needs the vendor id "
			    "(4 hex digits, e.g. \"FFF1\")");
	if (!cfg->matter.product_id[0])
		return fail(c, "matter.product_id", "missing: the factory data needs the product id "
			    "(4 hex digits, e.g. \"8000\")");
	if (cfg->key_mode == FMT_KEY_MODE_PSK)
		return fail(c, "matter", "a Matter device attests with its certificate: key_mode "
			    "must be \"device\" or \"hsm\", not \"psk\"");
	if (json_object_get(o, "discriminator")) {
		rc = get_unsigned(c, o, "matter", "discriminator", 0, FMT_MATTER_DISCRIMINATOR_MAX,
				  &d);
		if (rc != IMP_OK)
			return rc;
		m->discriminator = (int)d;
	}
	rc = get_unsigned(c, o, "matter", "spake2p_iterations", FMT_MATTER_ITER_MIN,
			  FMT_MATTER_ITER_MAX, &m->iterations);
	if (rc == IMP_OK)
		rc = get_unsigned(c, o, "matter", "salt_length", FMT_MATTER_SALT_MIN,
				  FMT_MATTER_SALT_MAX, &m->salt_length);
	if (rc == IMP_OK)
		rc = get_path(c, o, "matter", "certification_declaration",
			      &m->certification_declaration);
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(o, "discovery");
	if (v) {
		size_t i;
		json_t *e;

		if (!json_is_array(v) || json_array_size(v) == 0)
			return fail(c, "matter.discovery", "expected a non-empty list of \"ble\", "
				    "\"softap\", \"on-network\", \"wifi-paf\", \"nfc\"");
		m->discovery = 0;
		json_array_foreach(v, i, e) {
			char p[PATH_MAX_JSON];
			size_t k;

			for (k = 0; k < IMP_ARRAY_SIZE(disc); k++)
				if (json_is_string(e) && strcmp(json_string_value(e), disc[k].name) == 0)
					break;
			if (k == IMP_ARRAY_SIZE(disc)) {
				snprintf(p, sizeof(p), "matter.discovery[%zu]", i);
				return fail(c, p, "expected \"ble\", \"softap\", \"on-network\", "
					    "\"wifi-paf\" or \"nfc\"");
			}
			m->discovery |= (uint8_t)disc[k].bit;
		}
	}
	v = json_object_get(o, "commissioning_flow");
	if (v) {
		size_t k;

		for (k = 0; k < IMP_ARRAY_SIZE(flows); k++)
			if (json_is_string(v) && strcmp(json_string_value(v), flows[k]) == 0)
				break;
		if (k == IMP_ARRAY_SIZE(flows))
			return fail(c, "matter.commissioning_flow",
				    "expected \"standard\", \"user-intent\" or \"custom\"");
		m->flow = (unsigned)k;
	}
	m->enabled = true;
	return IMP_OK;
}

static imp_err parse_organisation(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	static const char *const keys[] = { "name", "country", "root_validity_days",
					    "ca_validity_days", NULL };
	json_t *v;
	imp_err rc;

	rc = check_keys(c, o, "organisation", keys,
			"name, country, root_validity_days, ca_validity_days");
	if (rc == IMP_OK)
		rc = get_str(c, o, "organisation", "name", &cfg->organisation.name);
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(o, "country");
	if (v) {
		const char *s = json_string_value(v);

		if (!s || strlen(s) != 2 || !isupper((unsigned char)s[0]) ||
		    !isupper((unsigned char)s[1]))
			return fail(c, "organisation.country",
				    "expected a 2-letter country code (\"DE\")");
		memcpy(cfg->organisation.country, s, 3);
	}
	rc = get_unsigned(c, o, "organisation", "root_validity_days", 1, 36500,
			  &cfg->organisation.root_validity_days);
	if (rc == IMP_OK)
		rc = get_unsigned(c, o, "organisation", "ca_validity_days", 1, 36500,
				  &cfg->organisation.ca_validity_days);
	return rc;
}

static imp_err parse_firmware(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	static const char *const keys[] = { "image", "signature", NULL };
	imp_err rc;

	rc = check_keys(c, o, "firmware", keys, "image, signature");
	if (rc == IMP_OK)
		rc = get_path(c, o, "firmware", "image", &cfg->firmware.image);
	if (rc == IMP_OK)
		rc = get_path(c, o, "firmware", "signature", &cfg->firmware.signature);
	return rc;
}

static const unsigned std_bauds[] = { 9600, 19200, 38400, 57600, 115200, 230400, 460800,
				      500000, 576000, 921600, 1000000, 1152000, 1500000,
				      2000000, 3000000, 4000000 };

/* A probe URI's query: "?k=v&k=v" of plain characters (the driver checks
 * the keys when it opens). */
static bool probe_query_ok(const char *q)
{
	if (*q == '\0')
		return true;
	if (*q != '?' || q[1] == '\0')
		return false;
	for (q++; *q; q++)
		if (!isalnum((unsigned char)*q) && !strchr("._:/-=&+", *q))
			return false;
	return true;
}

/* "rsp://HOST:PORT[?QUERY]" (HOST may be [v6]), "openocd://CONFIG[?QUERY]",
 * "rsp+serial:///PATH[?QUERY]" or "sim:". */
static int parse_probe(const char *s, struct fmt_fixture *f)
{
	const char *host;
	const char *colon;
	const char *host_end;
	char *end;
	unsigned long port;
	char hostport[300];
	size_t hl;

	if (strcmp(s, "sim:") == 0) {
		f->probe_kind = FMT_PROBE_SIM;
		return 1;
	}
	if (strncmp(s, "openocd://", 10) == 0) {
		size_t cl = strcspn(s + 10, "?");

		if (cl == 0 || !probe_query_ok(s + 10 + cl))
			return 0;
		for (size_t i = 0; i < cl; i++)
			if (!isalnum((unsigned char)s[10 + i]) && !strchr("._:/-", s[10 + i]))
				return 0;
		f->probe_kind = FMT_PROBE_OPENOCD;
		return 1;
	}
	if (strncmp(s, "rsp+serial:///", 14) == 0) {
		size_t cl = strcspn(s + 13, "?");

		if (cl < 2 || !probe_query_ok(s + 13 + cl))
			return 0;
		for (size_t i = 0; i < cl; i++)
			if (!isalnum((unsigned char)s[13 + i]) && !strchr("._/-", s[13 + i]))
				return 0;
		f->probe_kind = FMT_PROBE_RSP_SERIAL;
		return 1;
	}
	if (strncmp(s, "rsp://", 6) != 0)
		return 0;
	hl = strcspn(s, "?");
	if (hl >= sizeof(hostport) || !probe_query_ok(s + hl))
		return 0;
	memcpy(hostport, s, hl);
	hostport[hl] = '\0';
	s = hostport;
	host = s + 6;
	if (host[0] == '[') {
		host_end = strchr(host, ']');
		if (!host_end || host_end[1] != ':')
			return 0;
		colon = host_end + 1;
		host++;
	} else {
		colon = strrchr(host, ':');
		if (!colon || memchr(host, ':', (size_t)(colon - host)))
			return 0;
		host_end = colon;
	}
	if (host_end == host)
		return 0;
	for (const char *p = host; p < host_end; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_:", *p))
			return 0;
	if (!isdigit((unsigned char)colon[1]))
		return 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return 0;
	f->probe_host = strndup(host, (size_t)(host_end - host));
	if (!f->probe_host)
		return -1;
	f->probe_kind = FMT_PROBE_RSP;
	f->probe_port = (unsigned)port;
	return 1;
}

static imp_err parse_fixture(struct cctx *c, json_t *o, size_t idx, struct fmt_fixture *f)
{
	static const char *const keys[] = { "name", "probe", "uart", "baud", "reader", NULL };
	char base[PATH_MAX_JSON];
	char p[PATH_MAX_JSON];
	unsigned baud = 921600;
	size_t i;
	int r;
	imp_err rc;

	snprintf(base, sizeof(base), "fixtures[%zu]", idx);
	f->baud = baud;
	rc = check_keys(c, o, base, keys, "name, probe, uart, baud, reader");
	if (rc != IMP_OK)
		return rc;
	sub(p, base, "name");
	if (!json_object_get(o, "name"))
		return fail(c, p, "missing (expected a fixture name)");
	rc = get_str(c, o, base, "name", &f->name);
	if (rc != IMP_OK)
		return rc;
	if (strlen(f->name) > 32 || !plain_chars(f->name, "-_."))
		return fail(c, p, "expected 1 to 32 characters of A-Z a-z 0-9 - _ .");
	sub(p, base, "probe");
	if (!json_is_string(json_object_get(o, "probe")))
		return fail(c, p, "expected \"rsp://HOST:PORT\", \"openocd://CONFIG\" or \"sim:\"");
	rc = get_str(c, o, base, "probe", &f->probe);
	if (rc != IMP_OK)
		return rc;
	r = parse_probe(f->probe, f);
	if (r < 0)
		return oom(c);
	if (r == 0)
		return fail(c, p, "expected \"rsp://HOST:PORT[?KEY=VALUE&...]\", "
			    "\"openocd://CONFIG[?KEY=VALUE&...]\" or \"sim:\"");
	rc = get_str(c, o, base, "uart", &f->uart);
	if (rc == IMP_OK)
		rc = get_str(c, o, base, "reader", &f->reader);
	if (rc == IMP_OK)
		rc = get_unsigned(c, o, base, "baud", 1, 4000000, &baud);
	if (rc != IMP_OK)
		return rc;
	for (i = 0; i < IMP_ARRAY_SIZE(std_bauds); i++)
		if (std_bauds[i] == baud)
			break;
	if (i == IMP_ARRAY_SIZE(std_bauds)) {
		sub(p, base, "baud");
		return fail(c, p, "expected a standard rate (9600, 19200, ... 115200, ... "
			    "921600, ... 4000000)");
	}
	f->baud = baud;
	if (f->probe_kind != FMT_PROBE_SIM && !f->uart) {
		sub(p, base, "uart");
		return fail(c, p, "missing (required with an rsp:// or openocd:// probe: the serial "
			    "device)");
	}
	return IMP_OK;
}

static void fixture_release(struct fmt_fixture *f)
{
	free(f->name);
	free(f->probe);
	free(f->probe_host);
	free(f->uart);
	free(f->reader);
	memset(f, 0, sizeof(*f));
}

static void fixtures_free(struct fmt_config *cfg)
{
	for (size_t i = 0; i < cfg->fixture_count; i++)
		fixture_release(&cfg->fixtures[i]);
	free(cfg->fixtures);
	cfg->fixtures = NULL;
	cfg->fixture_count = 0;
}

static imp_err parse_fixtures(struct cctx *c, json_t *a, struct fmt_config *cfg)
{
	size_t n = json_array_size(a);
	imp_err rc;

	if (!json_is_array(a) || n < 1 || n > FIXTURES_MAX)
		return fail(c, "fixtures", "expected an array of 1 to %u fixtures", FIXTURES_MAX);
	fixtures_free(cfg);
	cfg->fixtures = calloc(n, sizeof(*cfg->fixtures));
	if (!cfg->fixtures)
		return oom(c);
	for (size_t i = 0; i < n; i++) {
		cfg->fixture_count = i + 1;
		rc = parse_fixture(c, json_array_get(a, i), i, &cfg->fixtures[i]);
		if (rc != IMP_OK)
			return rc;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(cfg->fixtures[j].name, cfg->fixtures[i].name) == 0) {
				char p[PATH_MAX_JSON];

				snprintf(p, sizeof(p), "fixtures[%zu].name", i);
				return fail(c, p, "duplicate name \"%s\" (expected unique names)",
					    cfg->fixtures[i].name);
			}
		}
	}
	return IMP_OK;
}

static imp_err parse_pin(struct cctx *c, json_t *o, const char *jpath, struct fmt_pin_spec *pin)
{
	static const char *const keys[] = { "env", "file", "prompt", NULL };
	static const char expected[] =
		"expected {\"env\": \"VAR\"}, {\"file\": \"PATH\"} or {\"prompt\": true}";
	json_t *v;
	imp_err rc;

	if (!json_is_object(o) || json_object_size(o) != 1)
		return fail(c, jpath, "%s", expected);
	rc = check_keys(c, o, jpath, keys, "env, file or prompt");
	if (rc != IMP_OK)
		return rc;
	free(pin->value);
	pin->value = NULL;
	if (json_object_get(o, "env")) {
		pin->source = FMT_PIN_ENV;
		return get_env_name(c, o, jpath, "env", &pin->value);
	}
	if (json_object_get(o, "file")) {
		pin->source = FMT_PIN_FILE;
		return get_path(c, o, jpath, "file", &pin->value);
	}
	v = json_object_get(o, "prompt");
	if (!json_is_true(v)) {
		char p[PATH_MAX_JSON];

		sub(p, jpath, "prompt");
		return fail(c, p, "expected true");
	}
	pin->source = FMT_PIN_PROMPT;
	return IMP_OK;
}

static imp_err parse_hsm(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	static const char *const keys[] = { "module", "init_args", "token", "pin",
					    "supervisor_pin", NULL };
	json_t *v;
	imp_err rc;

	rc = check_keys(c, o, "hsm", keys, "module, init_args, token, pin, supervisor_pin");
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(o, "module");
	if (v) {
		const char *s = json_string_value(v);

		/* A name is looked up in p11-kit's registrations when the hsm is
		 * opened (the message there lists them: imprint hsm tokens). */
		if (!s || !s[0] || (!strchr(s, '/') && !plain_chars(s, "-_.")) || s[0] == '.')
			return fail(c, "hsm.module",
				    "expected a p11-kit module name (\"softhsm2\", see 'imprint "
				    "hsm tokens') or a path to a PKCS#11 module");
		if (strchr(s, '/'))
			rc = get_path(c, o, "hsm", "module", &cfg->hsm.module);
		else
			rc = get_str(c, o, "hsm", "module", &cfg->hsm.module);
		if (rc != IMP_OK)
			return rc;
	}
	v = json_object_get(o, "init_args");
	if (v) {
		const char *s = json_string_value(v);

		if (!s || !s[0] || strlen(s) > 4096)
			return fail(c, "hsm.init_args",
				    "expected the module's C_Initialize parameter string (NSS: "
				    "\"configdir='sql:DIR' certPrefix='' keyPrefix='' "
				    "secmod='secmod.db'\")");
		if (!cfg->hsm.module && !json_object_get(o, "module"))
			return fail(c, "hsm.init_args", "needs hsm.module");
		rc = get_str(c, o, "hsm", "init_args", &cfg->hsm.init_args);
		if (rc != IMP_OK)
			return rc;
	}
	v = json_object_get(o, "token");
	if (v) {
		const char *s = json_string_value(v);

		if (!s || strncmp(s, "pkcs11:", 7) != 0)
			return fail(c, "hsm.token", "expected an RFC 7512 URI (\"pkcs11:token=NAME\")");
		rc = get_str(c, o, "hsm", "token", &cfg->hsm.token);
		if (rc != IMP_OK)
			return rc;
	}
	v = json_object_get(o, "pin");
	if (v) {
		rc = parse_pin(c, v, "hsm.pin", &cfg->hsm.pin);
		if (rc != IMP_OK)
			return rc;
	}
	v = json_object_get(o, "supervisor_pin");
	if (v)
		rc = parse_pin(c, v, "hsm.supervisor_pin", &cfg->hsm.supervisor_pin);
	return rc;
}

static imp_err parse_registry(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	static const char *const keys[] = { "url", "ca", "cert", "key", "bearer_env", NULL };
	json_t *v;
	imp_err rc;

	rc = check_keys(c, o, "registry", keys, "url, ca, cert, key, bearer_env");
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(o, "url");
	if (v) {
		const char *s = json_string_value(v);

		if (!s || strncmp(s, "https://", 8) != 0 || !s[8])
			return fail(c, "registry.url", "expected an https:// URL");
		rc = get_str(c, o, "registry", "url", &cfg->registry.url);
		if (rc != IMP_OK)
			return rc;
	}
	rc = get_path(c, o, "registry", "ca", &cfg->registry.ca);
	if (rc == IMP_OK)
		rc = get_path(c, o, "registry", "cert", &cfg->registry.cert);
	if (rc == IMP_OK)
		rc = get_path(c, o, "registry", "key", &cfg->registry.key);
	if (rc == IMP_OK)
		rc = get_env_name(c, o, "registry", "bearer_env", &cfg->registry.bearer_env);
	if (rc != IMP_OK)
		return rc;
	if (cfg->registry.cert && !cfg->registry.key)
		return fail(c, "registry.key", "missing (required with registry.cert)");
	if (cfg->registry.key && !cfg->registry.cert)
		return fail(c, "registry.cert", "missing (required with registry.key)");
	return IMP_OK;
}

static imp_err parse_line(struct cctx *c, json_t *o, struct fmt_config *cfg)
{
	static const char *const keys[] = { "url", "block", "quota", "connect_timeout", NULL };
	json_t *v;
	imp_err rc;

	rc = check_keys(c, o, "line", keys, "url, block, quota, connect_timeout");
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(o, "url");
	if (!v || !json_string_value(v) || !json_string_value(v)[0])
		return fail(c, "line.url", "expected a PostgreSQL URL (\"postgresql://...\")");
	rc = get_str(c, o, "line", "url", &cfg->line.url);
	if (rc == IMP_OK)
		rc = get_unsigned(c, o, "line", "block", 1, 100000, &cfg->line.block);
	if (rc == IMP_OK)
		rc = get_uint(c, o, "line", "quota", 0, (uint64_t)INT64_MAX, &cfg->line.quota);
	if (rc == IMP_OK)
		rc = get_unsigned(c, o, "line", "connect_timeout", 1, 60,
				  &cfg->line.connect_timeout);
	return rc;
}

static imp_err parse_top(struct cctx *c, json_t *root, struct fmt_config *cfg)
{
	static const char *const keys[] = { "version", "station_id", "operator", "product",
					    "serial", "key_mode", "certificate", "organisation",
					    "firmware", "target", "fixtures", "hsm", "registry",
					    "quota", "journal", "line", "matter", NULL };
	static const struct {
		const char *key;
		imp_err (*parse)(struct cctx *, json_t *, struct fmt_config *);
	} sections[] = {
		{ "product", parse_product },
		{ "serial", parse_serial },
		{ "certificate", parse_certificate },
		{ "organisation", parse_organisation },
		{ "firmware", parse_firmware },
		{ "fixtures", parse_fixtures },
		{ "hsm", parse_hsm },
		{ "registry", parse_registry },
		{ "line", parse_line },
		{ "matter", parse_matter },
	};
	json_t *v;
	imp_err rc;

	rc = check_keys(c, root, "", keys,
			"version, station_id, operator, product, serial, key_mode, "
			"certificate, organisation, firmware, target, fixtures, hsm, "
			"registry, quota, journal, line, matter");
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(root, "version");
	if (!v)
		return fail(c, "version", "missing (expected 1)");
	if (!json_is_integer(v) || json_integer_value(v) != FMT_CONFIG_VERSION)
		return fail(c, "version", "expected 1");
	rc = get_str(c, root, "", "station_id", &cfg->station_id);
	if (rc != IMP_OK)
		return rc;
	if (strlen(cfg->station_id) > 64 || !plain_chars(cfg->station_id, "-_."))
		return fail(c, "station_id", "expected 1 to 64 characters of A-Z a-z 0-9 - _ .");
	rc = get_str(c, root, "", "operator", &cfg->operator_name);
	if (rc != IMP_OK)
		return rc;
	v = json_object_get(root, "key_mode");
	if (v && fmt_key_mode_parse(json_string_value(v), &cfg->key_mode) != IMP_OK)
		return fail(c, "key_mode", "expected \"device\", \"hsm\" or \"psk\"");
	rc = get_str(c, root, "", "target", &cfg->target);
	if (rc != IMP_OK)
		return rc;
	if (!plain_chars(cfg->target, "-_.") || cfg->target[0] == '.')
		return fail(c, "target", "expected a profile name (A-Z a-z 0-9 - _ .)");
	rc = get_uint(c, root, "", "quota", 0, (uint64_t)INT64_MAX, &cfg->quota);
	if (rc != IMP_OK)
		return rc;
	rc = get_path(c, root, "", "journal", &cfg->journal);
	if (rc != IMP_OK)
		return rc;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(sections); i++) {
		v = json_object_get(root, sections[i].key);
		if (!v)
			continue;
		if (!json_is_object(v) && strcmp(sections[i].key, "fixtures") != 0)
			return fail(c, sections[i].key, "expected an object");
		rc = sections[i].parse(c, v, cfg);
		if (rc != IMP_OK)
			return rc;
	}
	return IMP_OK;
}

/* Defaults that depend on other fields, applied after parsing. */
static imp_err finish(struct fmt_config *cfg)
{
	if (cfg->certificate.subject_count == 0) {
		if (add_entry(&cfg->certificate.subject, &cfg->certificate.subject_count, "O",
			      cfg->organisation.name) != IMP_OK ||
		    add_entry(&cfg->certificate.subject, &cfg->certificate.subject_count, "CN",
			      "{serial}") != IMP_OK ||
		    add_entry(&cfg->certificate.subject, &cfg->certificate.subject_count,
			      "serialNumber", "{uid}") != IMP_OK)
			return IMP_ERR_NOMEM;
	}
	if (cfg->fixture_count == 0) {
		cfg->fixtures = calloc(1, sizeof(*cfg->fixtures));
		if (!cfg->fixtures)
			return IMP_ERR_NOMEM;
		cfg->fixture_count = 1;
		cfg->fixtures[0].name = strdup("F1");
		cfg->fixtures[0].probe = strdup("sim:");
		cfg->fixtures[0].probe_kind = FMT_PROBE_SIM;
		cfg->fixtures[0].baud = 921600;
		if (!cfg->fixtures[0].name || !cfg->fixtures[0].probe)
			return IMP_ERR_NOMEM;
	}
	return IMP_OK;
}

static imp_err set_defaults(struct fmt_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->version = FMT_CONFIG_VERSION;
	cfg->station_id = strdup("station");
	cfg->product.name = strdup("Imprint Device");
	cfg->product.sku = strdup("IMPRINT-DEV");
	cfg->serial.prefix = strdup("IMP");
	cfg->serial.width = 6;
	cfg->serial.check_digit = FMT_CHECK_NONE;
	cfg->serial.start = 1;
	cfg->key_mode = FMT_KEY_MODE_DEVICE;
	cfg->certificate.validity_days = 7300;
	cfg->certificate.profile = strdup(FMT_CERTPROF_DEFAULT);
	cfg->organisation.name = strdup("Imprint Demo Organisation");
	cfg->organisation.root_validity_days = 9125;
	cfg->organisation.ca_validity_days = 7300;
	cfg->target = strdup("imprint-vb1");
	cfg->hsm.token = strdup("pkcs11:token=imprint");
	cfg->quota = FMT_QUOTA_DEFAULT;
	cfg->line.block = 50;
	cfg->line.connect_timeout = 2;
	cfg->matter.discriminator = -1;
	cfg->matter.iterations = FMT_MATTER_ITER_DEFAULT;
	cfg->matter.salt_length = FMT_MATTER_SALT_DEFAULT;
	cfg->matter.discovery = FMT_MATTER_DISC_BLE;
	if (!cfg->station_id || !cfg->product.name || !cfg->product.sku ||
	    !cfg->serial.prefix || !cfg->organisation.name || !cfg->target || !cfg->hsm.token ||
	    !cfg->certificate.profile)
		return IMP_ERR_NOMEM;
	return IMP_OK;
}

imp_err fmt_config_defaults(struct fmt_config *cfg)
{
	imp_err rc;

	rc = set_defaults(cfg);
	if (rc == IMP_OK)
		rc = finish(cfg);
	if (rc == IMP_OK)
		rc = fmt_config_load_profiles(cfg, NULL);
	if (rc != IMP_OK)
		fmt_config_release(cfg);
	return rc;
}

imp_err fmt_config_load_profiles(struct fmt_config *cfg, char *err_buf)
{
	struct fmt_certprof_settings s = {
		.config_dir = cfg->dir,
		.device_days = cfg->certificate.validity_days,
		.root_days = cfg->organisation.root_validity_days,
		.ca_days = cfg->organisation.ca_validity_days,
		.subject_configured = cfg->certificate.subject_set,
		.has_vid = cfg->matter.vendor_id[0] != '\0',
		.has_pid = cfg->matter.product_id[0] != '\0',
	};
	struct fmt_certprof_set *set = NULL;
	char msg[FMT_CONFIG_ERR_MAX];
	imp_err rc;

	rc = fmt_certprof_set_load(cfg->certificate.profile, &s, &set, msg, sizeof(msg));
	if (rc != IMP_OK) {
		IMP_ERROR("%s", msg);
		if (err_buf)
			snprintf(err_buf, FMT_CONFIG_ERR_MAX, "%s", msg);
		return rc == IMP_ERR_NOT_FOUND ? IMP_ERR_CONFIG : rc;
	}
	fmt_certprof_set_free(cfg->certificate.profiles);
	cfg->certificate.profiles = set;
	return IMP_OK;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;
	char *real;

	if (!slash)
		d = strdup(".");
	else if (slash == path)
		d = strdup("/");
	else
		d = strndup(path, (size_t)(slash - path));
	if (!d)
		return NULL;
	real = realpath(d, NULL);
	if (real) {
		free(d);
		return real;
	}
	return d;
}

imp_err fmt_config_load(const char *path, struct fmt_config *cfg, char *err_buf)
{
	struct cctx c;
	uint8_t *data = NULL;
	size_t n = 0;
	json_t *root = NULL;
	json_error_t jerr;
	imp_err rc;

	memset(&c, 0, sizeof(c));
	if (err_buf)
		err_buf[0] = '\0';
	rc = set_defaults(cfg);
	if (rc != IMP_OK) {
		oom(&c);
		goto cleanup;
	}
	cfg->path = strdup(path);
	cfg->dir = dir_of(path);
	if (!cfg->path || !cfg->dir) {
		rc = oom(&c);
		goto cleanup;
	}
	c.dir = cfg->dir;
	rc = imp_read_file(path, &data, &n);
	if (rc != IMP_OK) {
		snprintf(c.msg, sizeof(c.msg), "config: %s: cannot read the file", path);
		goto cleanup;
	}
	root = json_loadb((const char *)data, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(c.msg, sizeof(c.msg), "config: line %d column %d: %s", jerr.line,
			 jerr.column, jerr.text);
		rc = IMP_ERR_CONFIG;
		goto cleanup;
	}
	rc = parse_top(&c, root, cfg);
	if (rc != IMP_OK)
		goto cleanup;
	rc = finish(cfg);
	if (rc != IMP_OK) {
		oom(&c);
		goto cleanup;
	}
	rc = fmt_config_load_profiles(cfg, err_buf);
	json_decref(root);
	free(data);
	return rc; /* (logged there) */
cleanup:
	if (rc != IMP_OK) {
		IMP_ERROR("%s", c.msg);
		if (err_buf)
			snprintf(err_buf, FMT_CONFIG_ERR_MAX, "%s", c.msg);
	}
	json_decref(root);
	free(data);
	return rc;
}

void fmt_name_entries_free(struct fmt_name_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)e[i].attr);
		free((char *)e[i].value);
	}
	free(e);
}

static void pin_release(struct fmt_pin_spec *p)
{
	free(p->value);
}

void fmt_config_release(struct fmt_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->dir);
	free(cfg->station_id);
	free(cfg->operator_name);
	free(cfg->product.name);
	free(cfg->product.sku);
	free(cfg->serial.prefix);
	fmt_name_entries_free(cfg->certificate.subject, cfg->certificate.subject_count);
	free(cfg->certificate.profile);
	fmt_certprof_set_free(cfg->certificate.profiles);
	free(cfg->organisation.name);
	free(cfg->firmware.image);
	free(cfg->firmware.signature);
	free(cfg->target);
	fixtures_free(cfg);
	free(cfg->hsm.module);
	free(cfg->hsm.init_args);
	free(cfg->hsm.token);
	pin_release(&cfg->hsm.pin);
	pin_release(&cfg->hsm.supervisor_pin);
	free(cfg->registry.url);
	free(cfg->registry.ca);
	free(cfg->registry.cert);
	free(cfg->registry.key);
	free(cfg->registry.bearer_env);
	free(cfg->journal);
	free(cfg->line.url);
	free(cfg->matter.certification_declaration);
	memset(cfg, 0, sizeof(*cfg));
}

imp_err fmt_subject_expand(const char *tmpl, const char *serial, const char *uid,
			   const char *sku, char **out)
{
	static const char *const names[] = { "{serial}", "{uid}", "{sku}" };
	const char *vals[3] = { serial ? serial : "", uid ? uid : "", sku ? sku : "" };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	imp_err rc = IMP_OK;

	*out = NULL;
	f = open_memstream(&buf, &len);
	if (!f)
		return IMP_ERR_NOMEM;
	for (const char *p = tmpl; *p && rc == IMP_OK;) {
		size_t i;

		if (*p == '}') {
			rc = IMP_ERR_CONFIG;
			break;
		}
		if (*p != '{') {
			fputc(*p++, f);
			continue;
		}
		for (i = 0; i < 3; i++)
			if (strncmp(p, names[i], strlen(names[i])) == 0)
				break;
		if (i == 3) {
			rc = IMP_ERR_CONFIG;
			break;
		}
		fputs(vals[i], f);
		p += strlen(names[i]);
	}
	if (fclose(f) != 0 && rc == IMP_OK)
		rc = IMP_ERR_NOMEM;
	if (rc != IMP_OK) {
		free(buf);
		return rc;
	}
	*out = buf;
	return IMP_OK;
}

imp_err fmt_config_device_subject(const struct fmt_config *cfg, const char *serial,
				  const char *uid, const char *sku,
				  struct fmt_name_entry **out, size_t *n)
{
	struct fmt_name_entry *arr;
	const struct fmt_certprof *dev =
		cfg->certificate.profiles ? cfg->certificate.profiles->role[FMT_CP_DEVICE] : NULL;
	imp_err rc;

	*out = NULL;
	*n = 0;
	if (dev && fmt_certprof_has_subject(dev)) {
		struct fmt_certprof_vars v;

		fmt_config_cert_vars(cfg, serial, uid, sku, &v);
		return fmt_certprof_subject(dev, &v, out, n);
	}
	arr = calloc(cfg->certificate.subject_count ? cfg->certificate.subject_count : 1,
		     sizeof(*arr));
	if (!arr)
		return IMP_ERR_NOMEM;
	for (size_t i = 0; i < cfg->certificate.subject_count; i++) {
		char *v = NULL;

		rc = fmt_subject_expand(cfg->certificate.subject[i].value, serial, uid, sku, &v);
		if (rc != IMP_OK) {
			fmt_name_entries_free(arr, i);
			return rc;
		}
		arr[i].value = v;
		arr[i].attr = strdup(cfg->certificate.subject[i].attr);
		if (!arr[i].attr) {
			fmt_name_entries_free(arr, i + 1);
			return IMP_ERR_NOMEM;
		}
	}
	*out = arr;
	*n = cfg->certificate.subject_count;
	return IMP_OK;
}

void fmt_config_cert_vars(const struct fmt_config *cfg, const char *serial, const char *uid,
			  const char *sku, struct fmt_certprof_vars *out)
{
	out->serial = serial;
	out->uid = uid;
	out->sku = sku;
	out->vid = cfg->matter.vendor_id;
	out->pid = cfg->matter.product_id;
	out->org = cfg->organisation.name;
	out->country = cfg->organisation.country;
}
