/*
 * Probe driver "rsp": GDB Remote Serial Protocol client over TCP.
 * URI: rsp://HOST:PORT[?timeout_ms=N&retries=N&reset=CMD&noack=0|1]
 * reset=CMD is the monitor command used for reset ('+' for spaces; default
 * "reset halt": OpenOCD, pyOCD, imprint-vboard; QEMU wants system_reset).
 *
 * One command is in flight at a time. Packets are acknowledged until the
 * server accepts QStartNoAckMode; memory transfers are split by the
 * server's PacketSize; E51 is the virtual board's "debug-locked" reply.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include "board/rsp.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "probe_priv.h"

#define RSP_ERR_LOCKED 0x51u          /* imprint-vboard: debug port locked */
#define RSP_DEFAULT_TIMEOUT_MS 3000u
#define RSP_DEFAULT_RETRIES 3u
#define RSP_DEFAULT_PACKET_SIZE 400u  /* what GDB assumes when not told */
#define RSP_RX_CAP (2 * BOARD_RSP_MAX_PAYLOAD + 64)

struct rsp {
	int fd;
	char where[300];              /* "HOST:PORT" for messages */
	bool noack;
	bool allow_noack;             /* URI noack=0 keeps ack mode (tests) */
	int x_ok;                     /* 1 X works, 0 use M, -1 not tried */
	size_t packet_size;
	unsigned timeout_ms;
	unsigned retries;
	char reset_cmd[64];
	uint8_t *rx;                  /* raw bytes received, not yet parsed */
	size_t rx_len;
	uint8_t *pkt;                 /* last decoded reply */
	size_t pkt_len;
	uint8_t *tx;                  /* framing buffer */
	uint8_t *body;                /* payload being built */
};

static void rsp_lost(struct rsp *r, const char *why)
{
	IMP_ERROR("rsp probe: connection to %s lost (%s); check that the GDB server is still "
		  "running and the probe is connected", r->where, why);
}

static imp_err send_all(struct rsp *r, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(r->fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = r->fd, .events = POLLOUT };

			if (poll(&pfd, 1, (int)r->timeout_ms) <= 0) {
				IMP_ERROR("rsp probe: %s does not accept data (send timed out)",
					  r->where);
				return IMP_ERR_TIMEOUT;
			}
			continue;
		}
		if (w <= 0) {
			rsp_lost(r, strerror(errno));
			return IMP_ERR_PROBE;
		}
		p += w;
		n -= (size_t)w;
	}
	return IMP_OK;
}

/* Read more bytes into rx, waiting until deadline (ns). */
static imp_err fill(struct rsp *r, uint64_t deadline)
{
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
	uint64_t now = imp_now_ns();
	ssize_t got;
	int pr;

	if (r->rx_len >= RSP_RX_CAP) {
		/* Only possible with a peer sending an endless packet. */
		r->rx_len = 0;
	}
	if (now >= deadline)
		return IMP_ERR_TIMEOUT;
	pr = poll(&pfd, 1, (int)((deadline - now + 999999) / 1000000));
	if (pr < 0 && errno == EINTR)
		return IMP_OK;
	if (pr < 0) {
		rsp_lost(r, strerror(errno));
		return IMP_ERR_PROBE;
	}
	if (pr == 0)
		return IMP_ERR_TIMEOUT;
	got = recv(r->fd, r->rx + r->rx_len, RSP_RX_CAP - r->rx_len, 0);
	if (got < 0 && (errno == EINTR || errno == EAGAIN))
		return IMP_OK;
	if (got < 0) {
		rsp_lost(r, strerror(errno));
		return IMP_ERR_PROBE;
	}
	if (got == 0) {
		rsp_lost(r, "the server closed it");
		return IMP_ERR_PROBE;
	}
	r->rx_len += (size_t)got;
	return IMP_OK;
}

static void drop(struct rsp *r, size_t n)
{
	memmove(r->rx, r->rx + n, r->rx_len - n);
	r->rx_len -= n;
}

/* Discard whatever arrived unasked (a late reply to a timed-out command). */
static void drain(struct rsp *r)
{
	for (;;) {
		struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
		ssize_t got;

		r->rx_len = 0;
		if (poll(&pfd, 1, 0) <= 0)
			return;
		got = recv(r->fd, r->rx, RSP_RX_CAP, MSG_DONTWAIT);
		if (got <= 0)
			return;
	}
}

