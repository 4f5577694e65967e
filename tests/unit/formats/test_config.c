/* The station configuration: the example, defaults, and each kind of refusal with its message. */
#include "config_test.h"

static void test_example_loads(void **state)
{
	struct fmt_config cfg;
	char err[FMT_CONFIG_ERR_MAX];
	imp_err rc;

	(void)state;
	rc = fmt_config_load(IMPRINT_SOURCE_DIR "/docs/station.example.json", &cfg, err);
	if (rc != IMP_OK)
		fail_msg("%s", err);
	assert_int_equal(cfg.version, 1);
	assert_string_equal(cfg.station_id, "line1-st01");
	assert_string_equal(cfg.operator_name, "alice");
	assert_string_equal(cfg.product.name, "Acme Sensor");
	assert_string_equal(cfg.product.sku, "ACME-S1");
	assert_string_equal(cfg.serial.prefix, "ACM");
	assert_int_equal(cfg.serial.width, 6);
	assert_int_equal(cfg.serial.check_digit, FMT_CHECK_LUHN36);
	assert_int_equal(cfg.serial.start, 1);
	assert_int_equal(cfg.key_mode, FMT_KEY_MODE_DEVICE);
	assert_int_equal(cfg.certificate.subject_count, 5);
	assert_string_equal(cfg.certificate.subject[0].attr, "C");
	assert_string_equal(cfg.certificate.subject[3].attr, "CN");
	assert_string_equal(cfg.certificate.subject[3].value, "{serial}");
	assert_int_equal(cfg.certificate.validity_days, 7300);
	assert_string_equal(cfg.organisation.name, "Acme Corp");
	assert_string_equal(cfg.organisation.country, "DE");
	assert_int_equal(cfg.organisation.root_validity_days, 9125);
	assert_non_null(strstr(cfg.firmware.image, "/docs/firmware/acme-s1-1.4.2.bin"));
	assert_true(cfg.firmware.image[0] == '/');
	assert_string_equal(cfg.target, "imprint-vb1");
	assert_int_equal(cfg.fixture_count, 2);
	assert_string_equal(cfg.fixtures[0].name, "F1");
	assert_int_equal(cfg.fixtures[0].probe_kind, FMT_PROBE_SIM);
	assert_null(cfg.fixtures[0].uart);
	assert_int_equal(cfg.fixtures[1].probe_kind, FMT_PROBE_RSP);
	assert_string_equal(cfg.fixtures[1].probe_host, "127.0.0.1");
	assert_int_equal(cfg.fixtures[1].probe_port, 3333);
	assert_string_equal(cfg.fixtures[1].uart, "/dev/ttyUSB0");
	assert_int_equal(cfg.fixtures[1].baud, 921600);
	assert_string_equal(cfg.fixtures[1].reader, "Virtual PCD 00 00");
	assert_string_equal(cfg.hsm.module, "softhsm2");
	assert_string_equal(cfg.hsm.token, "pkcs11:token=imprint");
	assert_int_equal(cfg.hsm.pin.source, FMT_PIN_ENV);
	assert_string_equal(cfg.hsm.pin.value, "IMPRINT_HSM_PIN");
	assert_int_equal(cfg.hsm.supervisor_pin.source, FMT_PIN_PROMPT);
	assert_string_equal(cfg.registry.url, "https://registry.example.com/v1/devices");
	assert_non_null(strstr(cfg.registry.key, "/docs/trust/station.key"));
	assert_string_equal(cfg.registry.bearer_env, "IMPRINT_REGISTRY_TOKEN");
	assert_int_equal(cfg.quota, 1000);
	assert_non_null(strstr(cfg.journal, "/docs/journal.sqlite"));
	fmt_config_release(&cfg);
	fmt_config_release(&cfg); /* idempotent */
}

