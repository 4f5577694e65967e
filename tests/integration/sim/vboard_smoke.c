/*
 * Integration test of imprint-vboard: start it, read the endpoint lines,
 * IDENTIFY and ECHO over the pty with frames, read the UID over RSP and
 * compare, then restart on the same state directory and check the UID and
 * a flash word survived. Exit 0 on success, 1 with a message on failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "wire/agent_proto.h"
#include "wire/frame.h"
#include "imprint/util.h"
#include "sim/vb1_map.h"

static pid_t vb_pid = -1;

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	if (vb_pid > 0)
		kill(vb_pid, SIGKILL);
	exit(1);
}

#define CHECK(c, ...) do { if (!(c)) fail(__VA_ARGS__); } while (0)

struct board_ep {
	char uid[33];
	int port;
	char uart[128];
};

/* Start the vboard; fill eps[0..n); returns the stdout pipe (kept open). */
static FILE *start_vboard(const char *exe, const char *state, int n, struct board_ep *eps,
			  const char *const *extra)
{
	int p[2];
	FILE *f;
	char line[1024], nb[16];

	CHECK(pipe(p) == 0, "pipe");
	snprintf(nb, sizeof(nb), "%d", n);
	vb_pid = fork();
	CHECK(vb_pid >= 0, "fork");
	if (vb_pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		const char *args[32] = { exe, "--boards", nb, "--state-dir", state, "--latency", "0.05",
					 "--quiet" };
		int k = 8;

		for (int i = 0; extra && extra[i] && k < 31; i++)
			args[k++] = extra[i];
		args[k] = NULL;
		execv(exe, (char *const *)args);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	for (int i = 0; i <= n; i++) {
		json_error_t je;
		json_t *o;

		CHECK(fgets(line, sizeof(line), f), "vboard printed no endpoint line %d", i);
		o = json_loads(line, 0, &je);
		CHECK(o, "endpoint line is not JSON: %s", line);
		if (i == n) {
			CHECK(json_is_true(json_object_get(o, "ready")), "no ready line: %s", line);
		} else {
			const char *rsp = json_string_value(json_object_get(o, "rsp"));
			const char *uid = json_string_value(json_object_get(o, "uid"));
			const char *uart = json_string_value(json_object_get(o, "uart"));

			CHECK(json_integer_value(json_object_get(o, "board")) == i, "board index");
			CHECK(rsp && uid && uart && strlen(uid) == 32, "endpoint fields: %s", line);
			CHECK(sscanf(rsp, "rsp://127.0.0.1:%d", &eps[i].port) == 1, "rsp url %s", rsp);
			strcpy(eps[i].uid, uid);
			snprintf(eps[i].uart, sizeof(eps[i].uart), "%s", uart);
		}
		json_decref(o);
	}
	return f;
}

static int wait_vboard(FILE *f)
{
	int st;

	CHECK(waitpid(vb_pid, &st, 0) == vb_pid, "waitpid");
	vb_pid = -1;
	fclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void stop_vboard(FILE *f)
{
	int st;

	kill(vb_pid, SIGTERM);
	CHECK(waitpid(vb_pid, &st, 0) == vb_pid, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vboard did not stop cleanly (status %d)", st);
	vb_pid = -1;
	fclose(f);
}

static int open_uart(const char *path)
{
	struct termios t;
	int fd = open(path, O_RDWR | O_NOCTTY);

	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	CHECK(tcgetattr(fd, &t) == 0, "tcgetattr");
	cfmakeraw(&t);
	cfsetspeed(&t, B921600);
	CHECK(tcsetattr(fd, TCSANOW, &t) == 0, "tcsetattr");
	tcflush(fd, TCIOFLUSH);
	return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;

	while (n) {
		ssize_t w = write(fd, q, n);

		CHECK(w > 0, "write: %s", strerror(errno));
		q += w;
		n -= (size_t)w;
	}
}

/*
 * Send a request; wait for a frame (response or NAK) with the same seq. A
 * frame of another seq is a late answer to an earlier request (the board
 * cannot know at once that the station re-opened the port): a station
 * discards it, as board/link_serial.c does, and so does this client.
 */
static void transact(int fd, uint8_t type, uint16_t seq, const void *pl, size_t n,
		     struct wire_frame *resp)
{
	static struct wire_frame req;
	uint8_t out[WIRE_FRAME_MAX_LEN], in[2 * WIRE_FRAME_MAX_LEN];
	size_t len, have = 0;

	req.type = type;
	req.seq = seq;
	req.len = (uint16_t)n;
	if (n)
		memcpy(req.payload, pl, n);
	len = wire_frame_encode(&req, out, sizeof(out));
	CHECK(len, "encode");
	write_all(fd, out, len);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		size_t used = 0;
		ssize_t r;
		enum wire_frame_result res;

		res = wire_frame_decode(in, have, resp, &used);
		memmove(in, in + used, have - used);
		have -= used;
		if (res == WIRE_FRAME_OK && resp->seq == seq)
			return;
		if (res != WIRE_FRAME_NEED_MORE)
			continue;
		CHECK(poll(&p, 1, 5000) == 1, "no answer to command 0x%02x", type);
		r = read(fd, in + have, sizeof(in) - have);
		CHECK(r > 0, "read uart");
		have += (size_t)r;
	}
}

static int rsp_connect(int port)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect rsp: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Send a packet (with optional bad checksum) and return the reply payload. */
static char console[1024]; /* the console output ('O' packets) of the last rsp_cmd */

static void rsp_cmd(int fd, const char *cmd, bool bad_cs, char *reply, size_t cap)
{
	char pkt[8192], c;
	uint8_t sum = 0;
	size_t o = 0;
	int state = 0;

	console[0] = '\0';
	for (const char *p = cmd; *p; p++)
		sum = (uint8_t)(sum + (uint8_t)*p);
	snprintf(pkt, sizeof(pkt), "$%s#%02x", cmd, bad_cs ? (uint8_t)(sum + 1) : sum);
	write_all(fd, pkt, strlen(pkt));
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };

		CHECK(poll(&p, 1, 5000) == 1, "rsp: no reply to %s", cmd);
		CHECK(read(fd, &c, 1) == 1, "rsp: connection closed");
		if (state == 0) {
			if (c == '-') {
				CHECK(bad_cs, "rsp: NAK for a good packet %s", cmd);
				snprintf(reply, cap, "-");
				return;
			}
			if (c == '$')
				state = 1;
		} else if (state == 1) {
			if (c == '#') {
				state = 2;
			} else {
				CHECK(o + 1 < cap, "rsp: reply too long");
				reply[o++] = c;
			}
		} else if (state == 2) {
			state = 3;
		} else {
			reply[o] = '\0';
			write_all(fd, "+", 1);
			if (reply[0] == 'O' && strcmp(reply, "OK") != 0) { /* console output */
				size_t have = strlen(console);

				for (const char *h = reply + 1; h[0] && h[1] && have + 1 < sizeof(console); h += 2) {
					unsigned v;

					if (sscanf(h, "%2x", &v) != 1)
						break;
					console[have++] = (char)v;
					console[have] = '\0';
				}
				o = 0;
				state = 0;
				continue;
			}
			return;
		}
	}
}

