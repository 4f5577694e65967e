/*
 * The provisioning agent of the virtual board: frames of board/frame.h on a
 * pseudo-terminal, commands of board/agent_proto.h, acting on the board's
 * secure element and chip.
 *
 * Link rules (docs/PROTOCOL.md): garbage is dropped silently; a frame whose
 * header parsed but whose CRC failed is answered with a NAK (type 0x7F, same
 * seq, empty payload); a request equal to the last one answered (same seq,
 * type and payload) gets the cached response again without acting twice; a
 * partial frame with no new byte for RX_IDLE_MS is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <termios.h>
#include <unistd.h>

#include "wire/agent_proto.h"
#include "wire/factory.h"
#include "wire/frame.h"
#include "board_int.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "wire/payload.h"
#include "sim/vb1_map.h"

#define AGENT_VERSION 0x0100u
#define RX_IDLE_MS 50

/* ---- commands ---- */

static uint8_t lifecycle(struct sim_board *b)
{
	return (uint8_t)sim_chip_lifecycle(b->chip);
}

static bool board_locked(struct sim_board *b)
{
	return lifecycle(b) == WIRE_LC_LOCKED;
}

static int cmd_identify(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	uint8_t v[2], pub[65];

	if (!wire_rd_done(r))
		return WIRE_ST_BAD_REQUEST;
	wire_wr_u8(w, WIRE_ST_OK);
	wire_wr_bytes(w, sim_chip_uid(b->chip), WIRE_UID_LEN);
	wire_wr_u8(w, lifecycle(b));
	wire_wr_u8(w, WIRE_AGENT_PROTO_VERSION);
	wire_put_u16(v, AGENT_VERSION);
	wire_wr_bytes(w, v, 2);
	wire_wr_u8(w, (uint8_t)(sim_chip_fuses(b->chip) & (WIRE_FUSE_DEBUG_LOCK | WIRE_FUSE_BOOT_LOCK)));
	wire_wr_u8(w, sim_se_slot_mask(b->se));
	sim_se_transport_pub(b->se, pub);
	wire_wr_bytes(w, pub, sizeof(pub));
	return -1;
}

static void tamper_pub(struct sim_board *b, uint8_t pub[65])
{
	if (b->faults->tamper_pub)
		sim_se_transport_pub(b->se, pub);
}

static int cmd_generate(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	uint8_t slot, flags, pub[65];
	int st;

	slot = wire_rd_u8(r);
	flags = wire_rd_u8(r);
	if (!wire_rd_done(r))
		return WIRE_ST_BAD_REQUEST;
	if (board_locked(b))
		return WIRE_ST_STATE;
	st = sim_se_generate(b->se, slot, flags & 1, pub);
	if (st != WIRE_ST_OK)
		return st;
	tamper_pub(b, pub);
	wire_wr_u8(w, WIRE_ST_OK);
	wire_wr_bytes(w, pub, sizeof(pub));
	return -1;
}

static int cmd_csr(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	uint8_t slot, *der = NULL;
	const uint8_t *subj;
	size_t sl, dl;
	char *s;
	int st;

	slot = wire_rd_u8(r);
	subj = wire_rd_blob(r, &sl);
	if (!subj || !wire_rd_done(r) || sl == 0 || memchr(subj, 0, sl))
		return WIRE_ST_BAD_REQUEST;
	s = strndup((const char *)subj, sl);
	if (!s)
		return WIRE_ST_STORAGE;
	st = sim_se_csr(b->se, slot, s, &der, &dl);
	free(s);
	if (st != WIRE_ST_OK)
		return st;
	wire_wr_u8(w, WIRE_ST_OK);
	wire_wr_blob(w, der, dl);
	free(der);
	return -1;
}