enum wait_what { WAIT_ACK, WAIT_PACKET };

/*
 * Wait for the next ack ('+'/'-', *ack set) or packet (r->pkt). In ack
 * mode a packet with a bad checksum is answered '-' and waited for again.
 */
static imp_err next_item(struct rsp *r, enum wait_what what, uint64_t deadline, char *ack)
{
	for (;;) {
		size_t consumed = 0;
		enum board_rsp_result res;
		char a = 0;

		res = board_rsp_parse(r->rx, r->rx_len, r->pkt, BOARD_RSP_MAX_PAYLOAD, &r->pkt_len,
				      &consumed, &a);
		drop(r, consumed);
		switch (res) {
		case BOARD_RSP_ACK:
			if (what == WAIT_ACK) {
				*ack = a;
				return IMP_OK;
			}
			continue; /* a stray ack while waiting for a reply */
		case BOARD_RSP_NOTIFY:
			continue;
		case BOARD_RSP_PACKET:
			if (!r->noack) {
				imp_err rc = send_all(r, (const uint8_t *)"+", 1);

				if (rc != IMP_OK)
					return rc;
			}
			if (what == WAIT_ACK) {
				/* The server answered without acking first: take it as '+'
				 * and keep the packet for the reader. */
				*ack = '*';
				return IMP_OK;
			}
			return IMP_OK;
		case BOARD_RSP_BAD_CHECKSUM:
		case BOARD_RSP_BAD:
			IMP_DEBUG("rsp probe: %s packet from %s",
				  res == BOARD_RSP_BAD ? "malformed" : "bad-checksum", r->where);
			if (!r->noack) {
				imp_err rc = send_all(r, (const uint8_t *)"-", 1);

				if (rc != IMP_OK)
					return rc;
				continue;
			}
			return IMP_ERR_PROTOCOL;
		case BOARD_RSP_NEED_MORE: {
			imp_err rc = fill(r, deadline);

			if (rc != IMP_OK)
				return rc;
			continue;
		}
		}
	}
}

/*
 * Send payload body[0..n) as one packet and wait for one reply packet
 * (r->pkt). Retransmits on '-' and retries the whole exchange on a timeout
 * or an unreadable reply, r->retries times. Commands sent through here
 * must be idempotent (memory reads and writes are).
 */
static imp_err exchange(struct rsp *r, const uint8_t *body, size_t n, const char *what)
{
	size_t framed = board_rsp_frame(body, n, r->tx, BOARD_RSP_MAX_PAYLOAD + 8);
	imp_err rc = IMP_ERR_INTERNAL;

	if (framed == 0)
		return IMP_ERR_INTERNAL;
	for (unsigned attempt = 0; attempt <= r->retries; attempt++) {
		uint64_t deadline = imp_now_ns() + (uint64_t)r->timeout_ms * 1000000u;
		char ack = 0;
		bool have_pkt = false;

		if (attempt > 0)
			IMP_DEBUG("rsp probe: %s: retry %u", what, attempt);
		drain(r);
		rc = send_all(r, r->tx, framed);
		if (rc != IMP_OK)
			return rc;
		if (!r->noack) {
			unsigned resend = 0;

			for (;;) {
				rc = next_item(r, WAIT_ACK, deadline, &ack);
				if (rc != IMP_OK || ack != '-')
					break;
				if (++resend > r->retries) {
					rc = IMP_ERR_PROTOCOL;
					break;
				}
				rc = send_all(r, r->tx, framed);
				if (rc != IMP_OK)
					return rc;
			}
			if (rc == IMP_ERR_PROBE)
				return rc;
			if (rc != IMP_OK)
				continue;
			have_pkt = ack == '*';
		}
		if (!have_pkt)
			rc = next_item(r, WAIT_PACKET, deadline, NULL);
		if (rc == IMP_OK)
			return IMP_OK;
		if (rc == IMP_ERR_PROBE)
			return rc;
	}
	if (rc == IMP_ERR_TIMEOUT)
		IMP_ERROR("rsp probe: %s: no answer from %s after %u attempts of %u ms; check that "
			  "the GDB server is responsive and attached to the target", what, r->where,
			  r->retries + 1, r->timeout_ms);
	else
		IMP_ERROR("rsp probe: %s: only garbled answers from %s after %u attempts", what,
			  r->where, r->retries + 1);
	return rc;
}