static void rm_rf(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0, "rm -rf %s", dir);
}

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return true;
	return false;
}

/*
 * A key generated on the board never crosses a bus: the back door gives the
 * private scalar, the capture of both buses must not contain it, while the
 * public key (which does cross) must be found (so the search works).
 */
static void back_door_and_capture(const char *exe, const char *state, struct wire_frame *resp)
{
	char cap[600], path[700];
	const char *extra[] = { "--backdoor", "--capture", cap, NULL };
	struct board_ep eps[1];
	uint8_t req[40] = { 2, 0 }, pub[65], priv[32], *bus = NULL;
	size_t n = 0, len = 0;
	FILE *f, *pem;
	EVP_PKEY *k = NULL;
	BIGNUM *d = NULL;
	int u;

	snprintf(cap, sizeof(cap), "%s/capture", state);
	f = start_vboard(exe, state, 1, eps, extra);
	u = open_uart(eps[0].uart);
	transact(u, WIRE_CMD_GENERATE_KEY, 10, req, 2, resp);
	CHECK(resp->payload[0] == WIRE_ST_OK && resp->len == 66, "generate: status %u", resp->payload[0]);
	memcpy(pub, resp->payload + 1, 65);
	req[0] = 2;
	memset(req + 1, 0x11, 32);
	transact(u, WIRE_CMD_SIGN_CHALLENGE, 11, req, 33, resp);
	CHECK(resp->payload[0] == WIRE_ST_OK, "sign: status %u", resp->payload[0]);
	/* retransmission of the same request: cached answer, no second action */
	transact(u, WIRE_CMD_GENERATE_KEY, 12, (uint8_t[]){ 3, 0 }, 2, resp);
	CHECK(resp->payload[0] == WIRE_ST_OK, "generate slot 3");
	memcpy(req + 1, resp->payload + 1, 32);
	transact(u, WIRE_CMD_GENERATE_KEY, 12, (uint8_t[]){ 3, 0 }, 2, resp);
	CHECK(resp->payload[0] == WIRE_ST_OK && memcmp(req + 1, resp->payload + 1, 32) == 0,
	      "a retransmission was not answered from the cache");
	close(u);
	stop_vboard(f);

	snprintf(path, sizeof(path), "%s/board-0/backdoor/slot2.pem", state);
	pem = fopen(path, "r");
	CHECK(pem, "no back-door key at %s", path);
	k = PEM_read_PrivateKey(pem, NULL, NULL, NULL);
	fclose(pem);
	CHECK(k && EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1, "back-door key");
	CHECK(BN_bn2binpad(d, priv, 32) == 32, "scalar");
	for (int bus_i = 0; bus_i < 2; bus_i++) {
		snprintf(path, sizeof(path), "%s/board-0.%s.bin", cap, bus_i ? "rsp" : "uart");
		if (imp_read_file(path, &bus, &n) != IMP_OK) {
			CHECK(bus_i == 1, "no uart capture %s", path);
			continue;
		}
		len += n;
		CHECK(!contains(bus, n, priv, 32) && !contains(bus, n, priv, 8),
		      "the private key crossed a bus (%s)", path);
		if (bus_i == 0)
			CHECK(contains(bus, n, pub, 65), "the public key is not in the uart capture");
		free(bus);
		bus = NULL;
	}
	CHECK(len > 0, "empty capture");
	imp_wipe(priv, sizeof(priv));
	BN_clear_free(d);
	EVP_PKEY_free(k);
}

