#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "formats/config.h"
#include "formats/jsonread.h"
#include "formats/matter.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define FIXTURES_MAX 64u

/* The reader's context: where relative paths resolve. */
struct cctx {
	const char *dir;
};

static int plain_chars(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return 0;
	return 1;
}

/* The char * a row points at in obj. */
static char **str_at(const struct fmt_jr_field *f, void *obj)
{
	return (char **)((char *)obj + f->offset);
}

/* An absolute or config-relative path into *dst. */
static imp_err set_path(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	const struct cctx *c = r->ctx;
	const char *path = json_string_value(v);
	char **dst = str_at(f, obj);
	char *res;

	if (path[0] == '/')
		res = strdup(path);
	else if (asprintf(&res, "%s/%s", c->dir, path) < 0)
		res = NULL;
	if (!res)
		return fmt_jr_oom(r);
	free(*dst);
	*dst = res;
	return IMP_OK;
}

static int env_name_ok(const char *s)
{
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	return plain_chars(s, "_");
}

static imp_err set_env_name(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	if (!env_name_ok(json_string_value(v)))
		return fmt_jr_fail(r, NULL, "expected an environment variable name "
				   "([A-Za-z_][A-Za-z0-9_]*)");
	return fmt_jr_set_str(r, str_at(f, obj), json_string_value(v));
}

/* A profile's name: A-Z a-z 0-9 - _ ., not starting with '.'. */
static imp_err set_name(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj,
			const char *what)
{
	const char *s = json_string_value(v);

	if (!plain_chars(s, "-_.") || s[0] == '.')
		return fmt_jr_fail(r, NULL, "expected %s", what);
	return fmt_jr_set_str(r, str_at(f, obj), s);
}

static imp_err set_station_id(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
			      void *obj)
{
	const char *s = json_string_value(v);

	if (strlen(s) > 64 || !plain_chars(s, "-_."))
		return fmt_jr_fail(r, NULL, "expected 1 to 64 characters of A-Z a-z 0-9 - _ .");
	return fmt_jr_set_str(r, str_at(f, obj), s);
}

static imp_err set_target(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	return set_name(r, f, v, obj, "a profile name (A-Z a-z 0-9 - _ .)");
}

static imp_err set_certprofile(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
			       void *obj)
{
	return set_name(r, f, v, obj, "a certificate profile name (A-Z a-z 0-9 - _ .)");
}

static imp_err set_version(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	(void)obj;
	if (!json_is_integer(v) || json_integer_value(v) != FMT_CONFIG_VERSION)
		return fmt_jr_expected(r, f);
	return IMP_OK;
}

static imp_err set_key_mode(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_config *cfg = obj;

	if (fmt_key_mode_parse(json_string_value(v), &cfg->key_mode) != IMP_OK)
		return fmt_jr_expected(r, f);
	return IMP_OK;
}

/* ---- serial ---- */

static imp_err set_prefix(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_config *cfg = obj;
	const char *s = json_string_value(v);

	if (!s || strlen(s) > FMT_SERIAL_PREFIX_MAX || !plain_chars(s, "") ||
	    strpbrk(s, "abcdefghijklmnopqrstuvwxyz"))
		return fmt_jr_fail(r, NULL, "expected 0 to %u characters of A-Z and 0-9",
				   FMT_SERIAL_PREFIX_MAX);
	(void)f;
	return fmt_jr_set_str(r, &cfg->serial.prefix, s);
}

static imp_err set_check_digit(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
			       void *obj)
{
	struct fmt_config *cfg = obj;

	if (fmt_check_digit_parse(json_string_value(v), &cfg->serial.check_digit) != IMP_OK)
		return fmt_jr_expected(r, f);
	return IMP_OK;
}

/* serial.start: below 10^width (width is read before it). */
static imp_err set_start(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_config *cfg = obj;
	struct fmt_jr_field bounded = *f;
	uint64_t limit = 1;

	for (unsigned i = 0; i < cfg->serial.width; i++)
		limit *= 10;
	bounded.type = FMT_JR_UINT;
	bounded.min = 0;
	bounded.max = limit - 1;
	return fmt_jr_uint(r, &bounded, v, &cfg->serial.start);
}