static imp_err exchange_str(struct rsp *r, const char *cmd, const char *what)
{
	return exchange(r, (const uint8_t *)cmd, strlen(cmd), what);
}

static bool reply_is(const struct rsp *r, const char *s)
{
	return r->pkt_len == strlen(s) && memcmp(r->pkt, s, r->pkt_len) == 0;
}

/* Map an E-reply to the project's errors; IMP_OK when not an E-reply. */
static imp_err map_error(struct rsp *r, const char *what, uint32_t addr, size_t n)
{
	unsigned code;

	if (!board_rsp_is_error(r->pkt, r->pkt_len, &code))
		return IMP_OK;
	if (code == RSP_ERR_LOCKED)
		return IMP_ERR_TARGET_LOCKED; /* the wrapper says so */
	IMP_ERROR("rsp probe: %s of 0x%08x..0x%08x (%zu bytes) failed: %s answered E%02X "
		  "(unmapped or protected memory?)", what, addr, (uint32_t)(addr + n - 1), n,
		  r->where, code);
	return IMP_ERR_PROBE;
}

static void parse_supported(struct rsp *r, bool *noack_offered)
{
	size_t i = 0;

	*noack_offered = false;
	while (i < r->pkt_len) {
		size_t j = i;
		char feat[64];
		size_t len;

		while (j < r->pkt_len && r->pkt[j] != ';')
			j++;
		len = j - i;
		if (len < sizeof(feat)) {
			memcpy(feat, r->pkt + i, len);
			feat[len] = '\0';
			if (strncmp(feat, "PacketSize=", 11) == 0) {
				char *end = NULL;
				unsigned long v = strtoul(feat + 11, &end, 16);

				if (*end == '\0' && v >= 64)
					r->packet_size = v > BOARD_RSP_MAX_PAYLOAD ?
						BOARD_RSP_MAX_PAYLOAD : (size_t)v;
			} else if (strcmp(feat, "QStartNoAckMode+") == 0) {
				*noack_offered = true;
			}
		}
		i = j + 1;
	}
}

static imp_err parse_uri(struct rsp *r, const char *uri, char *host, size_t hcap, char *port,
			 size_t pcap)
{
	const char *p = uri + 6, *colon, *q;
	size_t hl, pl;

	if (strncmp(uri, "rsp://", 6) != 0)
		goto bad;
	q = strchr(p, '?');
	if (!q)
		q = p + strlen(p);
	colon = NULL;
	for (const char *c = p; c < q; c++)
		if (*c == ':')
			colon = c;
	if (!colon || colon == p || colon + 1 >= q)
		goto bad;
	hl = (size_t)(colon - p);
	pl = (size_t)(q - colon - 1);
	if (hl >= hcap || pl >= pcap)
		goto bad;
	memcpy(host, p, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memcpy(port, colon + 1, pl);
	port[pl] = '\0';
	for (size_t i = 0; i < pl; i++)
		if (port[i] < '0' || port[i] > '9')
			goto bad;
	if (*q == '?')
		q++;
	while (*q) {
		size_t len = strcspn(q, "&");
		char kv[128], *eq, *end = NULL;
		unsigned long v;

		if (len >= sizeof(kv))
			goto bad;
		memcpy(kv, q, len);
		kv[len] = '\0';
		q += len;
		if (*q == '&')
			q++;
		eq = strchr(kv, '=');
		if (!eq)
			goto bad;
		*eq++ = '\0';
		if (strcmp(kv, "reset") == 0) {
			if (strlen(eq) >= sizeof(r->reset_cmd))
				goto bad;
			/* '+' stands for a space in a URI query. */
			for (char *c = eq; *c; c++)
				if (*c == '+')
					*c = ' ';
			strcpy(r->reset_cmd, eq);
			continue;
		}
		v = strtoul(eq, &end, 10);
		if (!*eq || *end)
			goto bad;
		if (strcmp(kv, "timeout_ms") == 0 && v > 0 && v <= 600000)
			r->timeout_ms = (unsigned)v;
		else if (strcmp(kv, "retries") == 0 && v <= 100)
			r->retries = (unsigned)v;
		else if (strcmp(kv, "noack") == 0 && v <= 1)
			r->allow_noack = v == 1;
		else
			goto bad;
	}
	return IMP_OK;
bad:
	IMP_ERROR("probe '%s': expected rsp://HOST:PORT[?timeout_ms=N&retries=N&reset=CMD&noack=0|1]",
		  uri);
	return IMP_ERR_USAGE;
}

static imp_err tcp_connect(struct rsp *r, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct addrinfo *res = NULL, *ai;
	int err = 0, gai, one = 1;

	gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		IMP_ERROR("rsp probe: cannot resolve '%s': %s; check the host in the probe URI", host,
			  gai_strerror(gai));
		return IMP_ERR_PROBE;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		struct pollfd pfd;
		socklen_t sl = sizeof(err);

		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			continue;
		}
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, (int)r->timeout_ms) <= 0) {
			err = ETIMEDOUT;
			close(fd);
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0 || err != 0) {
			if (err == 0)
				err = errno;
			close(fd);
			continue;
		}
		/* Without TCP_NODELAY every round trip costs ~40 ms (Nagle). */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		r->fd = fd;
		freeaddrinfo(res);
		return IMP_OK;
	}
	freeaddrinfo(res);
	IMP_ERROR("rsp probe: cannot connect to %s: %s; check that the GDB server (OpenOCD, "
		  "pyOCD, JLinkGDBServer, QEMU -gdb, imprint-vboard) is running and listening "
		  "on that port", r->where, strerror(err));
	return IMP_ERR_PROBE;
}