static int cmd_import(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	uint8_t slot, kind, alg, out[65];
	const uint8_t *spub, *iv, *wrapped;
	size_t ivl, wl, ol;
	int st;

	slot = wire_rd_u8(r);
	kind = wire_rd_u8(r);
	alg = wire_rd_u8(r);
	spub = wire_rd_bytes(r, WIRE_PUB_LEN);
	if (!spub)
		return WIRE_ST_BAD_REQUEST;
	iv = wire_rd_blob(r, &ivl);
	wrapped = wire_rd_blob(r, &wl);
	if (!wire_rd_done(r) || !wrapped)
		return WIRE_ST_BAD_REQUEST;
	if (board_locked(b))
		return WIRE_ST_STATE;
	st = sim_se_import(b->se, slot, kind, alg, spub, iv, ivl, wrapped, wl, out, &ol);
	if (st != WIRE_ST_OK)
		return st;
	if (ol == 65)
		tamper_pub(b, out);
	wire_wr_u8(w, WIRE_ST_OK);
	wire_wr_bytes(w, out, ol);
	imp_wipe(out, sizeof(out));
	return -1;
}

static int cmd_store_cert(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	uint8_t slot;
	const uint8_t *der, *cur;
	size_t dl, cl;

	slot = wire_rd_u8(r);
	der = wire_rd_blob(r, &dl);
	if (!der || !wire_rd_done(r) || slot >= SIM_SE_SLOTS)
		return WIRE_ST_BAD_REQUEST;
	if (board_locked(b))
		return WIRE_ST_STATE;
	cur = sim_se_cert(b->se, slot, &cl);
	/* Storing the same certificate again is a no-op (a retry after a crash). */
	if (!(cur && cl == dl && memcmp(cur, der, dl) == 0)) {
		int st = sim_se_store_cert(b->se, slot, der, dl);

		if (st != WIRE_ST_OK)
			return st;
	}
	wire_wr_u8(w, WIRE_ST_OK);
	return -1;
}

static int cmd_store_identity(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	const uint8_t *serial, *blob, *cs, *cb;
	size_t sl, bl, csl, cbl;

	serial = wire_rd_blob(r, &sl);
	if (!serial)
		return WIRE_ST_BAD_REQUEST;
	blob = wire_rd_blob(r, &bl);
	if (!blob || !wire_rd_done(r))
		return WIRE_ST_BAD_REQUEST;
	if (board_locked(b))
		return WIRE_ST_STATE;
	cs = sim_se_serial(b->se, &csl);
	cb = sim_se_identity(b->se, &cbl);
	if (csl == sl && cbl == bl && (sl == 0 || memcmp(cs, serial, sl) == 0) &&
	    (bl == 0 || memcmp(cb, blob, bl) == 0) && (cs || cb)) {
		wire_wr_u8(w, WIRE_ST_OK); /* same identity again: a retry */
		return -1;
	}
	if (lifecycle(b) != WIRE_LC_OPEN)
		return WIRE_ST_STATE;
	{
		int st = sim_se_store_identity(b->se, serial, sl, blob, bl);

		if (st != WIRE_ST_OK)
			return st;
	}
	wire_wr_u8(w, WIRE_ST_OK);
	return -1;
}

static int cmd_sign(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	uint8_t slot, sig[80];
	const uint8_t *nonce;
	size_t sl;
	int st;

	slot = wire_rd_u8(r);
	nonce = wire_rd_bytes(r, WIRE_NONCE_LEN);
	if (!nonce || !wire_rd_done(r))
		return WIRE_ST_BAD_REQUEST;
	st = sim_se_sign(b->se, slot, nonce, b->faults->bad_challenge, sig, &sl);
	if (st != WIRE_ST_OK)
		return st;
	wire_wr_u8(w, WIRE_ST_OK);
	wire_wr_blob(w, sig, sl);
	return -1;
}

static int cmd_read_identity(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	uint8_t slot, pub[65];
	const uint8_t *p;
	size_t n;
	bool has_pub;

	slot = wire_rd_u8(r);
	if (!wire_rd_done(r) || slot >= SIM_SE_SLOTS)
		return WIRE_ST_BAD_REQUEST;
	has_pub = sim_se_slot_pub(b->se, slot, pub);
	wire_wr_u8(w, WIRE_ST_OK);
	p = sim_se_serial(b->se, &n);
	wire_wr_blob(w, p, n);
	p = sim_se_identity(b->se, &n);
	wire_wr_blob(w, p, n);
	p = sim_se_cert(b->se, slot, &n);
	wire_wr_blob(w, p, n);
	wire_wr_blob(w, pub, has_pub ? 65 : 0);
	wire_wr_u8(w, lifecycle(b));
	if (w->overflow)
		return WIRE_ST_STORAGE; /* does not fit one frame */
	return -1;
}