static const struct fmt_jr_field serial_fields[] = {
	{ .name = "prefix", .type = FMT_JR_ANY, .set = set_prefix },
	{ .name = "width", .type = FMT_JR_UINT, .min = 1, .max = FMT_SERIAL_WIDTH_MAX,
	  FMT_JR_AT(struct fmt_config, serial.width) },
	{ .name = "check_digit", .type = FMT_JR_ANY, .set = set_check_digit,
	  .expect = "\"none\", \"luhn36\" or \"mod97\"" },
	{ .name = "start", .type = FMT_JR_ANY, .set = set_start },
	{ 0 },
};

/* ---- certificate ---- */

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

/* certificate.subject: attributes in file order, so not a table of rows. */
static imp_err set_subject(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *o, void *obj)
{
	struct fmt_config *cfg = obj;
	const char *key;
	json_t *v;

	(void)f;
	if (!json_is_object(o) || json_object_size(o) == 0)
		return fmt_jr_fail(r, NULL, "expected a non-empty object of attributes");
	json_object_foreach(o, key, v) {
		char *probe = NULL;
		const char *s;
		size_t i;

		for (i = 0; subject_attrs[i]; i++)
			if (strcmp(key, subject_attrs[i]) == 0)
				break;
		if (!subject_attrs[i])
			return fmt_jr_fail(r, key, "unknown key (expected C, ST, L, O, OU, CN, "
					   "serialNumber)");
		s = json_string_value(v);
		if (!s || !s[0])
			return fmt_jr_fail(r, key, "expected a non-empty string");
		if (fmt_subject_expand(s, "S", "U", "K", &probe) != IMP_OK)
			return fmt_jr_fail(r, key, "unknown placeholder (expected {serial}, {uid} or "
					   "{sku})");
		free(probe);
		if (strcmp(key, "C") == 0 &&
		    !(strlen(s) == 2 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1])))
			return fmt_jr_fail(r, key, "expected a 2-letter country code (\"DE\")");
		if (add_entry(&cfg->certificate.subject, &cfg->certificate.subject_count, key, s) !=
		    IMP_OK)
			return fmt_jr_oom(r);
	}
	cfg->certificate.subject_set = true;
	return IMP_OK;
}

static const struct fmt_jr_field certificate_fields[] = {
	{ .name = "subject", .type = FMT_JR_ANY, .set = set_subject },
	{ .name = "validity_days", .type = FMT_JR_UINT, .min = 1, .max = 36500,
	  FMT_JR_AT(struct fmt_config, certificate.validity_days) },
	{ .name = "profile", .type = FMT_JR_STR, .set = set_certprofile,
	  FMT_JR_AT(struct fmt_config, certificate.profile) },
	{ 0 },
};

/* ---- matter (docs/MATTER.md) ---- */

/* "matter.vendor_id": 4 hex digits as the Matter specification writes them. */
static imp_err set_matter_id(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	const char *s = json_string_value(v);
	char *out = (char *)obj + f->offset;

	if (!s || strlen(s) != 4 || !plain_chars(s, ""))
		return fmt_jr_expected(r, f);
	for (int i = 0; i < 4; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return fmt_jr_expected(r, f);
		if (islower((unsigned char)s[i]))
			return fmt_jr_fail(r, NULL, "expected uppercase hex digits (\"FFF1\", as the "
					   "Matter specification writes them)");
	}
	if (strcmp(f->name, "vendor_id") == 0 && strcmp(s, "0000") == 0)
		return fmt_jr_fail(r, NULL, "0000 is not a vendor id (Matter: reserved)");
	memcpy(out, s, 5);
	return IMP_OK;
}

uint16_t fmt_matter_id_value(const char id[5])
{
	return id[0] ? (uint16_t)strtoul(id, NULL, 16) : 0;
}