static void test_defaults(void **state)
{
	struct fmt_config a;
	struct fmt_config b;
	char err[FMT_CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(fmt_config_defaults(&a), IMP_OK);
	assert_int_equal(load_text("{\"version\": 1}", &b, err), IMP_OK);
	assert_string_equal(a.station_id, "station");
	/* The defaults' one fixture (README.md, docs/CONFIG.md say so). */
	assert_int_equal(a.fixture_count, 1);
	assert_string_equal(a.fixtures[0].name, "F1");
	assert_string_equal(a.fixtures[0].probe, "sim:");
	assert_int_equal(a.fixtures[0].probe_kind, FMT_PROBE_SIM);
	assert_string_equal(b.station_id, "station");
	assert_string_equal(b.serial.prefix, "IMP");
	assert_int_equal(b.serial.width, 6);
	assert_int_equal(b.key_mode, FMT_KEY_MODE_DEVICE);
	assert_int_equal(b.certificate.subject_count, 3);
	assert_string_equal(b.certificate.subject[0].value, "Imprint Demo Organisation");
	assert_string_equal(b.certificate.subject[1].value, "{serial}");
	assert_string_equal(b.certificate.subject[2].attr, "serialNumber");
	assert_string_equal(b.certificate.subject[2].value, "{uid}");
	assert_int_equal(b.fixture_count, 1);
	assert_string_equal(b.fixtures[0].probe, "sim:");
	assert_null(b.hsm.module);
	assert_int_equal(b.hsm.pin.source, FMT_PIN_DEFAULT);
	assert_null(b.registry.url);
	assert_int_equal(b.quota, FMT_QUOTA_DEFAULT);
	assert_null(b.journal);
	assert_null(b.firmware.image);
	assert_string_equal(a.target, b.target);
	fmt_config_release(&a);
	fmt_config_release(&b);
}

static void expect_error_prefix(const char *text, const char *prefix)
{
	struct fmt_config cfg;
	char err[FMT_CONFIG_ERR_MAX];

	assert_int_equal(load_text(text, &cfg, err), IMP_ERR_CONFIG);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", err, prefix);
	fmt_config_release(&cfg);
}

static void test_unknown_keys(void **state)
{
	(void)state;
	expect_error_prefix("{\"version\": 1, \"bogus\": 1}",
			    "config: bogus: unknown key (expected version, station_id,");
	expect_error("{\"version\": 1, \"product\": {\"nam\": \"x\"}}",
		     "config: product.nam: unknown key (expected name, sku)");
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": \"sim:\"},"
		     " {\"name\": \"F2\", \"probe\": \"sim:\", \"speed\": 1}]}",
		     "config: fixtures[1].speed: unknown key (expected name, probe, uart, baud, "
		     "reader)");
	expect_error("{\"version\": 1, \"hsm\": {\"pin\": {\"envv\": \"X\"}}}",
		     "config: hsm.pin.envv: unknown key (expected env, file, prompt)");
	expect_error("{\"version\": 1, \"certificate\": {\"subject\": {\"XX\": \"x\"}}}",
		     "config: certificate.subject.XX: unknown key (expected C, ST, L, O, OU, CN, "
		     "serialNumber)");
}

static void test_bad_types(void **state)
{
	(void)state;
	expect_error("{\"version\": 1, \"serial\": {\"width\": \"6\"}}",
		     "config: serial.width: expected an integer from 1 to 12");
	expect_error("{\"version\": 1, \"serial\": {\"width\": 6.0}}",
		     "config: serial.width: expected an integer from 1 to 12");
	expect_error("{\"version\": 1, \"station_id\": 7}",
		     "config: station_id: expected a non-empty string");
	expect_error("{\"version\": 1, \"product\": []}", "config: product: expected an object");
	expect_error("{\"version\": 1, \"fixtures\": {}}",
		     "config: fixtures: expected an array of 1 to 64 fixtures");
	expect_error("{\"version\": 1, \"fixtures\": [7]}", "config: fixtures[0]: expected an object");
	expect_error("{\"version\": 1, \"hsm\": {\"pin\": \"1234\"}}",
		     "config: hsm.pin: expected {\"env\": \"VAR\"}, {\"file\": \"PATH\"} or "
		     "{\"prompt\": true}");
	expect_error("{\"version\": 1, \"hsm\": {\"pin\": {\"prompt\": 1}}}",
		     "config: hsm.pin.prompt: expected true");
	expect_error("[]", "config: (top level): expected an object");
	expect_error("{\"version\": \"1\"}", "config: version: expected 1");
}

