/*
 * The serial link and the agent client against an in-process fake agent on
 * a pty: reliability under corruption, malformed and unexpected frames,
 * retransmission with the same seq, defensive payload parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include "board/agent.h"
#include "wire/frame.h"
#include "board/link.h"
#include "imprint/log.h"
#include "imprint/util.h"

enum fake_mode {
	FAKE_NORMAL,
	FAKE_WRONG_SEQ_FIRST,  /* answer once with seq+1 before the real answer */
	FAKE_WRONG_TYPE,       /* answer with the wrong type, always */
	FAKE_BAD_CRC,          /* every answer has a broken CRC */
	FAKE_SILENT,           /* never answer */
	FAKE_NAK,              /* NAK every request */
	FAKE_DROP_FIRST,       /* swallow the first answer of each seq */
	FAKE_CANNED,           /* answer every command with `canned` */
	FAKE_GARBAGE_FIRST,    /* noise, a huge bogus header, then the answer */
};

struct fake {
	int master;
	pthread_t th;
	volatile int stop;
	enum fake_mode mode;
	double corrupt;          /* probability per byte, both directions */
	unsigned rng;
	uint8_t canned[WIRE_FRAME_MAX_PAYLOAD];
	size_t canned_len;
	/* replay cache, as the real agent */
	int have_last;
	uint16_t last_seq;
	uint8_t last[WIRE_FRAME_MAX_LEN];
	size_t last_len;
	unsigned acted;          /* commands executed (not replayed) */
	unsigned received;       /* good frames received */
	unsigned dropped_once;
	uint8_t rx[4 * WIRE_FRAME_MAX_LEN];
	size_t rx_len;
};

static struct fake F;
static char slave_path[128];

static unsigned rnd(struct fake *f)
{
	f->rng = f->rng * 1103515245u + 12345u;
	return f->rng >> 8;
}

static void corrupt(struct fake *f, uint8_t *p, size_t n)
{
	if (f->corrupt <= 0)
		return;
	for (size_t i = 0; i < n; i++)
		if ((double)(rnd(f) % 1000000) < f->corrupt * 1000000.0)
			p[i] ^= (uint8_t)(1u << (rnd(f) % 8));
}