static imp_err matter_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	struct fmt_config *cfg = obj;

	(void)o;
	/* The factory data and the DAC carry both IDs. */
	if (!cfg->matter.vendor_id[0])
		return fmt_jr_fail(r, "vendor_id", "missing: the factory data needs the vendor id "
				   "(4 hex digits, e.g. \"FFF1\")");
	if (!cfg->matter.product_id[0])
		return fmt_jr_fail(r, "product_id", "missing: the factory data needs the product id "
				   "(4 hex digits, e.g. \"8000\")");
	if (cfg->key_mode == FMT_KEY_MODE_PSK)
		return fmt_jr_fail(r, NULL, "a Matter device attests with its certificate: "
				   "key_mode must be \"device\" or \"hsm\", not \"psk\"");
	cfg->matter.enabled = true;
	return IMP_OK;
}

static const struct fmt_jr_name matter_discovery[] = {
	{ "ble", FMT_MATTER_DISC_BLE }, { "softap", FMT_MATTER_DISC_SOFTAP },
	{ "on-network", FMT_MATTER_DISC_ON_NETWORK }, { "wifi-paf", FMT_MATTER_DISC_WIFI_PAF },
	{ "nfc", FMT_MATTER_DISC_NFC }, { NULL, 0 },
};

static const struct fmt_jr_name matter_flows[] = {
	{ "standard", 0 }, { "user-intent", 1 }, { "custom", 2 }, { NULL, 0 },
};

#define MATTER_ID_EXPECT "4 hex digits, e.g. \"FFF1\""

static const struct fmt_jr_field matter_fields[] = {
	{ .name = "vendor_id", .type = FMT_JR_ANY, .set = set_matter_id,
	  .expect = MATTER_ID_EXPECT, FMT_JR_AT(struct fmt_config, matter.vendor_id) },
	{ .name = "product_id", .type = FMT_JR_ANY, .set = set_matter_id,
	  .expect = MATTER_ID_EXPECT, FMT_JR_AT(struct fmt_config, matter.product_id) },
	{ .name = "discriminator", .type = FMT_JR_UINT, .max = FMT_MATTER_DISCRIMINATOR_MAX,
	  FMT_JR_AT(struct fmt_config, matter.discriminator) },
	{ .name = "spake2p_iterations", .type = FMT_JR_UINT, .min = FMT_MATTER_ITER_MIN,
	  .max = FMT_MATTER_ITER_MAX, FMT_JR_AT(struct fmt_config, matter.iterations) },
	{ .name = "salt_length", .type = FMT_JR_UINT, .min = FMT_MATTER_SALT_MIN,
	  .max = FMT_MATTER_SALT_MAX, FMT_JR_AT(struct fmt_config, matter.salt_length) },
	{ .name = "discovery", .type = FMT_JR_FLAGS, .min = 1, .names = matter_discovery,
	  .expect = "a non-empty list of \"ble\", \"softap\", \"on-network\", \"wifi-paf\", "
		    "\"nfc\"",
	  FMT_JR_AT(struct fmt_config, matter.discovery) },
	{ .name = "commissioning_flow", .type = FMT_JR_ENUM, .names = matter_flows,
	  FMT_JR_AT(struct fmt_config, matter.flow) },
	{ .name = "certification_declaration", .type = FMT_JR_STR, .set = set_path,
	  FMT_JR_AT(struct fmt_config, matter.certification_declaration) },
	{ 0 },
};

/* ---- organisation, product, firmware ---- */

static imp_err set_country(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_config *cfg = obj;
	const char *s = json_string_value(v);

	(void)f;
	if (!s || strlen(s) != 2 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]))
		return fmt_jr_fail(r, NULL, "expected a 2-letter country code (\"DE\")");
	memcpy(cfg->organisation.country, s, 3);
	return IMP_OK;
}

static const struct fmt_jr_field organisation_fields[] = {
	{ .name = "name", .type = FMT_JR_STR, FMT_JR_AT(struct fmt_config, organisation.name) },
	{ .name = "country", .type = FMT_JR_ANY, .set = set_country },
	{ .name = "root_validity_days", .type = FMT_JR_UINT, .min = 1, .max = 36500,
	  FMT_JR_AT(struct fmt_config, organisation.root_validity_days) },
	{ .name = "ca_validity_days", .type = FMT_JR_UINT, .min = 1, .max = 36500,
	  FMT_JR_AT(struct fmt_config, organisation.ca_validity_days) },
	{ 0 },
};