static void test_bad_enums(void **state)
{
	(void)state;
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": \"sim:\"},"
		     " {\"name\": \"F2\", \"probe\": \"tcp://1.2.3.4:5\"}]}",
		     "config: fixtures[1].probe: expected \"rsp://HOST:PORT[?KEY=VALUE&...]\" (PORT 1 "
		     "to 65535), \"openocd://CONFIG[?KEY=VALUE&...]\", "
		     "\"rsp+serial:///dev/TTY[?KEY=VALUE&...]\" or \"sim:\"");
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": "
		     "\"rsp://host:0\", \"uart\": \"/dev/x\"}]}",
		     "config: fixtures[0].probe: expected \"rsp://HOST:PORT[?KEY=VALUE&...]\" (PORT 1 "
		     "to 65535), \"openocd://CONFIG[?KEY=VALUE&...]\", "
		     "\"rsp+serial:///dev/TTY[?KEY=VALUE&...]\" or \"sim:\"");
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": "
		     "\"rsp://:3333\", \"uart\": \"/dev/x\"}]}",
		     "config: fixtures[0].probe: expected \"rsp://HOST:PORT[?KEY=VALUE&...]\" (PORT 1 "
		     "to 65535), \"openocd://CONFIG[?KEY=VALUE&...]\", "
		     "\"rsp+serial:///dev/TTY[?KEY=VALUE&...]\" or \"sim:\"");
	expect_error("{\"version\": 1, \"serial\": {\"check_digit\": \"crc\"}}",
		     "config: serial.check_digit: expected \"none\", \"luhn36\" or \"mod97\"");
	expect_error("{\"version\": 1, \"key_mode\": \"cloud\"}",
		     "config: key_mode: expected \"device\", \"hsm\" or \"psk\"");
	expect_error("{\"version\": 1, \"hsm\": {\"module\": \"open sc\"}}",
		     "config: hsm.module: expected a p11-kit module name (\"softhsm2\", see "
		     "'imprint hsm tokens') or a path to a PKCS#11 module");
	expect_error("{\"version\": 1, \"hsm\": {\"module\": \"..\"}}",
		     "config: hsm.module: expected a p11-kit module name (\"softhsm2\", see "
		     "'imprint hsm tokens') or a path to a PKCS#11 module");
	expect_error("{\"version\": 1, \"hsm\": {\"init_args\": \"configdir='sql:/x'\"}}",
		     "config: hsm.init_args: needs hsm.module");
	expect_error("{\"version\": 1, \"hsm\": {\"pin\": {\"env\": \"MYPIN\"}}}",
		     "config: hsm.pin: needs hsm.module (the embedded token's pin is in "
		     "DATA/hsm/pins): remove hsm.pin, or configure the hsm");
	expect_error("{\"version\": 1, \"hsm\": {\"pin\": {\"prompt\": true}}}",
		     "config: hsm.pin: needs hsm.module (the embedded token's pin is in "
		     "DATA/hsm/pins): remove hsm.pin, or configure the hsm");
	expect_error("{\"version\": 1, \"hsm\": {\"module\": \"nss\", \"init_args\": \"\"}}",
		     "config: hsm.init_args: expected the module's C_Initialize parameter string "
		     "(NSS: \"configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db'\")");
	expect_error("{\"version\": 1, \"registry\": {\"url\": \"http://x\"}}",
		     "config: registry.url: expected an https:// URL");
	expect_error("{\"version\": 1, \"organisation\": {\"country\": \"Germany\"}}",
		     "config: organisation.country: expected a 2-letter country code (\"DE\")");
	expect_error("{\"version\": 1, \"certificate\": {\"subject\": {\"CN\": \"{serial}-{bad}\"}}}",
		     "config: certificate.subject.CN: unknown placeholder (expected {serial}, "
		     "{uid} or {sku})");
}