/* --power-cut: the process dies at the N-th NV write; the earlier ones stay. */
static void power_cut(const char *exe, struct wire_frame *resp)
{
	char state[] = "/tmp/imprint-vboard-cut.XXXXXX";
	const char *extra[] = { "--power-cut", "3", NULL };
	struct board_ep eps[1], eps2[1];
	char reply[256];
	FILE *f;
	int r, code;

	(void)resp;
	CHECK(mkdtemp(state), "mkdtemp");
	f = start_vboard(exe, state, 1, eps, extra);
	r = rsp_connect(eps[0].port);
	rsp_cmd(r, "M40022000,4:23016745", false, reply, sizeof(reply));
	rsp_cmd(r, "M40022000,4:ab89efcd", false, reply, sizeof(reply));
	rsp_cmd(r, "M40022008,4:01000000", false, reply, sizeof(reply));
	rsp_cmd(r, "M08000000,8:0102030405060708", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "two words: %s", reply);
	/* the third word is the cut: no answer, the process is gone */
	write_all(r, "$M08000008,4:090a0b0c#", 22);
	{
		uint8_t sum = 0;
		const char *body = "M08000008,4:090a0b0c";
		char cs[3];

		for (const char *p = body; *p; p++)
			sum = (uint8_t)(sum + (uint8_t)*p);
		snprintf(cs, sizeof(cs), "%02x", sum);
		write_all(r, cs, 2);
	}
	code = wait_vboard(f);
	CHECK(code == 75, "power cut exit code %d, want 75", code);
	close(r);
	f = start_vboard(exe, state, 1, eps2, NULL);
	CHECK(strcmp(eps[0].uid, eps2[0].uid) == 0, "uid changed after the power cut");
	r = rsp_connect(eps2[0].port);
	rsp_cmd(r, "m08000000,c", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "0102030405060708ffffffff") == 0, "flash after the cut: %s", reply);
	close(r);
	stop_vboard(f);
	rm_rf(state);
}


/*
 * The same agent and secure element on nRF52840 boards: IDENTIFY reports
 * FICR DEVICEID padded with zeros, keys are made, and the RSP server reads
 * the ID from FICR (legacy board) or refuses (a new hardened board, whose
 * access port is protected), while the agent still answers.
 */
static void monitor(int fd, const char *text, char *reply, size_t cap)
{
	char cmd[512];
	int n = snprintf(cmd, sizeof(cmd), "qRcmd,");

	for (const char *p = text; *p; p++)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, "%02x", (unsigned char)*p);
	rsp_cmd(fd, cmd, false, reply, cap);
}