static const struct fmt_jr_field product_fields[] = {
	{ .name = "name", .type = FMT_JR_STR, FMT_JR_AT(struct fmt_config, product.name) },
	{ .name = "sku", .type = FMT_JR_STR, FMT_JR_AT(struct fmt_config, product.sku) },
	{ 0 },
};

static const struct fmt_jr_field firmware_fields[] = {
	{ .name = "image", .type = FMT_JR_STR, .set = set_path,
	  FMT_JR_AT(struct fmt_config, firmware.image) },
	{ .name = "signature", .type = FMT_JR_STR, .set = set_path,
	  FMT_JR_AT(struct fmt_config, firmware.signature) },
	{ 0 },
};

/* ---- fixtures ---- */

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

static imp_err set_fixture_name(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
				void *obj)
{
	struct fmt_fixture *fx = obj;
	const char *s = json_string_value(v);

	(void)f;
	if (strlen(s) > 32 || !plain_chars(s, "-_."))
		return fmt_jr_fail(r, NULL, "expected 1 to 32 characters of A-Z a-z 0-9 - _ .");
	return fmt_jr_set_str(r, &fx->name, s);
}

static imp_err set_probe(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_fixture *fx = obj;
	imp_err rc;
	int ok;

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return fmt_jr_expected(r, f);
	rc = fmt_jr_set_str(r, &fx->probe, json_string_value(v));
	if (rc != IMP_OK)
		return rc;
	ok = parse_probe(fx->probe, fx);
	if (ok < 0)
		return fmt_jr_oom(r);
	return ok ? IMP_OK : fmt_jr_expected(r, f);
}

static imp_err set_baud(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_fixture *fx = obj;
	uint64_t baud = 0;
	imp_err rc;

	rc = fmt_jr_uint(r, f, v, &baud);
	if (rc != IMP_OK)
		return rc;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(std_bauds); i++)
		if (std_bauds[i] == baud) {
			fx->baud = (unsigned)baud;
			return IMP_OK;
		}
	return fmt_jr_fail(r, NULL, "expected a standard rate (9600, 19200, ... 115200, ... "
			   "921600, ... 4000000)");
}

static void fixture_init(void *obj)
{
	((struct fmt_fixture *)obj)->baud = 921600;
}

static imp_err fixture_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	const struct fmt_fixture *fx = obj;
	const struct fmt_fixture *all = r->elems;

	(void)o;
	if (fx->probe_kind != FMT_PROBE_SIM && !fx->uart)
		return fmt_jr_fail(r, "uart", "missing (required with an rsp:// or openocd:// "
				   "probe: the serial device)");
	for (size_t j = 0; j < r->index; j++)
		if (strcmp(all[j].name, fx->name) == 0)
			return fmt_jr_fail(r, "name", "duplicate name \"%s\" (expected unique names)",
					   fx->name);
	return IMP_OK;
}

static const struct fmt_jr_field fixture_fields[] = {
	{ .name = "name", .type = FMT_JR_STR, .flags = FMT_JR_REQUIRED, .set = set_fixture_name,
	  .expect = "a fixture name" },
	{ .name = "probe", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED, .set = set_probe,
	  .expect = "\"rsp://HOST:PORT[?KEY=VALUE&...]\" (PORT 1 to 65535), "
		    "\"openocd://CONFIG[?KEY=VALUE&...]\", \"rsp+serial:///dev/TTY[?KEY=VALUE&...]\" "
		    "or \"sim:\"" },
	{ .name = "uart", .type = FMT_JR_STR, FMT_JR_AT(struct fmt_fixture, uart) },
	{ .name = "baud", .type = FMT_JR_UINT, .min = 1, .max = 4000000, .set = set_baud },
	{ .name = "reader", .type = FMT_JR_STR, FMT_JR_AT(struct fmt_fixture, reader) },
	{ 0 },
};

static const struct fmt_jr_table fixture_table = {
	.fields = fixture_fields, .size = sizeof(struct fmt_fixture), .init = fixture_init,
	.finish = fixture_finish,
};

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

/* ---- hsm ---- */

static imp_err set_pin_env(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_pin_spec *pin = obj;

	pin->source = FMT_PIN_ENV;
	return set_env_name(r, f, v, obj);
}