static void test_out_of_range(void **state)
{
	(void)state;
	expect_error("{\"version\": 2}", "config: version: expected 1");
	expect_error("{}", "config: version: missing (expected 1)");
	expect_error("{\"version\": 1, \"certificate\": {\"validity_days\": 0}}",
		     "config: certificate.validity_days: expected an integer from 1 to 36500");
	expect_error("{\"version\": 1, \"serial\": {\"width\": 13}}",
		     "config: serial.width: expected an integer from 1 to 12");
	expect_error("{\"version\": 1, \"serial\": {\"width\": 3, \"start\": 1000}}",
		     "config: serial.start: expected an integer from 0 to 999");
	expect_error_prefix("{\"version\": 1, \"quota\": -1}",
			    "config: quota: expected an integer from 0 to ");
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": \"sim:\", "
		     "\"baud\": 12345}]}",
		     "config: fixtures[0].baud: expected a standard rate (9600, 19200, ... 115200, "
		     "... 921600, ... 4000000)");
	expect_error("{\"version\": 1, \"fixtures\": []}",
		     "config: fixtures: expected an array of 1 to 64 fixtures");
}

static void test_cross_field(void **state)
{
	(void)state;
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": "
		     "\"rsp://127.0.0.1:3333\"}]}",
		     "config: fixtures[0].uart: missing (required with an rsp:// or openocd:// probe: the "
		     "serial device)");
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": \"sim:\"},"
		     " {\"name\": \"F1\", \"probe\": \"sim:\"}]}",
		     "config: fixtures[1].name: duplicate name \"F1\" (expected unique names)");
	expect_error("{\"version\": 1, \"fixtures\": [{\"probe\": \"sim:\"}]}",
		     "config: fixtures[0].name: missing (expected a fixture name)");
	expect_error("{\"version\": 1, \"registry\": {\"cert\": \"c.pem\"}}",
		     "config: registry.key: missing (required with registry.cert)");
	expect_error("{\"version\": 1, \"hsm\": {\"pin\": {\"env\": \"X\", \"file\": \"y\"}}}",
		     "config: hsm.pin: expected {\"env\": \"VAR\"}, {\"file\": \"PATH\"} or "
		     "{\"prompt\": true}");
	expect_error("{\"version\": 1, \"hsm\": {\"pin\": {\"env\": \"1X\"}}}",
		     "config: hsm.pin.env: expected an environment variable name "
		     "([A-Za-z_][A-Za-z0-9_]*)");
}

