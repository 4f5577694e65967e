/*
 * The rsp probe's handshake and vFlashWrite framing against a strict
 * scripted server: in ack mode every packet the server sends must be
 * answered '+' before anything else arrives (a Black Magic Probe resends
 * its packet otherwise), and the server may refuse QStartNoAckMode, NAK a
 * packet, or send a notification between replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "board/probe.h"
#include "board/rsp.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define FLASH_SIZE (256u * 1024u)

struct srv {
	int lfd, fd, port;
	pthread_t th;
	/* script */
	bool offer_noack, refuse_noack, nak_first, notify_after_supported;
	unsigned packet_size;
	/* state */
	bool noack, await_ack;
	uint8_t last[BOARD_RSP_MAX_PAYLOAD + 16];
	size_t last_len;
	/* results */
	int violations, packets, naks_sent, flash_writes;
	size_t max_packet;
	uint8_t flash[FLASH_SIZE];
};

static void ssend_raw(struct srv *s, const uint8_t *p, size_t n)
{
	(void)!send(s->fd, p, n, MSG_NOSIGNAL);
}

static void ssend(struct srv *s, const char *payload)
{
	size_t n = strlen(payload);

	s->last_len = board_rsp_frame((const uint8_t *)payload, n, s->last, sizeof(s->last));
	ssend_raw(s, s->last, s->last_len);
	s->await_ack = !s->noack;
}

static void snotify(struct srv *s, const char *payload)
{
	uint8_t b[128];
	size_t n = board_rsp_frame((const uint8_t *)payload, strlen(payload), b, sizeof(b));

	b[0] = '%';
	ssend_raw(s, b, n);
}

static void handle(struct srv *s, uint8_t *p, size_t n)
{
	char r[600];

	s->packets++;
	if (n > s->max_packet)
		s->max_packet = n;
	if (n >= 10 && memcmp(p, "qSupported", 10) == 0) {
		snprintf(r, sizeof(r), "PacketSize=%x;imprint-vboard+;qXfer:memory-map:read+%s",
			 s->packet_size, s->offer_noack ? ";QStartNoAckMode+" : "");
		ssend(s, r);
		if (s->notify_after_supported)
			snotify(s, "Stop:T05");
	} else if (n == 15 && memcmp(p, "QStartNoAckMode", 15) == 0) {
		ssend(s, s->refuse_noack ? "" : "OK");
		if (!s->refuse_noack)
			s->noack = true;
	} else if (n > 23 && memcmp(p, "qXfer:memory-map:read::", 23) == 0) {
		snprintf(r, sizeof(r),
			 "l<memory-map><memory type=\"flash\" start=\"0x0\" length=\"0x%x\">"
			 "<property name=\"blocksize\">0x1000</property></memory></memory-map>",
			 FLASH_SIZE);
		ssend(s, r);
	} else if (p[0] == 'm') {
		ssend(s, "01020304");
	} else if (n > 12 && memcmp(p, "vFlashErase:", 12) == 0) {
		ssend(s, "OK");
	} else if (n > 12 && memcmp(p, "vFlashWrite:", 12) == 0) {
		char *c = NULL;
		uint32_t a;
		size_t len;

		p[n] = 0;
		a = (uint32_t)strtoul((char *)p + 12, &c, 16);
		len = n - (size_t)((uint8_t *)c + 1 - p);
		if (a + len > FLASH_SIZE) {
			ssend(s, "E01");
			return;
		}
		memcpy(s->flash + a, c + 1, len);
		s->flash_writes++;
		ssend(s, "OK");
	} else if (n == 10 && memcmp(p, "vFlashDone", 10) == 0) {
		ssend(s, "OK");
	} else {
		ssend(s, "");
	}
}

static void *serve(void *arg)
{
	struct srv *s = arg;
	static uint8_t rx[4 * BOARD_RSP_MAX_PAYLOAD], pkt[BOARD_RSP_MAX_PAYLOAD + 1];
	size_t len = 0;

	s->fd = accept(s->lfd, NULL, NULL);
	if (s->fd < 0)
		return NULL;
	for (;;) {
		ssize_t got = read(s->fd, rx + len, sizeof(rx) - len);

		if (got <= 0)
			break;
		len += (size_t)got;
		for (;;) {
			size_t plen = 0, used = 0;
			char a = 0;
			enum board_rsp_result res =
				board_rsp_parse(rx, len, pkt, BOARD_RSP_MAX_PAYLOAD, &plen, &used, &a);

			memmove(rx, rx + used, len - used);
			len -= used;
			if (res == BOARD_RSP_NEED_MORE)
				break;
			if (res == BOARD_RSP_ACK) {
				if (a == '-' && s->await_ack)
					ssend_raw(s, s->last, s->last_len);
				else if (a == '+')
					s->await_ack = false;
				continue;
			}
			if (res != BOARD_RSP_PACKET)
				continue;
			if (s->await_ack) {
				/* a packet before the '+' owed for ours */
				s->violations++;
				s->await_ack = false;
			}
			if (s->nak_first) {
				s->nak_first = false;
				s->naks_sent++;
				ssend_raw(s, (const uint8_t *)"-", 1);
				continue;
			}
			if (!s->noack)
				ssend_raw(s, (const uint8_t *)"+", 1);
			handle(s, pkt, plen);
		}
	}
	close(s->fd);
	return NULL;
}