static imp_err set_pin_file(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct fmt_pin_spec *pin = obj;

	pin->source = FMT_PIN_FILE;
	return set_path(r, f, v, obj);
}

static imp_err set_pin_prompt(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
			      void *obj)
{
	struct fmt_pin_spec *pin = obj;

	(void)f;
	if (!json_is_true(v))
		return fmt_jr_fail(r, NULL, "expected true");
	free(pin->value);
	pin->value = NULL;
	pin->source = FMT_PIN_PROMPT;
	return IMP_OK;
}

#define PIN_EXPECT "{\"env\": \"VAR\"}, {\"file\": \"PATH\"} or {\"prompt\": true}"

static imp_err pin_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	(void)obj;
	if (json_object_size(o) != 1)
		return fmt_jr_fail(r, NULL, "expected %s", PIN_EXPECT);
	return IMP_OK;
}

static const struct fmt_jr_field pin_fields[] = {
	{ .name = "env", .type = FMT_JR_STR, .set = set_pin_env,
	  FMT_JR_AT(struct fmt_pin_spec, value) },
	{ .name = "file", .type = FMT_JR_STR, .set = set_pin_file,
	  FMT_JR_AT(struct fmt_pin_spec, value) },
	{ .name = "prompt", .type = FMT_JR_ANY, .set = set_pin_prompt },
	{ 0 },
};

static const struct fmt_jr_table pin_table = { .fields = pin_fields, .finish = pin_finish };

static imp_err set_module(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	const char *s = json_string_value(v);

	/* A name is looked up in p11-kit's registrations when the hsm is
	 * opened (the message there lists them: imprint hsm tokens). */
	if (!s || !s[0] || (!strchr(s, '/') && !plain_chars(s, "-_.")) || s[0] == '.' ||
	    strlen(s) != json_string_length(v))
		return fmt_jr_expected(r, f);
	if (strchr(s, '/'))
		return set_path(r, f, v, obj);
	return fmt_jr_set_str(r, str_at(f, obj), s);
}

static imp_err set_init_args(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
			     void *obj)
{
	struct fmt_config *cfg = obj;
	const char *s = json_string_value(v);

	if (!s || !s[0] || strlen(s) > 4096 || strlen(s) != json_string_length(v))
		return fmt_jr_expected(r, f);
	if (!cfg->hsm.module)
		return fmt_jr_fail(r, NULL, "needs hsm.module");
	return fmt_jr_set_str(r, &cfg->hsm.init_args, s);
}

static imp_err set_token(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	const char *s = json_string_value(v);

	if (!s || strncmp(s, "pkcs11:", 7) != 0 || strlen(s) != json_string_length(v))
		return fmt_jr_expected(r, f);
	return fmt_jr_set_str(r, str_at(f, obj), s);
}

static imp_err hsm_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	const struct fmt_config *cfg = obj;

	(void)o;
	/* The embedded token logs in with the pin of DATA/hsm/pins: a pin
	 * source given for it would be ignored, and a wrong one go unnoticed. */
	if (cfg->hsm.pin.source != FMT_PIN_DEFAULT && !cfg->hsm.module)
		return fmt_jr_fail(r, "pin", "needs hsm.module (the embedded token's pin is "
				   "in DATA/hsm/pins): remove hsm.pin, or configure the hsm");
	/* Likewise a token named for the embedded one, which is always the
	 * data directory's own (only its default name is harmless). */
	if (!cfg->hsm.module && strcmp(cfg->hsm.token, FMT_HSM_TOKEN_DEFAULT) != 0)
		return fmt_jr_fail(r, "token", "needs hsm.module (without it the station uses "
				   "the embedded token of DATA/hsm): remove hsm.token, or configure "
				   "the hsm");
	return IMP_OK;
}