static void test_json_errors(void **state)
{
	struct fmt_config cfg;
	char err[FMT_CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(load_text("{\"version\": 1, \"version\": 1}", &cfg, err), IMP_ERR_CONFIG);
	assert_non_null(strstr(err, "config: line 1"));
	assert_non_null(strstr(err, "duplicate"));
	fmt_config_release(&cfg);
	assert_int_equal(load_text("{\"version\": 1,\n", &cfg, err), IMP_ERR_CONFIG);
	assert_non_null(strstr(err, "config: line "));
	fmt_config_release(&cfg);
	assert_int_equal(fmt_config_load("/nonexistent/station.json", &cfg, err), IMP_ERR_NOT_FOUND);
	fmt_config_release(&cfg);
}

static void test_paths_and_probes(void **state)
{
	struct fmt_config cfg;
	char err[FMT_CONFIG_ERR_MAX];
	char want[128];

	(void)state;
	assert_int_equal(load_text("{\"version\": 1, \"firmware\": {\"image\": \"fw.bin\", "
				   "\"signature\": \"/abs/fw.sig\"}, \"hsm\": {\"module\": "
				   "\"lib/p11.so\", \"pin\": {\"file\": \"pin.txt\"}}, "
				   "\"fixtures\": [{\"name\": \"A\", \"probe\": "
				   "\"rsp://[::1]:3333\", \"uart\": \"/dev/ttyACM0\", \"baud\": "
				   "115200}], \"quota\": 0}",
				   &cfg, err), IMP_OK);
	snprintf(want, sizeof(want), "%s/fw.bin", config_dir);
	assert_string_equal(cfg.firmware.image, want);
	assert_string_equal(cfg.firmware.signature, "/abs/fw.sig");
	snprintf(want, sizeof(want), "%s/lib/p11.so", config_dir);
	assert_string_equal(cfg.hsm.module, want);
	assert_int_equal(cfg.hsm.pin.source, FMT_PIN_FILE);
	snprintf(want, sizeof(want), "%s/pin.txt", config_dir);
	assert_string_equal(cfg.hsm.pin.value, want);
	assert_string_equal(cfg.fixtures[0].probe_host, "::1");
	assert_int_equal(cfg.fixtures[0].probe_port, 3333);
	assert_int_equal(cfg.fixtures[0].baud, 115200);
	assert_int_equal(cfg.quota, 0);
	fmt_config_release(&cfg);

	/* Query keys and the openocd:// form (the driver checks the keys). */
	assert_int_equal(load_text("{\"version\": 1, \"fixtures\": [{\"name\": \"A\", \"probe\": "
				   "\"rsp://127.0.0.1:3333?server=openocd&data_abort=1\", \"uart\": "
				   "\"/dev/ttyACM0\"}, {\"name\": \"B\", \"probe\": "
				   "\"openocd://nrf52840.cfg?set.BITBANG_PORT=4444\", \"uart\": "
				   "\"/dev/ttyACM1\"}]}", &cfg, err), IMP_OK);
	assert_int_equal(cfg.fixtures[0].probe_kind, FMT_PROBE_RSP);
	assert_string_equal(cfg.fixtures[0].probe_host, "127.0.0.1");
	assert_int_equal(cfg.fixtures[0].probe_port, 3333);
	assert_int_equal(cfg.fixtures[1].probe_kind, FMT_PROBE_OPENOCD);
	assert_null(cfg.fixtures[1].probe_host);
	fmt_config_release(&cfg);
	/* A Black Magic Probe's GDB serial port. */
	assert_int_equal(load_text("{\"version\": 1, \"fixtures\": [{\"name\": \"A\", \"probe\": "
				   "\"rsp+serial:///dev/ttyACM0?server=bmp\", \"uart\": \"/dev/ttyACM1\"}]}",
				   &cfg, err), IMP_OK);
	assert_int_equal(cfg.fixtures[0].probe_kind, FMT_PROBE_RSP_SERIAL);
	fmt_config_release(&cfg);
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": "
		     "\"rsp+serial:///dev/tty;x\", \"uart\": \"/dev/x\"}]}",
		     "config: fixtures[0].probe: expected \"rsp://HOST:PORT[?KEY=VALUE&...]\" (PORT 1 "
		     "to 65535), \"openocd://CONFIG[?KEY=VALUE&...]\", "
		     "\"rsp+serial:///dev/TTY[?KEY=VALUE&...]\" or \"sim:\"");
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": "
		     "\"openocd://x.cfg?c=shutdown;exec\", \"uart\": \"/dev/x\"}]}",
		     "config: fixtures[0].probe: expected \"rsp://HOST:PORT[?KEY=VALUE&...]\" (PORT 1 "
		     "to 65535), \"openocd://CONFIG[?KEY=VALUE&...]\", "
		     "\"rsp+serial:///dev/TTY[?KEY=VALUE&...]\" or \"sim:\"");
	expect_error("{\"version\": 1, \"fixtures\": [{\"name\": \"F1\", \"probe\": "
		     "\"openocd://x.cfg\"}]}",
		     "config: fixtures[0].uart: missing (required with an rsp:// or openocd:// probe: the "
		     "serial device)");
}

