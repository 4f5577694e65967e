/*
 * The virtual board's factory-data area through its agent
 * (STORE_FACTORY_DATA, READ_FACTORY_DATA; wire/factory.h): what is stored
 * reads back byte for byte and survives a restart, a malformed record is
 * refused, and the area freezes once the board is personalised or locked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "board_int.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/vb1_map.h"
#include "wire/agent_proto.h"
#include "wire/factory.h"
#include "wire/payload.h"

struct fixture {
	char dir[64];
	struct sim_config cfg;
	struct sim_board b;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct sim_chip_opts co = { .seed = 9 };
	struct sim_se_opts so = { 0 };

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sim-factory-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	fx->b.cfg = &fx->cfg;
	fx->b.faults = &fx->cfg.faults;
	fx->b.state_dir = fx->dir;
	fx->b.chip = sim_chip_new(&co);
	fx->b.se = sim_se_new(&so);
	*state = fx;
	return fx->b.chip && fx->b.se ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char path[128];

	snprintf(path, sizeof(path), "%s/factory.bin", fx->dir);
	unlink(path);
	rmdir(fx->dir);
	sim_chip_free(fx->b.chip);
	sim_se_free(fx->b.se);
	free(fx->b.factory);
	free(fx);
	return 0;
}

static struct wire_frame *call(struct sim_board *b, uint8_t type, const void *pl, size_t n)
{
	static struct wire_frame req, resp;

	req.type = type;
	req.seq = 5;
	req.len = (uint16_t)n;
	if (n)
		memcpy(req.payload, pl, n);
	sim_agent_handle(b, &req, &resp);
	assert_int_equal(resp.type, type | 0x80);
	assert_true(resp.len >= 1);
	return &resp;
}

static size_t record(uint8_t *buf, size_t cap, uint16_t disc, size_t salt_len)
{
	static const uint8_t salt[40] = { 1, 2, 3 }, ver[WIRE_FACTORY_VERIFIER_LEN] = { 4, 5 },
			     cd[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
	struct wire_factory f = { 0xFFF1, 0x8000, disc, 1000, salt, salt_len, ver, cd,
				  sizeof(cd) };
	struct wire_wr w;

	wire_wr_init(&w, buf, cap);
	wire_factory_write(&w, &f);
	assert_false(w.overflow);
	return w.n;
}

static void expect_stored(struct sim_board *b, const uint8_t *rec, size_t n)
{
	struct wire_frame *r = call(b, WIRE_CMD_READ_FACTORY_DATA, NULL, 0);
	struct wire_rd rd;
	struct wire_factory f;
	const uint8_t *p;
	size_t pn;

	assert_int_equal(r->payload[0], WIRE_ST_OK);
	wire_rd_init(&rd, r->payload + 1, r->len - 1u);
	p = wire_rd_blob(&rd, &pn);
	assert_true(wire_rd_done(&rd));
	assert_int_equal(pn, n);
	assert_memory_equal(p, rec, n);
	wire_rd_init(&rd, p, pn);
	assert_true(wire_factory_read(&rd, &f));
	assert_true(wire_rd_done(&rd));
	assert_int_equal(f.vendor_id, 0xFFF1);
	assert_int_equal(f.product_id, 0x8000);
	assert_int_equal(f.iterations, 1000);
	assert_int_equal(f.cd_len, 5);
}

static void test_store_read_persist(void **state)
{
	struct fixture *fx = *state;
	struct sim_board *b = &fx->b, again;
	uint8_t rec[WIRE_FACTORY_MAX_LEN], rec2[WIRE_FACTORY_MAX_LEN];
	size_t n = record(rec, sizeof(rec), 3840, 32), n2 = record(rec2, sizeof(rec2), 17, 16);
	struct wire_frame *r;
	char path[128];
	uint8_t *file = NULL;
	size_t fn = 0;

	/* nothing yet: an empty record */
	r = call(b, WIRE_CMD_READ_FACTORY_DATA, NULL, 0);
	assert_int_equal(r->len, 3);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	r = call(b, WIRE_CMD_READ_FACTORY_DATA, "x", 1);
	assert_int_equal(r->payload[0], WIRE_ST_BAD_REQUEST);

	r = call(b, WIRE_CMD_STORE_FACTORY_DATA, rec, n);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	expect_stored(b, rec, n);
	snprintf(path, sizeof(path), "%s/factory.bin", fx->dir);
	assert_int_equal(imp_read_file(path, &file, &fn), IMP_OK);
	assert_int_equal(fn, n);
	assert_memory_equal(file, rec, n);
	free(file);

	/* while OPEN another record replaces it */
	r = call(b, WIRE_CMD_STORE_FACTORY_DATA, rec2, n2);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	expect_stored(b, rec2, n2);

	/* a restarted board reads it from its state */
	memset(&again, 0, sizeof(again));
	again.cfg = b->cfg;
	again.faults = b->faults;
	again.state_dir = fx->dir;
	again.chip = b->chip;
	again.se = b->se;
	expect_stored(&again, rec2, n2);
	free(again.factory);
}

static void test_refusals_and_freeze(void **state)
{
	struct fixture *fx = *state;
	struct sim_board *b = &fx->b;
	uint8_t rec[WIRE_FACTORY_MAX_LEN + 8], rec2[WIRE_FACTORY_MAX_LEN];
	size_t n, n2 = record(rec2, sizeof(rec2), 100, 20);
	struct wire_frame *r;

	/* a salt of 15 bytes, a trailing byte, a wrong format byte */
	n = record(rec, sizeof(rec), 1, 15);
	r = call(b, WIRE_CMD_STORE_FACTORY_DATA, rec, n);
	assert_int_equal(r->payload[0], WIRE_ST_BAD_REQUEST);
	n = record(rec, sizeof(rec), 1, 16);
	rec[n] = 0;
	r = call(b, WIRE_CMD_STORE_FACTORY_DATA, rec, n + 1);
	assert_int_equal(r->payload[0], WIRE_ST_BAD_REQUEST);
	rec[0] = 2;
	r = call(b, WIRE_CMD_STORE_FACTORY_DATA, rec, n);
	assert_int_equal(r->payload[0], WIRE_ST_BAD_REQUEST);
	rec[0] = WIRE_FACTORY_FORMAT;
	/* a 13-bit discriminator */
	n = record(rec, sizeof(rec), 0x1000, 16);
	r = call(b, WIRE_CMD_STORE_FACTORY_DATA, rec, n);
	assert_int_equal(r->payload[0], WIRE_ST_BAD_REQUEST);

	n = record(rec, sizeof(rec), 1, 16);
	r = call(b, WIRE_CMD_STORE_FACTORY_DATA, rec, n);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	assert_int_equal(sim_chip_set_personalised(b->chip), IMP_OK);
	/* the same again is a retry; another is refused */
	r = call(b, WIRE_CMD_STORE_FACTORY_DATA, rec, n);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	r = call(b, WIRE_CMD_STORE_FACTORY_DATA, rec2, n2);
	assert_int_equal(r->payload[0], WIRE_ST_STATE);
	expect_stored(b, rec, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_read_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_and_freeze, setup, teardown),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