static const struct fmt_jr_field hsm_fields[] = {
	{ .name = "module", .type = FMT_JR_ANY, .set = set_module,
	  .expect = "a p11-kit module name (\"softhsm2\", see 'imprint hsm tokens') or a path "
		    "to a PKCS#11 module",
	  FMT_JR_AT(struct fmt_config, hsm.module) },
	{ .name = "init_args", .type = FMT_JR_ANY, .set = set_init_args,
	  .expect = "the module's C_Initialize parameter string (NSS: \"configdir='sql:DIR' "
		    "certPrefix='' keyPrefix='' secmod='secmod.db'\")" },
	{ .name = "token", .type = FMT_JR_ANY, .set = set_token,
	  .expect = "an RFC 7512 URI (\"pkcs11:token=NAME\")",
	  FMT_JR_AT(struct fmt_config, hsm.token) },
	{ .name = "pin", .type = FMT_JR_OBJECT, .sub = &pin_table, .expect = PIN_EXPECT,
	  .offset = offsetof(struct fmt_config, hsm.pin) },
	{ .name = "supervisor_pin", .type = FMT_JR_OBJECT, .sub = &pin_table,
	  .expect = PIN_EXPECT, .offset = offsetof(struct fmt_config, hsm.supervisor_pin) },
	{ 0 },
};

/* ---- registry, line ---- */

static imp_err set_prefixed_url(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
				void *obj, const char *scheme)
{
	const char *s = json_string_value(v);
	size_t n = strlen(scheme);

	if (!s || strncmp(s, scheme, n) != 0 || !s[n] || strlen(s) != json_string_length(v))
		return fmt_jr_expected(r, f);
	return fmt_jr_set_str(r, str_at(f, obj), s);
}

static imp_err set_https(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	return set_prefixed_url(r, f, v, obj, "https://");
}

static imp_err set_line_url(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	return set_prefixed_url(r, f, v, obj, "");
}

static imp_err registry_finish(struct fmt_jr *r, json_t *o, void *obj)
{
	const struct fmt_config *cfg = obj;

	(void)o;
	if (cfg->registry.cert && !cfg->registry.key)
		return fmt_jr_fail(r, "key", "missing (required with registry.cert)");
	if (cfg->registry.key && !cfg->registry.cert)
		return fmt_jr_fail(r, "cert", "missing (required with registry.key)");
	return IMP_OK;
}

static const struct fmt_jr_field registry_fields[] = {
	{ .name = "url", .type = FMT_JR_ANY, .set = set_https, .expect = "an https:// URL",
	  FMT_JR_AT(struct fmt_config, registry.url) },
	{ .name = "ca", .type = FMT_JR_STR, .set = set_path,
	  FMT_JR_AT(struct fmt_config, registry.ca) },
	{ .name = "cert", .type = FMT_JR_STR, .set = set_path,
	  FMT_JR_AT(struct fmt_config, registry.cert) },
	{ .name = "key", .type = FMT_JR_STR, .set = set_path,
	  FMT_JR_AT(struct fmt_config, registry.key) },
	{ .name = "bearer_env", .type = FMT_JR_STR, .set = set_env_name,
	  FMT_JR_AT(struct fmt_config, registry.bearer_env) },
	{ 0 },
};

static const struct fmt_jr_field line_fields[] = {
	{ .name = "url", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED, .set = set_line_url,
	  .expect = "a PostgreSQL URL (\"postgresql://...\")",
	  FMT_JR_AT(struct fmt_config, line.url) },
	{ .name = "block", .type = FMT_JR_UINT, .min = 1, .max = 100000,
	  FMT_JR_AT(struct fmt_config, line.block) },
	{ .name = "quota", .type = FMT_JR_UINT, .max = (uint64_t)INT64_MAX,
	  FMT_JR_AT(struct fmt_config, line.quota) },
	{ .name = "connect_timeout", .type = FMT_JR_UINT, .min = 1, .max = 60,
	  FMT_JR_AT(struct fmt_config, line.connect_timeout) },
	{ 0 },
};

/* ---- the file ---- */

/* A section: its rows fill the same struct (offset 0). */
#define SECTION(key, rows) \
	{ .name = key, .type = FMT_JR_OBJECT, .sub = &(const struct fmt_jr_table){ .fields = rows } }
#define SECTION_CHECKED(key, rows, check) \
	{ .name = key, .type = FMT_JR_OBJECT, \
	  .sub = &(const struct fmt_jr_table){ .fields = rows, .finish = check } }