/* Any p11-kit module name is accepted (resolved when the hsm is opened),
 * and init_args is kept verbatim for C_Initialize. */
static void test_hsm_module_names(void **state)
{
	struct fmt_config cfg;
	char err[FMT_CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(load_text("{\"version\": 1, \"hsm\": {\"module\": \"opensc-pkcs11\"}}",
				   &cfg, err), IMP_OK);
	assert_string_equal(cfg.hsm.module, "opensc-pkcs11");
	assert_null(cfg.hsm.init_args);
	fmt_config_release(&cfg);
	assert_int_equal(load_text("{\"version\": 1, \"hsm\": {\"module\": "
				   "\"/usr/lib/x86_64-linux-gnu/libsoftokn3.so\", \"init_args\": "
				   "\"configdir='sql:/var/nss' certPrefix='' keyPrefix=''\", "
				   "\"token\": \"pkcs11:token=NSS%20Certificate%20DB\"}}",
				   &cfg, err), IMP_OK);
	assert_string_equal(cfg.hsm.module, "/usr/lib/x86_64-linux-gnu/libsoftokn3.so");
	assert_string_equal(cfg.hsm.init_args, "configdir='sql:/var/nss' certPrefix='' keyPrefix=''");
	assert_string_equal(cfg.hsm.token, "pkcs11:token=NSS%20Certificate%20DB");
	fmt_config_release(&cfg);
}

static void test_subject_expand(void **state)
{
	struct fmt_config cfg;
	struct fmt_name_entry *e = NULL;
	char err[FMT_CONFIG_ERR_MAX];
	size_t n = 0;
	char *s = NULL;

	(void)state;
	assert_int_equal(fmt_subject_expand("{sku}/{serial}#{uid}", "ACM1", "00ff", "S1", &s),
			 IMP_OK);
	assert_string_equal(s, "S1/ACM1#00ff");
	free(s);
	assert_int_equal(fmt_subject_expand("plain", NULL, NULL, NULL, &s), IMP_OK);
	assert_string_equal(s, "plain");
	free(s);
	assert_int_equal(fmt_subject_expand("{serial}", NULL, NULL, NULL, &s), IMP_OK);
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(fmt_subject_expand("{seria}", "x", NULL, NULL, &s), IMP_ERR_CONFIG);
	assert_null(s);
	assert_int_equal(fmt_subject_expand("{serial", "x", NULL, NULL, &s), IMP_ERR_CONFIG);
	assert_int_equal(fmt_subject_expand("a}", "x", NULL, NULL, &s), IMP_ERR_CONFIG);

	assert_int_equal(fmt_config_load(IMPRINT_SOURCE_DIR "/docs/station.example.json", &cfg,
					 err), IMP_OK);
	assert_int_equal(fmt_config_device_subject(&cfg, "ACM000042N", "00112233", "ACME-S1", &e,
						   &n), IMP_OK);
	assert_int_equal(n, 5);
	assert_string_equal(e[2].attr, "OU");
	assert_string_equal(e[2].value, "Acme Sensor ACME-S1");
	assert_string_equal(e[3].value, "ACM000042N");
	assert_string_equal(e[4].attr, "serialNumber");
	assert_string_equal(e[4].value, "00112233");
	fmt_name_entries_free(e, n);
	fmt_config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_loads),
		cmocka_unit_test(test_hsm_module_names),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_bad_types),
		cmocka_unit_test(test_bad_enums),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_cross_field),
		cmocka_unit_test(test_json_errors),
		cmocka_unit_test(test_paths_and_probes),
		cmocka_unit_test(test_subject_expand),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, config_setup, config_teardown);
}