static int cmd_lock(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	uint8_t what;
	int st;

	what = wire_rd_u8(r);
	if (!wire_rd_done(r) || (what & ~3u))
		return WIRE_ST_BAD_REQUEST;
	if (what & 1) {
		st = sim_se_lock_slots(b->se);
		if (st != WIRE_ST_OK)
			return st;
	}
	if ((what & 2) && sim_chip_set_personalised(b->chip) != IMP_OK)
		return WIRE_ST_STORAGE;
	wire_wr_u8(w, WIRE_ST_OK);
	return -1;
}

static int cmd_echo(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	(void)b;
	if (r->n > WIRE_FRAME_MAX_PAYLOAD - 1)
		return WIRE_ST_BAD_REQUEST;
	wire_wr_u8(w, WIRE_ST_OK);
	wire_wr_bytes(w, r->p, r->n);
	return -1;
}

/* The factory-data area: STATE/board-N/factory.bin, the record as stored. */
static void factory_load(struct sim_board *b)
{
	char path[4096];
	uint8_t *d = NULL;
	size_t n = 0;

	if (b->factory_loaded)
		return;
	b->factory_loaded = true;
	if (!b->state_dir ||
	    (size_t)snprintf(path, sizeof(path), "%s/factory.bin", b->state_dir) >= sizeof(path))
		return;
	if (access(path, F_OK) != 0 || imp_read_file(path, &d, &n) != IMP_OK)
		return;
	b->factory = d;
	b->factory_len = n;
}

static int factory_store(struct sim_board *b, const uint8_t *rec, size_t n)
{
	char path[4096];
	uint8_t *d = malloc(n);

	if (!d)
		return WIRE_ST_STORAGE;
	memcpy(d, rec, n);
	if (b->state_dir) {
		if ((size_t)snprintf(path, sizeof(path), "%s/factory.bin", b->state_dir) >=
		    sizeof(path)) {
			free(d);
			return WIRE_ST_STORAGE;
		}
		sim_nv_write_point();
		if (imp_write_file_atomic(path, rec, n, 0600) != IMP_OK) {
			free(d);
			return WIRE_ST_STORAGE;
		}
	}
	free(b->factory);
	b->factory = d;
	b->factory_len = n;
	return WIRE_ST_OK;
}

static int cmd_store_factory(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	struct wire_factory f;
	int st;

	if (!wire_factory_read(r, &f) || !wire_rd_done(r))
		return WIRE_ST_BAD_REQUEST;
	if (board_locked(b))
		return WIRE_ST_STATE;
	factory_load(b);
	if (!(b->factory && b->factory_len == r->n && memcmp(b->factory, r->p, r->n) == 0)) {
		if (lifecycle(b) != WIRE_LC_OPEN)
			return WIRE_ST_STATE; /* personalised: the area is frozen */
		st = factory_store(b, r->p, r->n);
		if (st != WIRE_ST_OK)
			return st;
	}
	wire_wr_u8(w, WIRE_ST_OK);
	return -1;
}

static int cmd_read_factory(struct sim_board *b, struct wire_rd *r, struct wire_wr *w)
{
	if (!wire_rd_done(r))
		return WIRE_ST_BAD_REQUEST;
	factory_load(b);
	wire_wr_u8(w, WIRE_ST_OK);
	wire_wr_blob(w, b->factory, b->factory_len);
	return -1;
}

typedef int (*cmd_fn)(struct sim_board *b, struct wire_rd *r, struct wire_wr *w);

static const cmd_fn commands[] = {
	[WIRE_CMD_IDENTIFY] = cmd_identify,
	[WIRE_CMD_GENERATE_KEY] = cmd_generate,
	[WIRE_CMD_GET_CSR] = cmd_csr,
	[WIRE_CMD_IMPORT_WRAPPED_KEY] = cmd_import,
	[WIRE_CMD_STORE_CERT] = cmd_store_cert,
	[WIRE_CMD_STORE_IDENTITY] = cmd_store_identity,
	[WIRE_CMD_SIGN_CHALLENGE] = cmd_sign,
	[WIRE_CMD_READ_IDENTITY] = cmd_read_identity,
	[WIRE_CMD_LOCK] = cmd_lock,
	[WIRE_CMD_ECHO] = cmd_echo,
	[WIRE_CMD_STORE_FACTORY_DATA] = cmd_store_factory,
	[WIRE_CMD_READ_FACTORY_DATA] = cmd_read_factory,
};