static const struct fmt_jr_field top_fields[] = {
	{ .name = "version", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED, .set = set_version,
	  .expect = "1" },
	{ .name = "station_id", .type = FMT_JR_STR, .set = set_station_id,
	  FMT_JR_AT(struct fmt_config, station_id) },
	{ .name = "operator", .type = FMT_JR_STR, FMT_JR_AT(struct fmt_config, operator_name) },
	SECTION("product", product_fields),
	SECTION("serial", serial_fields),
	{ .name = "key_mode", .type = FMT_JR_ANY, .set = set_key_mode,
	  .expect = "\"device\", \"hsm\" or \"psk\"" },
	SECTION("certificate", certificate_fields),
	SECTION("organisation", organisation_fields),
	SECTION("firmware", firmware_fields),
	{ .name = "target", .type = FMT_JR_STR, .set = set_target,
	  FMT_JR_AT(struct fmt_config, target) },
	{ .name = "fixtures", .type = FMT_JR_ARRAY, .min = 1, .max = FIXTURES_MAX,
	  .sub = &fixture_table, .expect = "an array of 1 to 64 fixtures",
	  .offset = offsetof(struct fmt_config, fixtures),
	  .count_offset = offsetof(struct fmt_config, fixture_count) },
	SECTION_CHECKED("hsm", hsm_fields, hsm_finish),
	SECTION_CHECKED("registry", registry_fields, registry_finish),
	{ .name = "quota", .type = FMT_JR_UINT, .max = (uint64_t)INT64_MAX,
	  FMT_JR_AT(struct fmt_config, quota) },
	{ .name = "journal", .type = FMT_JR_STR, .set = set_path,
	  FMT_JR_AT(struct fmt_config, journal) },
	SECTION("line", line_fields),
	SECTION_CHECKED("matter", matter_fields, matter_finish),
	{ 0 },
};

static const struct fmt_jr_table config_table = { .fields = top_fields };

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
	cfg->hsm.token = strdup(FMT_HSM_TOKEN_DEFAULT);
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
	struct cctx c = { NULL };
	struct fmt_jr r;
	char msg[FMT_CONFIG_ERR_MAX] = "";
	uint8_t *data = NULL;
	size_t n = 0;
	json_t *root = NULL;
	json_error_t jerr;
	imp_err rc;

	if (err_buf)
		err_buf[0] = '\0';
	fmt_jr_init(&r, &c);
	rc = set_defaults(cfg);
	if (rc == IMP_OK) {
		cfg->path = strdup(path);
		cfg->dir = dir_of(path);
		if (!cfg->path || !cfg->dir)
			rc = IMP_ERR_NOMEM;
	}
	if (rc != IMP_OK) {
		snprintf(msg, sizeof(msg), "config: out of memory");
		goto cleanup;
	}
	c.dir = cfg->dir;
	rc = imp_read_file(path, &data, &n);
	if (rc != IMP_OK) {
		struct stat st;

		/* A directory or a device named as the configuration is a
		 * configuration mistake (3), not an I/O failure (4). */
		if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
			rc = IMP_ERR_CONFIG;
		snprintf(msg, sizeof(msg), "config: %s: cannot read the file", path);
		goto cleanup;
	}
	root = json_loadb((const char *)data, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(msg, sizeof(msg), "config: line %d column %d: %s", jerr.line, jerr.column,
			 jerr.text);
		rc = IMP_ERR_CONFIG;
		goto cleanup;
	}
	rc = fmt_jr_object(&r, root, &config_table, cfg);
	if (rc != IMP_OK) {
		snprintf(msg, sizeof(msg), "config: %.500s", r.msg);
		goto cleanup;
	}
	rc = finish(cfg);
	if (rc != IMP_OK) {
		snprintf(msg, sizeof(msg), "config: out of memory");
		goto cleanup;
	}
	rc = fmt_config_load_profiles(cfg, err_buf);
	json_decref(root);
	free(data);
	return rc; /* (logged there) */
cleanup:
	IMP_ERROR("%s", msg);
	if (err_buf)
		snprintf(err_buf, FMT_CONFIG_ERR_MAX, "%s", msg);
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
