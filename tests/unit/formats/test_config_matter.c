/* The "matter" object of the station configuration (docs/MATTER.md). */
#include "config_test.h"
#include "formats/matter.h"

static void test_absent_and_defaults(void **state)
{
	struct fmt_config cfg;
	char err[FMT_CONFIG_ERR_MAX];
	char want[200];

	(void)state;
	assert_int_equal(load_text("{\"version\": 1}", &cfg, err), IMP_OK);
	assert_false(cfg.matter.enabled);
	fmt_config_release(&cfg);
	assert_int_equal(load_text("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\", "
				   "\"product_id\": \"8000\"}}", &cfg, err), IMP_OK);
	assert_true(cfg.matter.enabled);
	assert_string_equal(cfg.matter.vendor_id, "FFF1");
	assert_string_equal(cfg.matter.product_id, "8000");
	assert_int_equal(fmt_matter_id_value(cfg.matter.vendor_id), 0xFFF1);
	assert_int_equal(fmt_matter_id_value(cfg.matter.product_id), 0x8000);
	assert_int_equal(cfg.matter.discriminator, -1);
	assert_int_equal(cfg.matter.iterations, FMT_MATTER_ITER_DEFAULT);
	assert_int_equal(cfg.matter.salt_length, FMT_MATTER_SALT_DEFAULT);
	assert_int_equal(cfg.matter.discovery, FMT_MATTER_DISC_BLE);
	assert_int_equal(cfg.matter.flow, FMT_MATTER_FLOW_STANDARD);
	assert_null(cfg.matter.certification_declaration);
	fmt_config_release(&cfg);
	assert_int_equal(load_text("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF2\", "
				   "\"product_id\": \"0001\", \"discriminator\": 3840, "
				   "\"spake2p_iterations\": 1000, \"salt_length\": 16, "
				   "\"discovery\": [\"on-network\", \"ble\"], "
				   "\"commissioning_flow\": \"custom\", "
				   "\"certification_declaration\": \"cd.der\"}}", &cfg, err),
			 IMP_OK);
	assert_int_equal(fmt_matter_id_value(cfg.matter.vendor_id), 0xFFF2);
	assert_int_equal(fmt_matter_id_value(cfg.matter.product_id), 1);
	assert_int_equal(cfg.matter.discriminator, 3840);
	assert_int_equal(cfg.matter.iterations, 1000);
	assert_int_equal(cfg.matter.salt_length, 16);
	assert_int_equal(cfg.matter.discovery, FMT_MATTER_DISC_BLE | FMT_MATTER_DISC_ON_NETWORK);
	assert_int_equal(cfg.matter.flow, FMT_MATTER_FLOW_CUSTOM);
	snprintf(want, sizeof(want), "%s/cd.der", cfg.dir);
	assert_string_equal(cfg.matter.certification_declaration, want);
	fmt_config_release(&cfg);
}

static void test_refusals(void **state)
{
	(void)state;
	expect_error("{\"version\": 1, \"matter\": {\"product_id\": \"8000\"}}",
		     "config: matter.vendor_id: missing: the factory data needs the vendor id (4 hex "
		     "digits, e.g. \"FFF1\")");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\"}}",
		     "config: matter.product_id: missing: the factory data needs the product id (4 "
		     "hex digits, e.g. \"8000\")");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\", \"product_id\": 32768}}",
		     "config: matter.product_id: expected 4 hex digits, e.g. \"FFF1\"");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1x\", \"product_id\": \"8000\"}}",
		     "config: matter.vendor_id: expected 4 hex digits, e.g. \"FFF1\"");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"fff1\", \"product_id\": \"8000\"}}",
		     "config: matter.vendor_id: expected uppercase hex digits (\"FFF1\", as the "
		     "Matter specification writes them)");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"0000\", \"product_id\": \"8000\"}}",
		     "config: matter.vendor_id: 0000 is not a vendor id (Matter: reserved)");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\", \"product_id\": \"8000\", "
		     "\"discriminator\": 4096}}",
		     "config: matter.discriminator: expected an integer from 0 to 4095");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\", \"product_id\": \"8000\", "
		     "\"spake2p_iterations\": 999}}",
		     "config: matter.spake2p_iterations: expected an integer from 1000 to 100000");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\", \"product_id\": \"8000\", "
		     "\"salt_length\": 33}}",
		     "config: matter.salt_length: expected an integer from 16 to 32");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\", \"product_id\": \"8000\", "
		     "\"discovery\": [\"ble\", \"wifi\"]}}",
		     "config: matter.discovery[1]: expected \"ble\", \"softap\", \"on-network\", "
		     "\"wifi-paf\" or \"nfc\"");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\", \"product_id\": \"8000\", "
		     "\"discovery\": []}}",
		     "config: matter.discovery: expected a non-empty list of \"ble\", \"softap\", "
		     "\"on-network\", \"wifi-paf\", \"nfc\"");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\", \"product_id\": \"8000\", "
		     "\"commissioning_flow\": \"fast\"}}",
		     "config: matter.commissioning_flow: expected \"standard\", \"user-intent\" or "
		     "\"custom\"");
	expect_error("{\"version\": 1, \"matter\": {\"vendor_id\": \"FFF1\", \"product_id\": \"8000\", "
		     "\"passcode\": 20202021}}",
		     "config: matter.passcode: unknown key (expected vendor_id, product_id, "
		     "discriminator, spake2p_iterations, salt_length, discovery, "
		     "commissioning_flow, certification_declaration)");
	expect_error("{\"version\": 1, \"matter\": []}", "config: matter: expected an object");
	expect_error("{\"version\": 1, \"key_mode\": \"psk\", \"matter\": {\"vendor_id\": \"FFF1\", "
		     "\"product_id\": \"8000\"}}",
		     "config: matter: a Matter device attests with its certificate: key_mode must be "
		     "\"device\" or \"hsm\", not \"psk\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_absent_and_defaults),
		cmocka_unit_test(test_refusals),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, config_setup, config_teardown);
}