void sim_agent_handle(struct sim_board *b, const struct wire_frame *req, struct wire_frame *resp)
{
	struct wire_rd r;
	struct wire_wr w;
	int st;

	wire_rd_init(&r, req->payload, req->len);
	wire_wr_init(&w, resp->payload, WIRE_FRAME_MAX_PAYLOAD);
	resp->type = (uint8_t)(req->type | WIRE_FRAME_RESPONSE);
	resp->seq = req->seq;
	if (b->faults->refuse[req->type]) {
		st = WIRE_ST_REFUSED;
	} else if (req->type < IMP_ARRAY_SIZE(commands) && commands[req->type]) {
		st = commands[req->type](b, &r, &w);
		if (st < 0 && w.overflow)
			st = WIRE_ST_STORAGE;
	} else {
		st = WIRE_ST_UNKNOWN_CMD;
	}
	if (st >= 0) {
		resp->payload[0] = (uint8_t)st;
		resp->len = 1;
	} else {
		resp->len = (uint16_t)w.n;
	}
	IMP_DEBUG("board %d: agent cmd 0x%02x seq %u -> status %u", b->index, req->type,
		  req->seq, resp->payload[0]);
}

/* ---- the serial line ---- */

static bool station_closed(struct sim_board *b);

static void charge_bytes(const struct sim_board *b, size_t n)
{
	double us = (double)n * SIM_LAT_UART_BITS_PER_BYTE * 1e6 / SIM_LAT_UART_BAUD;

	if (b->cfg->latency > 0 && n) {
		__atomic_add_fetch(&((struct sim_board *)b)->uart_modelled_ns,
				   (uint64_t)(us * 1000.0 * b->cfg->latency), __ATOMIC_RELAXED);
		imp_sleep_us((uint64_t)(us * b->cfg->latency));
	}
}

/* Apply the line faults in place; returns the new length. */
static size_t line_faults(struct sim_board *b, uint8_t *p, size_t n)
{
	const struct sim_faults *f = b->faults;
	size_t o = 0;

	if (f->uart_corrupt <= 0 && f->uart_drop <= 0)
		return n;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (f->uart_drop > 0 && sim_rand01(&b->uart_rng) < f->uart_drop)
			continue;
		if (f->uart_corrupt > 0 && sim_rand01(&b->uart_rng) < f->uart_corrupt)
			c ^= (uint8_t)(1u << (sim_rand64(&b->uart_rng) % 8));
		p[o++] = c;
	}
	return o;
}

static void send_bytes(struct sim_board *b, const uint8_t *data, size_t n)
{
	uint8_t buf[WIRE_FRAME_MAX_LEN];
	size_t off = 0;

	memcpy(buf, data, n);
	n = line_faults(b, buf, n);
	charge_bytes(b, n);
	if (station_closed(b)) {
		/* The request came from a session that is gone: answering now
		 * would leave stale bytes for the next one (the cache keeps it). */
		b->session_closed = true;
		return;
	}
	sim_capture(b->cap_uart_fd, buf, n);
	while (off < n) {
		ssize_t w = write(b->pty_master, buf + off, n - off);

		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = { b->pty_master, POLLOUT, 0 };

			if (poll(&pfd, 1, 1000) <= 0 || (pfd.revents & (POLLHUP | POLLERR)))
				return; /* nobody reads: the bytes are lost, as on a wire */
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else {
			return;
		}
	}
}

static void send_frame(struct sim_board *b, const struct wire_frame *f, bool cache,
		       uint8_t req_type, uint32_t req_crc)
{
	uint8_t out[WIRE_FRAME_MAX_LEN];
	size_t n = wire_frame_encode(f, out, sizeof(out));

	if (n == 0)
		return;
	if (cache) {
		memcpy(b->cache_resp, out, n);
		b->cache_len = n;
		b->cache_seq = f->seq;
		b->cache_type = req_type;
		b->cache_crc = req_crc;
		b->cache_valid = true;
	}
	send_bytes(b, out, n);
}