static void send_bytes(struct fake *f, const uint8_t *p, size_t n)
{
	uint8_t tmp[WIRE_FRAME_MAX_LEN + 64];

	memcpy(tmp, p, n);
	corrupt(f, tmp, n);
	p = tmp;
	while (n > 0) {
		ssize_t w = write(f->master, p, n);

		if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
			usleep(100);
			continue;
		}
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static size_t encode(uint8_t type, uint16_t seq, const uint8_t *pl, size_t len, uint8_t *out)
{
	static struct wire_frame fr;

	fr.type = type;
	fr.seq = seq;
	fr.len = (uint16_t)len;
	if (len)
		memcpy(fr.payload, pl, len);
	return wire_frame_encode(&fr, out, WIRE_FRAME_MAX_LEN);
}

static void handle(struct fake *f, const struct wire_frame *req)
{
	static uint8_t pl[WIRE_FRAME_MAX_PAYLOAD];
	static uint8_t out[WIRE_FRAME_MAX_LEN];
	size_t len = 0, n;

	f->received++;
	if (f->mode == FAKE_SILENT)
		return;
	if (f->mode == FAKE_NAK) {
		n = encode(WIRE_FRAME_TYPE_NAK, req->seq, NULL, 0, out);
		send_bytes(f, out, n);
		return;
	}
	if (f->have_last && req->seq == f->last_seq) {
		send_bytes(f, f->last, f->last_len);
		return;
	}
	f->acted++;
	if (f->mode == FAKE_CANNED) {
		memcpy(pl, f->canned, f->canned_len);
		len = f->canned_len;
	} else if (req->type == WIRE_CMD_ECHO) {
		pl[0] = WIRE_ST_OK;
		memcpy(pl + 1, req->payload, req->len);
		len = 1u + req->len;
	} else {
		pl[0] = WIRE_ST_UNKNOWN_CMD;
		len = 1;
	}
	n = encode((uint8_t)(req->type | WIRE_FRAME_RESPONSE), req->seq, pl, len, out);
	memcpy(f->last, out, n);
	f->last_len = n;
	f->last_seq = req->seq;
	f->have_last = 1;
	switch (f->mode) {
	case FAKE_WRONG_SEQ_FIRST: {
		uint8_t w[WIRE_FRAME_MAX_LEN];
		size_t wn = encode((uint8_t)(req->type | WIRE_FRAME_RESPONSE),
				   (uint16_t)(req->seq + 1), pl, len, w);

		send_bytes(f, w, wn);
		break;
	}
	case FAKE_WRONG_TYPE:
		n = encode((uint8_t)(req->type ^ 0x01) | WIRE_FRAME_RESPONSE, req->seq, pl, len, out);
		memcpy(f->last, out, n);
		f->last_len = n;
		break;
	case FAKE_BAD_CRC:
		out[n - 1] ^= 0xFF;
		memcpy(f->last, out, n);
		break;
	case FAKE_DROP_FIRST:
		f->dropped_once++;
		return;
	case FAKE_GARBAGE_FIRST: {
		const uint8_t junk[] = { 0x00, 0x11, 0xA5, 0x5A, 0x01, 0x8A, 0x00, 0x01, 0x0F, 0xFF };

		send_bytes(f, junk, sizeof(junk));
		break;
	}
	default:
		break;
	}
	send_bytes(f, out, n);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	static struct wire_frame fr;

	while (!f->stop) {
		struct pollfd pfd = { .fd = f->master, .events = POLLIN };
		ssize_t got;

		if (poll(&pfd, 1, 10) <= 0) {
			/* Idle with a partial frame: its length was damaged.
			 * Skip its magic and decode again (as the agent does). */
			if (f->rx_len > 0) {
				memmove(f->rx, f->rx + 1, f->rx_len - 1);
				f->rx_len--;
				goto decode;
			}
			continue;
		}
		got = read(f->master, f->rx + f->rx_len, sizeof(f->rx) - f->rx_len);
		if (got <= 0) {
			usleep(1000);
			continue;
		}
		corrupt(f, f->rx + f->rx_len, (size_t)got);
		f->rx_len += (size_t)got;
decode:
		for (;;) {
			size_t used = 0;
			enum wire_frame_result r = wire_frame_decode(f->rx, f->rx_len, &fr, &used);

			memmove(f->rx, f->rx + used, f->rx_len - used);
			f->rx_len -= used;
			if (r == WIRE_FRAME_OK) {
				handle(f, &fr);
			} else if (r == WIRE_FRAME_BAD_CRC) {
				uint8_t nak[16];
				size_t n = encode(WIRE_FRAME_TYPE_NAK, fr.seq, NULL, 0, nak);

				send_bytes(f, nak, n);
			} else if (r == WIRE_FRAME_NEED_MORE) {
				if (f->rx_len == sizeof(f->rx))
					f->rx_len = 0;
				break;
			}
		}
	}
	return NULL;
}

static int fake_start(void **state)
{
	struct termios tio;
	int slave;

	(void)state;
	memset(&F, 0, sizeof(F));
	F.rng = 12345;
	if (openpty(&F.master, &slave, slave_path, NULL, NULL) != 0)
		return -1;
	tcgetattr(slave, &tio);
	cfmakeraw(&tio);
	tcsetattr(slave, TCSANOW, &tio);
	close(slave); /* the link opens it by path */
	if (pthread_create(&F.th, NULL, fake_main, &F) != 0)
		return -1;
	return 0;
}

static int fake_stop(void **state)
{
	(void)state;
	F.stop = 1;
	pthread_join(F.th, NULL);
	close(F.master);
	return 0;
}

static struct board_link *open_link(void)
{
	struct board_link *l = NULL;

	assert_int_equal(board_link_open("serial", slave_path, 921600, &l), IMP_OK);
	return l;
}

/* ---- reliability under corruption --------------------------------------- */

static void test_corruption_1000_exchanges(void **state)
{
	static struct wire_frame rsp;
	struct board_link *l;
	unsigned ok[2] = { 0 }, fail[2] = { 0 }, wrong = 0, tries[2] = { 0 };
	uint8_t data[300];
	double t0 = imp_now_s();
	const struct board_link_stats *st;

	(void)state;
	F.corrupt = 0.01;
	l = open_link();
	board_link_set_retries(l, 5);
	srand(11);
	for (int i = 0; i < 1000; i++) {
		int medium = i % 2;
		size_t n = medium ? 100 + (size_t)(rand() % 156) : 1 + (size_t)(rand() % 24);
		imp_err rc;

		for (size_t k = 0; k < n; k++)
			data[k] = (uint8_t)rand();
		tries[medium]++;
		rc = board_link_transact(l, WIRE_CMD_ECHO, data, n, &rsp, 40);
		if (rc == IMP_OK) {
			/* An accepted answer must be exactly the right one. */
			if (rsp.type != (WIRE_CMD_ECHO | 0x80) || rsp.len != n + 1 ||
			    rsp.payload[0] != 0 || memcmp(rsp.payload + 1, data, n) != 0)
				wrong++;
			else
				ok[medium]++;
		} else {
			assert_true(rc == IMP_ERR_TIMEOUT || rc == IMP_ERR_PROTOCOL);
			fail[medium]++;
		}
	}
	st = board_link_get_stats(l);
	fprintf(stderr,
		"1%% corruption, 1000 exchanges in %.1f s: small %u ok / %u failed cleanly, "
		"medium %u ok / %u failed cleanly, wrong data accepted %u; retransmits %llu, "
		"bad crc %llu, bad headers %llu, naks %llu, timeouts %llu, discarded %llu\n",
		imp_now_s() - t0, ok[0], fail[0], ok[1], fail[1], wrong,
		(unsigned long long)st->retransmits, (unsigned long long)st->bad_crc,
		(unsigned long long)st->bad_frames, (unsigned long long)st->naks,
		(unsigned long long)st->timeouts, (unsigned long long)st->discarded);
	assert_int_equal(wrong, 0);
	assert_int_equal(ok[0] + fail[0] + ok[1] + fail[1], 1000);
	/* Retransmission must actually help: most small exchanges get through. */
	assert_true(ok[0] >= 450);
	assert_true(ok[1] >= 1);
	assert_true(st->retransmits > 0);
	/* Through the typed client too: a corrupted echo is never "OK". */
	F.corrupt = 0.0;
	assert_int_equal(board_agent_echo(l, data, 64), IMP_OK);
	board_link_close(l);
}

/* ---- unexpected and malformed frames ------------------------------------ */

static void test_wrong_seq_discarded(void **state)
{
	static struct wire_frame rsp;
	struct board_link *l = open_link();
	const uint8_t d[] = "hello";

	(void)state;
	F.mode = FAKE_WRONG_SEQ_FIRST;
	assert_int_equal(board_link_transact(l, WIRE_CMD_ECHO, d, 5, &rsp, 200), IMP_OK);
	assert_memory_equal(rsp.payload + 1, d, 5);
	assert_true(board_link_get_stats(l)->discarded >= 1);
	board_link_close(l);
}

static void test_wrong_type_never_accepted(void **state)
{
	static struct wire_frame rsp;
	struct board_link *l = open_link();
	double t0;

	(void)state;
	F.mode = FAKE_WRONG_TYPE;
	board_link_set_retries(l, 2);
	t0 = imp_now_s();
	assert_int_equal(board_link_transact(l, WIRE_CMD_ECHO, (const uint8_t *)"x", 1, &rsp, 50),
			 IMP_ERR_TIMEOUT);
	assert_true(imp_now_s() - t0 < 1.0);
	assert_int_equal(board_link_get_stats(l)->retransmits, 2);
	assert_true(board_link_get_stats(l)->discarded >= 3);
	board_link_close(l);
}

static void test_bad_crc_bounded(void **state)
{
	static struct wire_frame rsp;
	struct board_link *l = open_link();

	(void)state;
	F.mode = FAKE_BAD_CRC;
	board_link_set_retries(l, 4);
	/* A damaged answer is asked again at once, so a healthy run never
	 * waits out an attempt; the long timeout only keeps an attempt from
	 * timing out while the fake agent's thread waits for a core (a loaded
	 * machine), which would leave its late answers uncounted. */
	assert_int_equal(board_link_transact(l, WIRE_CMD_ECHO, (const uint8_t *)"x", 1, &rsp, 2000),
			 IMP_ERR_PROTOCOL);
	assert_int_equal(board_link_get_stats(l)->retransmits, 4);
	assert_int_equal(board_link_get_stats(l)->bad_crc, 5);
	/* Same seq each time: the agent acted once and replayed the rest. */
	assert_int_equal(F.acted, 1);
	assert_int_equal(F.received, 5);
	board_link_close(l);
}

/* A silent agent: every attempt (retries + 1 of them) times out after
 * timeout_ms, the whole call taking between lo and hi seconds. */
static void silent_case(unsigned retries, unsigned timeout_ms, double lo, double hi)
{
	static struct wire_frame rsp;
	struct board_link *l = open_link();
	double t0 = imp_now_s(), dt;

	F.mode = FAKE_SILENT;
	board_link_set_retries(l, retries);
	assert_int_equal(board_link_transact(l, WIRE_CMD_IDENTIFY, NULL, 0, &rsp, timeout_ms),
			 IMP_ERR_TIMEOUT);
	dt = imp_now_s() - t0;
	assert_true(dt >= lo && dt < hi);
	assert_int_equal(board_link_get_stats(l)->timeouts, retries + 1);
	board_link_close(l);
}

static void test_silent_times_out(void **state)
{
	(void)state;
	silent_case(3, 50, 0.19, 1.0);
}

/* Longer than a read slice: blocking reads, then a poll; each attempt
 * still lasts its timeout. */
static void test_silent_long_timeout_keeps_length(void **state)
{
	(void)state;
	silent_case(1, 450, 0.9, 1.2);
}

static void test_nak_bounded(void **state)
{
	static struct wire_frame rsp;
	struct board_link *l = open_link();

	(void)state;
	F.mode = FAKE_NAK;
	assert_int_equal(board_link_transact(l, WIRE_CMD_ECHO, (const uint8_t *)"x", 1, &rsp, 100),
			 IMP_ERR_PROTOCOL);
	assert_int_equal(board_link_get_stats(l)->naks, BOARD_LINK_DEFAULT_RETRIES + 1);
	board_link_close(l);
}

static void test_lost_answer_replayed_not_redone(void **state)
{
	static struct wire_frame rsp;
	struct board_link *l = open_link();

	(void)state;
	F.mode = FAKE_DROP_FIRST;
	assert_int_equal(board_link_transact(l, WIRE_CMD_ECHO, (const uint8_t *)"ab", 2, &rsp, 60),
			 IMP_OK);
	assert_int_equal(F.acted, 1);    /* acted once ... */
	assert_int_equal(F.received, 2); /* ... though asked twice (same seq) */
	assert_int_equal(board_link_get_stats(l)->retransmits, 1);
	board_link_close(l);
}

static void test_garbage_and_oversize_header(void **state)
{
	static struct wire_frame rsp;
	struct board_link *l = open_link();

	(void)state;
	F.mode = FAKE_GARBAGE_FIRST;
	assert_int_equal(board_link_transact(l, WIRE_CMD_ECHO, (const uint8_t *)"ab", 2, &rsp, 100),
			 IMP_OK);
	assert_int_equal(rsp.len, 3);
	assert_true(board_link_get_stats(l)->bad_frames >= 1);
	board_link_close(l);
}

static void test_stale_input_flushed(void **state)
{
	static struct wire_frame rsp;
	uint8_t stale[64];
	size_t n = encode(WIRE_CMD_ECHO | 0x80, 0, (const uint8_t *)"\0stale", 6, stale);
	struct board_link *l;

	(void)state;
	/* Answers of an earlier session, for every possible seq, are waiting. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(write(F.master, stale, n), (ssize_t)n);
	usleep(20000);
	l = open_link();
	assert_int_equal(board_link_transact(l, WIRE_CMD_ECHO, (const uint8_t *)"new", 3, &rsp, 200),
			 IMP_OK);
	assert_memory_equal(rsp.payload + 1, "new", 3);
	board_link_close(l);
}

static void test_open_errors(void **state)
{
	struct board_link *l = NULL;

	(void)state;
	assert_int_equal(board_link_open("serial", "/nonexistent/tty", 921600, &l), IMP_ERR_LINK);
	assert_null(l);
	assert_int_equal(board_link_open("serial", slave_path, 12345, &l), IMP_ERR_USAGE);
	assert_int_equal(board_link_open("serial", "/dev/null", 921600, &l), IMP_ERR_LINK);
	assert_int_equal(board_link_open("carrier-pigeon", slave_path, 0, &l), IMP_ERR_USAGE);
	assert_non_null(board_link_driver_find("serial"));
	assert_null(board_link_drivers[1]);
}

/* ---- agent client payload parsing --------------------------------------- */

static void canned(const uint8_t *p, size_t n)
{
	F.mode = FAKE_CANNED;
	memcpy(F.canned, p, n);
	F.canned_len = n;
}

static size_t identify_payload(uint8_t *p)
{
	size_t n = 0;

	p[n++] = WIRE_ST_OK;
	for (int i = 0; i < 16; i++)
		p[n++] = (uint8_t)(0xA0 + i);
	p[n++] = WIRE_LC_OPEN;
	p[n++] = 1;        /* protocol */
	p[n++] = 0x01;     /* agent version 0x0102 */
	p[n++] = 0x02;
	p[n++] = 0x01;     /* fuses */
	p[n++] = 0x03;     /* slots */
	p[n++] = 0x04;
	for (int i = 0; i < 64; i++)
		p[n++] = (uint8_t)i;
	return n;
}

static void test_agent_identify(void **state)
{
	struct board_link *l = open_link();
	struct board_agent_info info;
	uint8_t p[200];
	size_t n = identify_payload(p);

	(void)state;
	canned(p, n);
	assert_int_equal(board_agent_identify(l, &info), IMP_OK);
	assert_int_equal(info.uid[0], 0xA0);
	assert_int_equal(info.uid[15], 0xAF);
	assert_int_equal(info.lifecycle, WIRE_LC_OPEN);
	assert_int_equal(info.agent_version, 0x0102);
	assert_int_equal(info.fuses, 1);
	assert_int_equal(info.slots, 3);
	assert_int_equal(info.transport_pub[0], 0x04);
	/* Truncated by one byte, and one byte too long: both malformed. */
	canned(p, n - 1);
	assert_int_equal(board_agent_identify(l, &info), IMP_ERR_PROTOCOL);
	p[n] = 0;
	canned(p, n + 1);
	assert_int_equal(board_agent_identify(l, &info), IMP_ERR_PROTOCOL);
	/* Status only. */
	canned(p, 1);
	assert_int_equal(board_agent_identify(l, &info), IMP_ERR_PROTOCOL);
	/* Empty payload: not even a status byte. */
	canned(p, 0);
	assert_int_equal(board_agent_identify(l, &info), IMP_ERR_PROTOCOL);
	/* Refusals map to IMP_ERR_BOARD with the status remembered. */
	p[0] = WIRE_ST_STATE;
	canned(p, 1);
	assert_int_equal(board_agent_identify(l, &info), IMP_ERR_BOARD);
	assert_int_equal(board_agent_last_status(), WIRE_ST_STATE);
	assert_string_equal(board_agent_status_name(WIRE_ST_STATE), "STATE");
	assert_string_equal(board_agent_status_name(200), "UNKNOWN");
	board_link_close(l);
}

static void test_agent_read_identity(void **state)
{
	struct board_link *l = open_link();
	struct board_identity id;
	uint8_t p[300];
	size_t n = 0;

	(void)state;
	p[n++] = 0;
	p[n++] = 0, p[n++] = 3, memcpy(p + n, "S-1", 3), n += 3;   /* serial */
	p[n++] = 0, p[n++] = 2, memcpy(p + n, "{}", 2), n += 2;    /* identity */
	p[n++] = 0, p[n++] = 0;                                    /* cert: empty */
	p[n++] = 0, p[n++] = 65, p[n] = 4, memset(p + n + 1, 7, 64), n += 65;
	p[n++] = WIRE_LC_PERSONALISED;
	canned(p, n);
	assert_int_equal(board_agent_read_identity(l, 0, &id), IMP_OK);
	assert_string_equal(id.serial, "S-1");
	assert_int_equal(id.identity_len, 2);
	assert_int_equal(id.cert_len, 0);
	assert_true(id.has_pub);
	assert_int_equal(id.lifecycle, WIRE_LC_PERSONALISED);
	board_identity_release(&id);
	/* A blob length that runs past the end. */
	p[5 + 1] = 200;
	canned(p, n);
	assert_int_equal(board_agent_read_identity(l, 0, &id), IMP_ERR_PROTOCOL);
	assert_null(id.serial);
	/* A public key of the wrong size. */
	p[5 + 1] = 0;
	p[13] = 64;
	canned(p, n - 1);
	assert_int_equal(board_agent_read_identity(l, 0, &id), IMP_ERR_PROTOCOL);
	board_link_close(l);
}

static void test_agent_sign_and_keys(void **state)
{
	struct board_link *l = open_link();
	uint8_t p[200], nonce[32] = { 0 }, sig[BOARD_SIG_MAX], pub[65];
	size_t n = 0, sl = 0;

	(void)state;
	p[n++] = 0, p[n++] = 0, p[n++] = 16;
	memset(p + n, 0x5C, 16), n += 16;
	canned(p, n);
	assert_int_equal(board_agent_sign_challenge(l, 1, nonce, sig, sizeof(sig), &sl), IMP_OK);
	assert_int_equal(sl, 16);
	assert_int_equal(board_agent_sign_challenge(l, 1, nonce, sig, 8, &sl), IMP_ERR_PROTOCOL);
	/* generate_key: a point that is not uncompressed is refused. */
	p[0] = 0;
	p[1] = 0x02;
	memset(p + 2, 1, 64);
	canned(p, 66);
	assert_int_equal(board_agent_generate_key(l, 0, false, pub), IMP_ERR_PROTOCOL);
	p[1] = 0x04;
	canned(p, 66);
	assert_int_equal(board_agent_generate_key(l, 0, false, pub), IMP_OK);
	p[0] = WIRE_ST_EXISTS;
	canned(p, 1);
	assert_int_equal(board_agent_generate_key(l, 0, false, pub), IMP_ERR_BOARD);
	/* lock: any payload after OK is an error. */
	p[0] = 0;
	canned(p, 1);
	assert_int_equal(board_agent_lock(l, BOARD_LOCK_SLOTS), IMP_OK);
	canned(p, 2);
	assert_int_equal(board_agent_lock(l, BOARD_LOCK_SLOTS), IMP_ERR_PROTOCOL);
	/* echo that returns different bytes is never OK. */
	p[1] = 'X';
	canned(p, 2);
	assert_int_equal(board_agent_echo(l, (const uint8_t *)"Y", 1), IMP_ERR_PROTOCOL);
	/* Oversized request refused before sending. */
	{
		static uint8_t big[WIRE_FRAME_MAX_PAYLOAD + 10];

		assert_int_equal(board_agent_store_cert(l, 0, big, sizeof(big)), IMP_ERR_USAGE);
	}
	board_link_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_corruption_1000_exchanges, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_wrong_seq_discarded, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_wrong_type_never_accepted, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_bad_crc_bounded, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_silent_times_out, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_silent_long_timeout_keeps_length, fake_start,
						fake_stop),
		cmocka_unit_test_setup_teardown(test_nak_bounded, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_lost_answer_replayed_not_redone, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_garbage_and_oversize_header, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_stale_input_flushed, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_open_errors, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_agent_identify, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_agent_read_identity, fake_start, fake_stop),
		cmocka_unit_test_setup_teardown(test_agent_sign_and_keys, fake_start, fake_stop),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