static void rsp_free(struct rsp *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->rx);
	free(r->pkt);
	free(r->tx);
	free(r->body);
	free(r);
}

static imp_err rsp_open(const char *uri, void **priv)
{
	char host[256], port[16];
	struct rsp *r;
	bool noack_offered;
	imp_err rc;

	r = calloc(1, sizeof(*r));
	if (!r)
		return IMP_ERR_NOMEM;
	r->fd = -1;
	r->timeout_ms = RSP_DEFAULT_TIMEOUT_MS;
	r->retries = RSP_DEFAULT_RETRIES;
	r->packet_size = RSP_DEFAULT_PACKET_SIZE;
	r->x_ok = -1;
	r->allow_noack = true;
	snprintf(r->reset_cmd, sizeof(r->reset_cmd), "reset halt");
	rc = parse_uri(r, uri, host, sizeof(host), port, sizeof(port));
	if (rc != IMP_OK)
		goto fail;
	snprintf(r->where, sizeof(r->where), "%s:%s", host, port);
	r->rx = malloc(RSP_RX_CAP);
	r->pkt = malloc(BOARD_RSP_MAX_PAYLOAD);
	r->tx = malloc(BOARD_RSP_MAX_PAYLOAD + 8);
	r->body = malloc(BOARD_RSP_MAX_PAYLOAD);
	rc = IMP_ERR_NOMEM;
	if (!r->rx || !r->pkt || !r->tx || !r->body)
		goto fail;
	rc = tcp_connect(r, host, port);
	if (rc != IMP_OK)
		goto fail;
	rc = send_all(r, (const uint8_t *)"+", 1);
	if (rc != IMP_OK)
		goto fail;
	rc = exchange_str(r, "qSupported:swbreak+;hwbreak+;vContSupported+", "qSupported");
	if (rc != IMP_OK)
		goto fail;
	parse_supported(r, &noack_offered);
	if (noack_offered && r->allow_noack) {
		rc = exchange_str(r, "QStartNoAckMode", "QStartNoAckMode");
		if (rc != IMP_OK)
			goto fail;
		if (reply_is(r, "OK"))
			r->noack = true;
	}
	/* Halt reason: GDB asks it first, and some servers expect it. */
	rc = exchange_str(r, "?", "halt reason");
	if (rc != IMP_OK)
		goto fail;
	IMP_DEBUG("rsp probe: connected to %s, PacketSize %zu, %s", r->where, r->packet_size,
		  r->noack ? "no-ack mode" : "ack mode");
	*priv = r;
	return IMP_OK;
fail:
	rsp_free(r);
	return rc;
}