static void on_frame(struct sim_board *b, const struct wire_frame *req)
{
	struct wire_frame *resp;
	uint32_t crc = wire_crc32(0, req->payload, req->len);

	if (b->cache_valid && b->cache_seq == req->seq && b->cache_type == req->type &&
	    b->cache_crc == crc) {
		IMP_DEBUG("board %d: repeated seq %u, cached response", b->index, req->seq);
		send_bytes(b, b->cache_resp, b->cache_len);
		return;
	}
	resp = calloc(1, sizeof(*resp));
	if (!resp)
		return;
	sim_agent_handle(b, req, resp);
	send_frame(b, resp, true, req->type, crc);
	imp_wipe(resp, sizeof(*resp));
	free(resp);
}

static void send_nak(struct sim_board *b, uint16_t seq)
{
	struct wire_frame f;

	f.type = WIRE_FRAME_TYPE_NAK;
	f.seq = seq;
	f.len = 0;
	send_frame(b, &f, false, 0, 0);
}

/*
 * The station closed the port (inotify saw the slave closed): drop what it
 * never read from the slave's input queue, forget partial input. Returns
 * true if such a close happened since the last call.
 */
static bool station_closed(struct sim_board *b)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool closed = false;
	ssize_t n;

	if (b->pty_watch < 0)
		return false;
	for (;;) {
		n = read(b->pty_watch, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			if (e->mask & IN_CLOSE)
				closed = true;
			p += sizeof(*e) + e->len;
		}
	}
	if (closed) {
		IMP_DEBUG("board %d: uart closed by the station, flushing", b->index);
		tcflush(b->pty_slave, TCIFLUSH);
	}
	return closed;
}

void *sim_agent_main(void *arg)
{
	struct sim_board *b = arg;
	static const size_t cap = 2 * WIRE_FRAME_MAX_LEN;
	uint8_t *rx = malloc(cap);
	struct wire_frame *f = malloc(sizeof(*f));
	size_t rxn = 0;

	if (!rx || !f)
		goto out;
	for (;;) {
		struct pollfd p[3] = { { b->pty_master, POLLIN, 0 }, { b->stop_fd, POLLIN, 0 },
				       { b->pty_watch, POLLIN, 0 } };
		int pr = poll(p, 3, rxn ? RX_IDLE_MS : 1000);
		ssize_t got;

		if (pr < 0 && errno == EINTR)
			continue;
		if (p[1].revents)
			break;
		if (pr == 0) {
			if (rxn)
				IMP_DEBUG("board %d: dropping %zu stale bytes", b->index, rxn);
			rxn = 0;
			continue;
		}
		if (station_closed(b))
			rxn = 0;
		if (!(p[0].revents & POLLIN)) {
			if (p[0].revents & (POLLHUP | POLLERR))
				imp_sleep_us(2000);
			continue;
		}
		got = read(b->pty_master, rx + rxn, cap - rxn);
		if (got <= 0)
			continue;
		sim_capture(b->cap_uart_fd, rx + rxn, (size_t)got);
		charge_bytes(b, (size_t)got);
		rxn += line_faults(b, rx + rxn, (size_t)got);
		for (;;) {
			size_t used = 0;
			enum wire_frame_result res = wire_frame_decode(rx, rxn, f, &used);

			memmove(rx, rx + used, rxn - used);
			rxn -= used;
			if (res == WIRE_FRAME_OK)
				on_frame(b, f);
			else if (res == WIRE_FRAME_BAD_CRC)
				send_nak(b, f->seq);
			else if (res == WIRE_FRAME_NEED_MORE)
				break;
			if (b->session_closed) {
				/* the station went away while we worked: the rest is stale */
				b->session_closed = false;
				rxn = 0;
				break;
			}
		}
		if (rxn == cap)
			rxn = 0; /* cannot happen with a sane decoder; never spin */
	}
out:
	free(rx);
	if (f)
		imp_wipe(f, sizeof(*f));
	free(f);
	return NULL;
}
