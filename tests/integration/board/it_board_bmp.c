/*
 * The rsp+serial driver against imprint-vboard's Black Magic Probe
 * personality on a pseudo-terminal (--bmp-pty): the port refuses target
 * access until "monitor swd_scan" and "vAttach;1"; the driver does both
 * before anything else; `imprint board info` through it reads the UID and
 * matches the agent's; 64 KiB of RAM (with the bytes RSP escapes) written
 * and read back.
 *
 * usage: it_board_bmp IMPRINT VBOARD
 */
#include <stdint.h>
#include <termios.h>

#include "board/probe.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "it_util.h"

static int pass, fails;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (cond) {                                                              \
			pass++;                                                          \
		} else {                                                                 \
			fails++;                                                         \
			fprintf(stderr, "FAIL: %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
		}                                                                        \
	} while (0)

/* One raw RSP exchange on the pty, ack mode: returns the reply payload. */
static int raw_exchange(const char *path, const char *cmd, char *out, size_t cap)
{
	char pkt[256], buf[1024];
	uint8_t sum = 0;
	size_t len = 0;
	struct termios t;
	int fd = open(path, O_RDWR | O_NOCTTY);

	if (fd < 0)
		return -1;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	for (const char *p = cmd; *p; p++)
		sum = (uint8_t)(sum + (uint8_t)*p);
	snprintf(pkt, sizeof(pkt), "$%s#%02x", cmd, sum);
	if (write(fd, pkt, strlen(pkt)) != (ssize_t)strlen(pkt)) {
		close(fd);
		return -1;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char *d, *h;
		ssize_t got;

		if (poll(&pfd, 1, 3000) <= 0)
			break;
		got = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
		buf[len] = '\0';
		d = strchr(buf, '$');
		h = d ? strchr(d, '#') : NULL;
		if (h && h + 2 < buf + len + 1) {
			*h = '\0';
			snprintf(out, cap, "%s", d + 1);
			close(fd);
			return 0;
		}
	}
	close(fd);
	return -1;
}

int main(int argc, char **argv)
{
	struct it_child vb;
	char *vargs[] = { argv[2], (char *)"--quiet", (char *)"--latency", (char *)"0",
			  (char *)"--bmp-pty", (char *)"--chip", (char *)"st-stm32u5", NULL };
	char line[2048], uid[40] = "", uid96[32] = "", bmp[128] = "", uart[128] = "";
	char uri[256], cmd[1024], reply[256];
	struct board_probe *probe = NULL;
	static uint8_t a[65536], b[65536];
	uint8_t u[12];
	FILE *f;

	if (argc != 3) {
		fprintf(stderr, "usage: it_board_bmp IMPRINT VBOARD\n");
		return 2;
	}
	if (it_spawn(&vb, vargs, 0) != 0)
		return 1;
	while (it_read_line(&vb, line, sizeof(line), 10000) == 0) {
		if (strstr(line, "\"ready\":true"))
			break;
		if (strstr(line, "\"board\":0")) {
			it_json_str(line, "uid", uid, sizeof(uid));
			it_json_str(line, "uid96", uid96, sizeof(uid96));
			it_json_str(line, "bmp", bmp, sizeof(bmp));
			it_json_str(line, "uart", uart, sizeof(uart));
		}
	}
	CHECK(bmp[0] && uart[0] && uid96[0]);
	if (!bmp[0])
		goto out;

	/* The port itself: no target access before swd_scan and vAttach. */
	CHECK(raw_exchange(bmp, "m20000000,4", reply, sizeof(reply)) == 0 &&
	      strcmp(reply, "EFF") == 0);
	CHECK(raw_exchange(bmp, "vAttach;1", reply, sizeof(reply)) == 0 &&
	      strcmp(reply, "E01") == 0);

	/* The driver scans and attaches first: then the UID and 64 KiB of RAM. */
	snprintf(uri, sizeof(uri), "rsp+serial://%s", bmp);
	CHECK(board_probe_open(uri, &probe) == IMP_OK);
	if (probe) {
		char hex[25];

		CHECK(board_probe_read(probe, 0x0BFA0700, u, sizeof(u)) == IMP_OK);
		imp_hex_encode(u, sizeof(u), hex);
		CHECK(strcmp(hex, uid96) == 0);
		for (size_t i = 0; i < sizeof(a); i++)
			a[i] = (uint8_t)(i * 7 + (i >> 8));
		a[100] = '$';
		a[101] = '#';
		a[102] = '}';
		a[103] = '*';
		CHECK(board_probe_write(probe, 0x20000000, a, sizeof(a)) == IMP_OK);
		CHECK(board_probe_read(probe, 0x20000000, b, sizeof(b)) == IMP_OK);
		CHECK(memcmp(a, b, sizeof(a)) == 0);
		board_probe_close(probe);
		probe = NULL;
	}

	/* imprint board info through the BMP: SWD and UART name one board. */
	snprintf(cmd, sizeof(cmd), "%s board info --profile st-stm32u5 --probe '%s' --uart '%s' 2>&1",
		 argv[1], uri, uart);
	f = popen(cmd, "r");
	if (f) {
		bool match = false, uid_ok = false;

		while (fgets(line, sizeof(line), f)) {
			if (strstr(line, "uid match        yes"))
				match = true;
			if (strstr(line, "uid (swd)") && strstr(line, uid96))
				uid_ok = true;
		}
		CHECK(pclose(f) == 0);
		CHECK(match);
		CHECK(uid_ok);
	}

out:
	it_kill(&vb);
	printf("%d passed, %d failed\n", pass, fails);
	return fails == 0 && pass > 0 ? 0 : 1;
}