static struct srv *srv_start(void)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);

	s->packet_size = 0x1000;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 1), 0);
	getsockname(s->lfd, (struct sockaddr *)&a, &l);
	s->port = ntohs(a.sin_port);
	return s;
}

static void srv_go(struct srv *s)
{
	pthread_create(&s->th, NULL, serve, s);
}

static void srv_join(struct srv *s)
{
	pthread_join(s->th, NULL);
	close(s->lfd);
}

/* Open, read four bytes, close: the server must see every ack in place. */
static void run_session(struct srv *s, const char *keys, bool want_noack)
{
	struct board_probe *p = NULL;
	char uri[256];
	uint8_t b[4];

	srv_go(s);
	snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d?timeout_ms=500%s", s->port, keys);
	assert_int_equal(board_probe_open(uri, &p), IMP_OK);
	assert_int_equal(board_probe_read(p, 0x20000000, b, 4), IMP_OK);
	assert_memory_equal(b, "\x01\x02\x03\x04", 4);
	assert_int_equal(board_probe_read(p, 0x20000004, b, 4), IMP_OK);
	assert_memory_equal(b, "\x01\x02\x03\x04", 4);
	board_probe_close(p);
	srv_join(s);
	assert_int_equal(s->violations, 0);
	assert_int_equal(s->noack, want_noack);
}

static void test_noack_accepted(void **state)
{
	struct srv *s = srv_start();

	(void)state;
	s->offer_noack = true;
	run_session(s, "", true);
	free(s);
}

static void test_noack_refused(void **state)
{
	struct srv *s = srv_start();

	(void)state;
	s->offer_noack = true;
	s->refuse_noack = true;
	run_session(s, "", false);
	free(s);
}

static void test_noack_not_offered(void **state)
{
	struct srv *s = srv_start();

	(void)state;
	run_session(s, "", false);
	free(s);
}

static void test_noack_kept_off(void **state)
{
	struct srv *s = srv_start();

	(void)state;
	s->offer_noack = true;
	run_session(s, "&noack=0", false);
	free(s);
}

static void test_first_packet_naked(void **state)
{
	struct srv *s = srv_start();

	(void)state;
	s->offer_noack = true;
	s->nak_first = true;
	run_session(s, "", true);
	assert_int_equal(s->naks_sent, 1);
	free(s);
}

static void test_notification_between(void **state)
{
	struct srv *s = srv_start();

	(void)state;
	s->offer_noack = true;
	s->notify_after_supported = true;
	run_session(s, "", true);
	free(s);
}

/* The largest PacketSize, an image of bytes that all need escaping (its
 * packets twice its size) and one whose last chunk is short. */
static void flash_case(unsigned packet_size, uint8_t fill, size_t n, const char *keys)
{
	struct srv *s = srv_start();
	struct board_probe *p = NULL;
	uint8_t *img = malloc(n);
	char uri[256];

	s->offer_noack = true;
	s->packet_size = packet_size;
	for (size_t i = 0; i < n; i++)
		img[i] = fill ? fill : (uint8_t)(i * 131 + 7);
	srv_go(s);
	snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d?timeout_ms=2000%s", s->port, keys);
	assert_int_equal(board_probe_open(uri, &p), IMP_OK);
	assert_int_equal(board_probe_flash_program(p, 0, img, n), IMP_OK);
	board_probe_close(p);
	srv_join(s);
	assert_int_equal(s->violations, 0);
	assert_memory_equal(s->flash, img, n);
	assert_true(s->max_packet + 4 <= packet_size);
	free(img);
	free(s);
}

static void test_flash_max_packet(void **state)
{
	(void)state;
	flash_case(BOARD_RSP_MAX_PAYLOAD, '}', 150000, "");
	flash_case(BOARD_RSP_MAX_PAYLOAD, '#', 65489, "&noack=0");
	flash_case(BOARD_RSP_MAX_PAYLOAD + 0x1000, 0, 200001, "");
	flash_case(64, '$', 1001, "");
	flash_case(64, 0, 1, "&noack=0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_noack_accepted),
		cmocka_unit_test(test_noack_refused),
		cmocka_unit_test(test_noack_not_offered),
		cmocka_unit_test(test_noack_kept_off),
		cmocka_unit_test(test_first_packet_naked),
		cmocka_unit_test(test_notification_between),
		cmocka_unit_test(test_flash_max_packet),
	};

	imp_log_set_level(IMP_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