static void rsp_close(void *priv)
{
	struct rsp *r = priv;

	/* Leave the target halted as found; detach politely, best effort. */
	if (r->fd >= 0) {
		uint8_t f[16];
		size_t n = board_rsp_frame((const uint8_t *)"D", 1, f, sizeof(f));

		(void)send(r->fd, f, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	rsp_free(r);
}

static imp_err rsp_read(void *priv, uint32_t addr, uint8_t *buf, size_t n)
{
	struct rsp *r = priv;
	size_t chunk_max = (r->packet_size - 16) / 2;

	while (n > 0) {
		size_t chunk = n < chunk_max ? n : chunk_max;
		char cmd[40];
		size_t got;
		imp_err rc;

		snprintf(cmd, sizeof(cmd), "m%x,%zx", addr, chunk);
		rc = exchange_str(r, cmd, "memory read");
		if (rc != IMP_OK)
			return rc;
		rc = map_error(r, "read", addr, chunk);
		if (rc != IMP_OK)
			return rc;
		/* A server may answer fewer bytes than asked, never more. */
		got = r->pkt_len / 2;
		if (r->pkt_len == 0 || r->pkt_len % 2 || got > chunk ||
		    board_rsp_unhex(r->pkt, r->pkt_len, buf, got) != 0) {
			if (r->pkt_len == 0)
				IMP_ERROR("rsp probe: %s does not support memory reads (empty reply "
					  "to 'm' at 0x%08x)", r->where, addr);
			else
				IMP_ERROR("rsp probe: malformed reply to a read of %zu bytes at "
					  "0x%08x from %s", chunk, addr, r->where);
			return r->pkt_len == 0 ? IMP_ERR_PROBE : IMP_ERR_PROTOCOL;
		}
		buf += got;
		addr += (uint32_t)got;
		n -= got;
	}
	return IMP_OK;
}

static imp_err write_chunk_m(struct rsp *r, uint32_t addr, const uint8_t *buf, size_t n,
			     size_t *done)
{
	static const char hex[] = "0123456789abcdef";
	int hl = snprintf((char *)r->body, 40, "M%x,", addr);
	size_t room = r->packet_size - 16 - (size_t)hl - 10;
	size_t chunk = n < room / 2 ? n : room / 2;
	size_t len;
	imp_err rc;

	len = (size_t)hl + (size_t)snprintf((char *)r->body + hl, 12, "%zx:", chunk);
	for (size_t i = 0; i < chunk; i++) {
		r->body[len++] = (uint8_t)hex[buf[i] >> 4];
		r->body[len++] = (uint8_t)hex[buf[i] & 15];
	}
	rc = exchange(r, r->body, len, "memory write");
	if (rc != IMP_OK)
		return rc;
	*done = chunk;
	return IMP_OK;
}

static imp_err write_chunk_x(struct rsp *r, uint32_t addr, const uint8_t *buf, size_t n,
			     size_t *done)
{
	size_t room = r->packet_size - 16 - 24;
	size_t used = 0, esc, hl;
	uint8_t *tmp = r->pkt; /* scratch: the reply overwrites it later */

	/* Escape first into scratch to learn how many input bytes fit. */
	esc = board_rsp_escape(buf, n, tmp, room, &used);
	hl = (size_t)snprintf((char *)r->body, 40, "X%x,%zx:", addr, used);
	memcpy(r->body + hl, tmp, esc);
	*done = used;
	return exchange(r, r->body, hl + esc, "memory write");
}

static imp_err rsp_write(void *priv, uint32_t addr, const uint8_t *buf, size_t n)
{
	struct rsp *r = priv;

	while (n > 0) {
		size_t done = 0;
		imp_err rc;

		if (r->x_ok != 0) {
			rc = write_chunk_x(r, addr, buf, n, &done);
			if (rc != IMP_OK)
				return rc;
			if (r->pkt_len == 0) {
				IMP_DEBUG("rsp probe: %s has no 'X' packet; using 'M'", r->where);
				r->x_ok = 0;
				continue;
			}
			r->x_ok = 1;
		} else {
			rc = write_chunk_m(r, addr, buf, n, &done);
			if (rc != IMP_OK)
				return rc;
		}
		rc = map_error(r, "write", addr, done);
		if (rc != IMP_OK)
			return rc;
		if (!reply_is(r, "OK")) {
			IMP_ERROR("rsp probe: unexpected reply to a write of %zu bytes at 0x%08x "
				  "from %s", done, addr, r->where);
			return IMP_ERR_PROTOCOL;
		}
		buf += done;
		addr += (uint32_t)done;
		n -= done;
	}
	return IMP_OK;
}

static imp_err rsp_monitor(void *priv, const char *cmd, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	struct rsp *r = priv;
	size_t len = 6, olen = 0, n = strlen(cmd);
	uint64_t deadline;
	imp_err rc;

	if (n * 2 + 6 > r->packet_size - 16) {
		IMP_ERROR("rsp probe: monitor command too long");
		return IMP_ERR_USAGE;
	}
	memcpy(r->body, "qRcmd,", 6);
	for (size_t i = 0; i < n; i++) {
		r->body[len++] = (uint8_t)hex[(uint8_t)cmd[i] >> 4];
		r->body[len++] = (uint8_t)hex[(uint8_t)cmd[i] & 15];
	}
	rc = exchange(r, r->body, len, "monitor command");
	deadline = imp_now_ns() + (uint64_t)r->timeout_ms * 1000000u;
	/* Output arrives as "O<hex>" packets before the final "OK". */
	while (rc == IMP_OK && r->pkt_len > 1 && r->pkt[0] == 'O' && !reply_is(r, "OK")) {
		for (size_t i = 1; i + 1 < r->pkt_len; i += 2) {
			uint8_t b;

			if (board_rsp_unhex(r->pkt + i, 2, &b, 1) != 0)
				break;
			if (out && olen + 1 < cap)
				out[olen++] = (char)b;
		}
		rc = next_item(r, WAIT_PACKET, deadline, NULL);
	}
	if (out && cap)
		out[olen < cap ? olen : cap - 1] = '\0';
	if (rc != IMP_OK)
		return rc;
	if (r->pkt_len == 0) {
		IMP_ERROR("rsp probe: %s does not support monitor commands ('%s')", r->where, cmd);
		return IMP_ERR_UNSUPPORTED;
	}
	{
		unsigned code;

		if (board_rsp_is_error(r->pkt, r->pkt_len, &code)) {
			if (code == RSP_ERR_LOCKED)
				return IMP_ERR_TARGET_LOCKED;
			IMP_ERROR("rsp probe: monitor '%s' failed: %s answered E%02X", cmd,
				  r->where, code);
			return IMP_ERR_PROBE;
		}
	}
	if (!reply_is(r, "OK")) {
		/* Some servers answer the output hex-encoded, without 'O'. */
		size_t k = r->pkt_len / 2;

		for (size_t i = 0; i < k; i++) {
			uint8_t b;

			if (board_rsp_unhex(r->pkt + 2 * i, 2, &b, 1) != 0)
				break;
			if (out && olen + 1 < cap)
				out[olen++] = (char)b;
		}
		if (out && cap)
			out[olen < cap ? olen : cap - 1] = '\0';
	}
	return IMP_OK;
}

static imp_err rsp_reset(void *priv)
{
	struct rsp *r = priv;
	char out[256];

	return rsp_monitor(r, r->reset_cmd, out, sizeof(out));
}

static imp_err rsp_halt(void *priv)
{
	struct rsp *r = priv;
	uint64_t deadline;
	imp_err rc;

	/* ^C interrupts a running core; a halted one may not answer at all. */
	drain(r);
	rc = send_all(r, (const uint8_t *)"\x03", 1);
	if (rc != IMP_OK)
		return rc;
	deadline = imp_now_ns() + 200000000u;
	rc = next_item(r, WAIT_PACKET, deadline, NULL);
	if (rc == IMP_ERR_TIMEOUT)
		rc = IMP_OK;
	return rc;
}

const struct board_probe_driver board_probe_rsp = {
	.name = "rsp",
	.open = rsp_open,
	.close = rsp_close,
	.read_mem = rsp_read,
	.write_mem = rsp_write,
	.reset = rsp_reset,
	.halt = rsp_halt,
	.monitor = rsp_monitor,
};