static void nrf52840_boards(const char *exe, struct wire_frame *resp)
{
	char state[] = "/tmp/imprint-vboard-nrf.XXXXXX";
	static const char *const extra[] = { "--chip", "nordic-nrf52840", "--revision", "legacy,hardened", NULL };
	struct board_ep eps[2];
	char uidhex[33], reply[512];
	uint8_t gen[2] = { 0, 0 };
	FILE *f;
	int u, r;

	CHECK(mkdtemp(state), "mkdtemp");
	f = start_vboard(exe, state, 2, eps, (const char *const *)extra);
	for (int i = 0; i < 2; i++) {
		CHECK(strcmp(eps[i].uid + 16, "0000000000000000") == 0, "nRF uid %s not DEVICEID + zeros", eps[i].uid);
		u = open_uart(eps[i].uart);
		transact(u, WIRE_CMD_IDENTIFY, 1, NULL, 0, resp);
		CHECK(resp->payload[0] == WIRE_ST_OK, "nRF identify status %u", resp->payload[0]);
		imp_hex_encode(resp->payload + 1, 16, uidhex);
		CHECK(strcmp(uidhex, eps[i].uid) == 0, "nRF identify uid %s != %s", uidhex, eps[i].uid);
		CHECK(resp->payload[17] == WIRE_LC_OPEN, "nRF lifecycle %u", resp->payload[17]);
		CHECK(resp->payload[21] == 0, "nRF fuses %u", resp->payload[21]);
		transact(u, WIRE_CMD_GENERATE_KEY, 2, gen, sizeof(gen), resp);
		CHECK(resp->payload[0] == WIRE_ST_OK && resp->len == 1 + 65, "nRF generate_key status %u len %u",
		      resp->payload[0], resp->len);
		close(u);
	}
	r = rsp_connect(eps[0].port);
	rsp_cmd(r, "m10000060,8", false, reply, sizeof(reply));
	CHECK(strncmp(reply, eps[0].uid, 16) == 0 && strlen(reply) == 16, "FICR DEVICEID %s, uid %s", reply, eps[0].uid);
	rsp_cmd(r, "m10000100,4", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "40280500") == 0, "FICR INFO.PART %s", reply);
	close(r);
	r = rsp_connect(eps[1].port);
	rsp_cmd(r, "m10000060,8", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "E51") == 0, "a new hardened part answered %s, not E51", reply);
	/* the access-port monitor commands of the shipped OpenOCD configuration */
	monitor(r, "vboard_approtect_status", reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0 && strcmp(console, "0\n") == 0, "approtect status: %s %s", reply, console);
	monitor(r, "nrf52.dap apreg 1 0xfc", reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0 && strcmp(console, "0x02880000\n") == 0, "CTRL-AP IDR: %s %s", reply, console);
	monitor(r, "dap apreg 1 0x100", reply, sizeof(reply));
	CHECK(reply[0] == 'E', "a bad apreg answered %s", reply);
	monitor(r, "vboard_nrf52_eraseall", reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0 && strstr(console, "APPROTECTSTATUS 1"), "eraseall: %s %s", reply, console);
	rsp_cmd(r, "m10000060,8", false, reply, sizeof(reply));
	CHECK(strncmp(reply, eps[1].uid, 16) == 0, "after ERASEALL FICR DEVICEID %s, uid %s", reply, eps[1].uid);
	monitor(r, "reset", reply, sizeof(reply));
	rsp_cmd(r, "m10000060,8", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "E51") == 0, "an erased hardened part after reset answered %s, not E51", reply);
	close(r);
	stop_vboard(f);
	rm_rf(state);
}

