/*
 * bench-board: how fast the board drivers move data.
 *
 *   RSP read throughput (KiB/s) of 64 KiB SRAM reads through the rsp probe:
 *   against imprint-vboard with no latency model, with the realistic one,
 *   and against QEMU's GDB stub (mps2-an385).
 *
 *   UART ECHO round trips per second through the serial link and the
 *   vboard's agent with its realistic 921600-baud model, beside the line-rate
 *   limit: 921600 / (bytes per round trip * 10 bits).
 *
 *   The host-side codecs a board's firmware goes through: the RSP escape
 *   (vFlashWrite) and GDB's CRC-32 (the image's side of qCRC), MB/s and
 *   nanoseconds per KiB over random data.
 *
 * usage: bench-board [--vboard PATH] [--qemu PATH] [--seconds S]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board/agent.h"
#include "board/probe.h"
#include "board/rsp.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "it_util.h"

#ifndef VBOARD_EXE
#define VBOARD_EXE NULL
#endif
#ifndef QEMU_EXE
#define QEMU_EXE NULL
#endif

static double seconds = 1.0;

/* MB/s of the escape and the CRC over a random 24 KiB image (the demo's). */
static void codec_rows(void)
{
	static uint8_t img[24576], out[2 * 24576 + 16];
	volatile uint32_t sink = 0;

	srand(1);
	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)rand();
	printf("%-34s %12s %10s\n", "codec (24 KiB random image)", "MB/s", "ns/KiB");
	for (int which = 0; which < 2; which++) {
		double t0 = imp_now_s(), dt;
		unsigned long rounds = 0;

		do {
			for (int k = 0; k < 64; k++, rounds++) {
				size_t used = 0;

				if (which == 0)
					sink ^= (uint32_t)board_rsp_escape(img, sizeof(img), out,
									   sizeof(out), &used);
				else
					sink ^= board_rsp_crc32(0xFFFFFFFFu, img, sizeof(img));
			}
			dt = imp_now_s() - t0;
		} while (dt < seconds / 4);
		printf("%-34s %12.0f %10.1f\n", which == 0 ? "RSP escape (vFlashWrite)" :
			       "CRC-32 as qCRC", (double)rounds * sizeof(img) / dt / 1e6,
		       dt * 1e9 / ((double)rounds * sizeof(img) / 1024));
	}
	(void)sink;
}

static void rsp_row(const char *label, const char *uri)
{
	static uint8_t buf[65536];
	struct board_probe *p = NULL;
	double t0, dt;
	size_t total = 0;
	unsigned reads = 0;

	if (board_probe_open(uri, &p) != IMP_OK) {
		printf("%-34s %12s\n", label, "unavailable");
		return;
	}
	t0 = imp_now_s();
	do {
		if (board_probe_read(p, 0x20000000, buf, sizeof(buf)) != IMP_OK) {
			printf("%-34s %12s\n", label, "read failed");
			board_probe_close(p);
			return;
		}
		total += sizeof(buf);
		reads++;
		dt = imp_now_s() - t0;
	} while (dt < seconds);
	printf("%-34s %12.0f %10.2f\n", label, (double)total / 1024.0 / dt, dt * 1000.0 / reads);
	board_probe_close(p);
}

static void uart_rows(const char *uart, const char *label)
{
	static const size_t sizes[] = { 0, 16, 64, 256, 1024, 4095 };
	static struct wire_frame rsp;
	static uint8_t data[WIRE_FRAME_MAX_PAYLOAD];
	struct board_link *l = NULL;

	if (board_link_open("serial", uart, 921600, &l) != IMP_OK) {
		printf("uart unavailable\n");
		return;
	}
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		/* request frame + response frame (status byte + echo) */
		size_t bytes = (12 + n) + (12 + 1 + n);
		double limit = 921600.0 / ((double)bytes * 10.0);
		double t0 = imp_now_s(), dt;
		unsigned rt = 0;

		memset(data, 0x5A, n);
		do {
			if (board_link_transact(l, WIRE_CMD_ECHO, data, n, &rsp, 2000) != IMP_OK) {
				printf("echo failed\n");
				board_link_close(l);
				return;
			}
			rt++;
			dt = imp_now_s() - t0;
		} while (dt < seconds);
		printf("%-12s %8zu %10zu %12.1f %12.1f %7.0f%%\n", label, n, bytes, rt / dt, limit,
		       100.0 * (rt / dt) / limit);
	}
	board_link_close(l);
}

static int with_vboard(const char *exe, const char *latency, struct it_vboard *vb)
{
	const char *args[] = { "--latency", latency, NULL };

	memset(vb, 0, sizeof(*vb));
	return it_vboard_start(vb, exe, args);
}

int main(int argc, char **argv)
{
	const char *vboard = VBOARD_EXE, *qemu = QEMU_EXE;
	struct it_vboard vb;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--vboard") == 0 && i + 1 < argc)
			vboard = argv[++i];
		else if (strcmp(argv[i], "--qemu") == 0 && i + 1 < argc)
			qemu = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: bench-board [--vboard PATH] [--qemu PATH] [--seconds S]\n");
			return 2;
		}
	}
	imp_log_set_level(IMP_LOG_ERROR);

	codec_rows();
	printf("\nRSP read throughput, 64 KiB reads of SRAM at 0x20000000\n");
	printf("%-34s %12s %10s\n", "peer", "KiB/s", "ms/read");
	if (vboard && with_vboard(vboard, "0", &vb) == 0) {
		rsp_row("imprint-vboard, latency 0", vb.rsp);
		it_kill(&vb.proc);
	}
	if (vboard && with_vboard(vboard, "1", &vb) == 0) {
		rsp_row("imprint-vboard, latency 1.0", vb.rsp);
		it_kill(&vb.proc);
	}
	if (qemu) {
		int port = it_free_port();
		char gdb[64], uri[64];
		char *qargv[] = { (char *)qemu, (char *)"-M", (char *)"mps2-an385", (char *)"-S",
				  (char *)"-gdb", gdb, (char *)"-display", (char *)"none",
				  (char *)"-monitor", (char *)"none", (char *)"-serial",
				  (char *)"none", NULL };
		struct it_child q;

		snprintf(gdb, sizeof(gdb), "tcp:127.0.0.1:%d", port);
		snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d", port);
		if (it_spawn(&q, qargv, 1) == 0) {
			usleep(300000);
			rsp_row("qemu-system-arm mps2-an385", uri);
			it_kill(&q);
		}
	}

	printf("\nUART ECHO round trips at 921600 baud (8N1: 10 bits per byte)\n");
	printf("%-12s %8s %10s %12s %12s %8s\n", "vboard", "payload", "bytes/rt", "rt/s",
	       "line limit", "of limit");
	if (vboard && with_vboard(vboard, "1", &vb) == 0) {
		uart_rows(vb.uart, "latency 1.0");
		it_kill(&vb.proc);
	}
	if (vboard && with_vboard(vboard, "0", &vb) == 0) {
		uart_rows(vb.uart, "latency 0");
		it_kill(&vb.proc);
	}
	return 0;
}