int main(int argc, char **argv)
{
	char state[] = "/tmp/imprint-vboard-test.XXXXXX";
	struct board_ep eps[2], eps2[2];
	struct wire_frame *resp = calloc(1, sizeof(*resp));
	char reply[8192], cmd[256], uidhex[33];
	uint8_t echo[300];
	FILE *f;
	int u, r;

	CHECK(argc == 2, "usage: test_vboard_smoke IMPRINT_VBOARD");
	CHECK(mkdtemp(state), "mkdtemp");
	f = start_vboard(argv[1], state, 2, eps, NULL);

	/* UART: IDENTIFY */
	u = open_uart(eps[1].uart);
	transact(u, WIRE_CMD_IDENTIFY, 1, NULL, 0, resp);
	CHECK(resp->type == (WIRE_CMD_IDENTIFY | 0x80) && resp->seq == 1, "identify response header");
	CHECK(resp->len == 1 + 16 + 1 + 1 + 2 + 1 + 1 + 65, "identify length %u", resp->len);
	CHECK(resp->payload[0] == WIRE_ST_OK, "identify status %u", resp->payload[0]);
	imp_hex_encode(resp->payload + 1, 16, uidhex);
	CHECK(strcmp(uidhex, eps[1].uid) == 0, "identify uid %s != %s", uidhex, eps[1].uid);
	CHECK(resp->payload[17] == WIRE_LC_OPEN, "lifecycle %u", resp->payload[17]);
	CHECK(resp->payload[18] == WIRE_AGENT_PROTO_VERSION, "proto version");
	CHECK(resp->payload[23] == 0x04, "transport pub");

	/* ECHO */
	for (size_t i = 0; i < sizeof(echo); i++)
		echo[i] = (uint8_t)(i * 7);
	echo[10] = 0xA5; /* a magic byte inside the payload must not matter */
	echo[11] = 0x5A;
	transact(u, WIRE_CMD_ECHO, 2, echo, sizeof(echo), resp);
	CHECK(resp->type == (WIRE_CMD_ECHO | 0x80) && resp->seq == 2, "echo header");
	CHECK(resp->len == 1 + sizeof(echo) && resp->payload[0] == 0 &&
	      memcmp(resp->payload + 1, echo, sizeof(echo)) == 0, "echo payload");

	/* A corrupted frame gets a NAK with the same seq. */
	{
		uint8_t out[64];
		struct wire_frame q = { .type = WIRE_CMD_ECHO, .seq = 3, .len = 4 };
		size_t n;

		memcpy(q.payload, "abcd", 4);
		n = wire_frame_encode(&q, out, sizeof(out));
		out[9] ^= 0x10;
		write_all(u, "garbage", 7);
		write_all(u, out, n);
		transact(u, WIRE_CMD_ECHO, 3, "abcd", 4, resp);
		/* the first frame back is the NAK; then the real answer follows */
		CHECK(resp->type == WIRE_FRAME_TYPE_NAK && resp->seq == 3, "expected a NAK, got 0x%02x", resp->type);
	}
	close(u);
	/* Re-open: stale bytes (the unread echo answer) must not get in the way. */
	u = open_uart(eps[1].uart);
	transact(u, WIRE_CMD_ECHO, 4, "xyz", 3, resp);
	CHECK(resp->type == (WIRE_CMD_ECHO | 0x80) && resp->seq == 4 && resp->len == 4, "echo after reopen: type 0x%02x seq %u", resp->type, resp->seq);
	/* Unknown command */
	transact(u, 0x55, 5, NULL, 0, resp);
	CHECK(resp->type == 0xD5 && resp->payload[0] == WIRE_ST_UNKNOWN_CMD, "unknown command");
	close(u);

	/* RSP: read the UID, bad checksum NAK, no-ack mode, program a flash word. */
	r = rsp_connect(eps[1].port);
	rsp_cmd(r, "qSupported:multiprocess+", false, reply, sizeof(reply));
	CHECK(strstr(reply, "PacketSize=4000") && strstr(reply, "QStartNoAckMode+"), "qSupported: %s", reply);
	rsp_cmd(r, "?", true, reply, sizeof(reply));
	CHECK(strcmp(reply, "-") == 0, "bad checksum not NAKed");
	rsp_cmd(r, "?", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "S05") == 0, "?: %s", reply);
	snprintf(cmd, sizeof(cmd), "m%x,10", VB1_UID_ADDR);
	rsp_cmd(r, cmd, false, reply, sizeof(reply));
	CHECK(strcmp(reply, eps[1].uid) == 0, "rsp uid %s != %s", reply, eps[1].uid);
	rsp_cmd(r, "g", false, reply, sizeof(reply));
	CHECK(strlen(reply) == 17 * 8, "g: %s", reply);
	rsp_cmd(r, "M20000000,4:deadbeef", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "M sram: %s", reply);
	rsp_cmd(r, "m20000000,4", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "deadbeef") == 0, "m sram: %s", reply);
	/* flash: unlock, PG, program one word */
	rsp_cmd(r, "M40022000,4:23016745", false, reply, sizeof(reply));
	rsp_cmd(r, "M40022000,4:ab89efcd", false, reply, sizeof(reply));
	rsp_cmd(r, "M40022008,4:01000000", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "CR: %s", reply);
	rsp_cmd(r, "M08000100,4:11223344", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "flash program: %s", reply);
	rsp_cmd(r, "m08000100,8", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "11223344ffffffff") == 0, "flash read back: %s", reply);
	snprintf(cmd, sizeof(cmd), "qRcmd,%s", "72657365742068616c74"); /* reset halt */
	rsp_cmd(r, cmd, false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "monitor reset halt: %s", reply);
	rsp_cmd(r, "QStartNoAckMode", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "no-ack: %s", reply);
	rsp_cmd(r, "m1fff7000,4", false, reply, sizeof(reply));
	CHECK(strncmp(reply, eps[1].uid, 8) == 0, "uid after no-ack: %s", reply);
	rsp_cmd(r, "m30000000,4", false, reply, sizeof(reply));
	CHECK(reply[0] == 'E', "unmapped read: %s", reply);
	rsp_cmd(r, "vUnknownThing", false, reply, sizeof(reply));
	CHECK(reply[0] == '\0', "unknown packet: %s", reply);
	/* The server's flash driver: the memory map, then vFlash through the
	 * flash controller (the word programmed above is at 0x08000100). */
	rsp_cmd(r, "qXfer:memory-map:read::0,3ff0", false, reply, sizeof(reply));
	CHECK(reply[0] == 'l' &&
	      strstr(reply, "<memory type=\"flash\" start=\"0x08000000\" length=\"0x40000\">"
			    "<property name=\"blocksize\">0x800</property>"), "memory map: %s", reply);
	rsp_cmd(r, "vFlashErase:8000100,800", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "E02") == 0, "erase not a whole block: %s", reply);
	rsp_cmd(r, "vFlashErase:20000000,800", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "E.memtype") == 0, "erase of RAM: %s", reply);
	/* Over the programmed word, not erased: buffered, then refused (PGERR). */
	rsp_cmd(r, "vFlashWrite:8000100:wxyz", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "vFlashWrite: %s", reply);
	rsp_cmd(r, "vFlashDone", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "E01") == 0, "vFlashDone over a programmed word: %s", reply);
	rsp_cmd(r, "m08000100,8", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "11223344ffffffff") == 0, "flash after the refused write: %s", reply);
	rsp_cmd(r, "vFlashErase:8000000,800", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "vFlashErase: %s", reply);
	rsp_cmd(r, "m08000100,8", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "ffffffffffffffff") == 0, "flash after erase: %s", reply);
	/* The word again (the restart below looks for it), then unaligned
	 * pieces elsewhere: the run before them is programmed first, the
	 * pieces are joined and padded with erased bytes. */
	rsp_cmd(r, "vFlashWrite:8000100:\x11\"3D", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "vFlashWrite: %s", reply);
	rsp_cmd(r, "vFlashWrite:8000201:AB", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "vFlashWrite: %s", reply);
	rsp_cmd(r, "vFlashWrite:8000203:CD", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "vFlashWrite: %s", reply);
	rsp_cmd(r, "vFlashDone", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "vFlashDone: %s", reply);
	rsp_cmd(r, "m08000100,8", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "11223344ffffffff") == 0, "flash after vFlash: %s", reply);
	rsp_cmd(r, "m08000200,8", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "ff41424344ffffff") == 0, "flash after vFlash: %s", reply);
	/* The controller is left locked. */
	rsp_cmd(r, "m40022008,4", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "80000000") == 0, "flash CR after vFlash: %s", reply);
	close(r);
	/* a second connection after the first closed */
	r = rsp_connect(eps[1].port);
	rsp_cmd(r, "m1fff7000,10", false, reply, sizeof(reply));
	CHECK(strcmp(reply, eps[1].uid) == 0, "second connection uid: %s", reply);
	close(r);
	stop_vboard(f);

	/* Restart on the same state: same UIDs, flash word kept. */
	f = start_vboard(argv[1], state, 2, eps2, NULL);
	CHECK(strcmp(eps[0].uid, eps2[0].uid) == 0 && strcmp(eps[1].uid, eps2[1].uid) == 0,
	      "uids changed across restart");
	r = rsp_connect(eps2[1].port);
	rsp_cmd(r, "m08000100,4", false, reply, sizeof(reply));
	CHECK(strcmp(reply, "11223344") == 0, "flash after restart: %s", reply);
	close(r);
	stop_vboard(f);

	back_door_and_capture(argv[1], state, resp);
	power_cut(argv[1], resp);
	nrf52840_boards(argv[1], resp);
	rm_rf(state);
	free(resp);
	printf("ok\n");
	return 0;
}
