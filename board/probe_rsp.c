/*
 * Probe drivers "rsp" (GDB Remote Serial Protocol over TCP) and
 * "rsp+serial" (the same over a serial port: a Black Magic Probe's GDB
 * port, rsp+serial:///dev/ttyACM0). URI keys: board/probe.h; per-server
 * behaviour and hazards: docs/PROBES.md. A BMP is scanned ("monitor
 * swd_scan") and attached ("vAttach;1") before any target access.
 *
 * One command is in flight at a time. Packets are acknowledged until the
 * server accepts QStartNoAckMode; memory transfers are split by the
 * server's PacketSize. Idempotent packets (memory reads and writes, qCRC,
 * queries) go through exchange(), which retries; monitor commands and
 * flash packets go through exchange_once(), which never resends a packet
 * the server may have acted on, and a timeout there leaves the connection
 * marked out of step (every later call fails until it is reopened).
 *
 * The server's personality (server= in the URI, else asked) decides what
 * a reply means: E51 is "debug-locked" only from imprint-vboard; OpenOCD
 * must report data aborts (else a failed read is zeros and OK) and reaches
 * access ports through "monitor DAP apreg"; pyOCD is refused unless its
 * auto-unlock and memory cache are declared off; QEMU and others resume
 * the core on 'D', so they are left by closing the connection.
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
#include <termios.h>
#include <unistd.h>
#include <fcntl.h>

#include "board/rsp.h"
#include "imprint/log.h"
#include "io_int.h"
#include "imprint/util.h"
#include "probe_priv.h"

#define RSP_ERR_LOCKED 0x51u          /* imprint-vboard: debug port locked */
#define RSP_DEFAULT_TIMEOUT_MS 3000u
#define RSP_DEFAULT_MONITOR_TIMEOUT_MS 60000u
#define RSP_DEFAULT_FLASH_TIMEOUT_MS 120000u
#define RSP_DEFAULT_RETRIES 3u
#define RSP_DEFAULT_PACKET_SIZE 400u  /* what GDB assumes when not told */
#define RSP_RX_CAP (2 * BOARD_RSP_MAX_PAYLOAD + 64)
_Static_assert(RSP_RX_CAP % 16 == 0 && BOARD_RSP_MAX_PAYLOAD % 16 == 0, "rsp_new's block");
#define RSP_MAX_REGIONS 32u
#define RSP_MEMMAP_MAX (64u * 1024u)
_Static_assert(RSP_MEMMAP_MAX <= BOARD_RSP_MAX_PAYLOAD, "the map is gathered in r->body");

enum rsp_server {
	SRV_GENERIC = 0,
	SRV_BMP,
	SRV_JLINK,
	SRV_OPENOCD,
	SRV_PYOCD,
	SRV_QEMU,
	SRV_VBOARD,
};

static const char *const server_names[] = {
	[SRV_GENERIC] = "generic", [SRV_BMP] = "bmp", [SRV_JLINK] = "jlink",
	[SRV_OPENOCD] = "openocd", [SRV_PYOCD] = "pyocd", [SRV_QEMU] = "qemu",
	[SRV_VBOARD] = "vboard",
};

struct rsp {
	int fd;
	bool tty;                     /* rsp+serial: a serial port, not a socket */
	char where[300];              /* "HOST:PORT" for messages */
	bool noack;
	bool allow_noack;             /* URI noack=0 keeps ack mode (tests) */
	/* The handshake's acks ride on the next packet ("+$..." in one send)
	 * instead of a send each: defer_ack while the handshake's packets
	 * follow one another at once, ack_owed when a '+' waits for it. */
	bool defer_ack, ack_owed;
	int x_ok;                     /* 1 X works, 0 use M, -1 not tried */
	int crc_ok;                   /* 1 qCRC works, 0 not offered, -1 not tried */
	size_t packet_size;
	unsigned timeout_ms;
	unsigned monitor_timeout_ms;
	unsigned flash_timeout_ms;
	unsigned retries;
	bool out_of_step;             /* a one-shot command timed out */
	bool settled;                 /* the last exchange took its one reply and
	                                 left nothing behind: no drain before the next */
	enum rsp_server server;
	bool server_fixed;            /* server= in the URI */
	bool data_abort;              /* OpenOCD reports data aborts (declared) */
	bool cache_off, auto_unlock_off; /* pyOCD settings (declared) */
	bool memmap_offered;
	struct board_rsp_region map[RSP_MAX_REGIONS];
	size_t n_map;
	char dap[64];                 /* OpenOCD DAP name ("nrf52.dap") */
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
		/* The socket blocks for board_io_recv; sending never does. */
		ssize_t w = r->tty ? write(r->fd, p, n) :
			send(r->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

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
	size_t got = 0;

	if (r->rx_len >= RSP_RX_CAP) {
		/* Only possible with a peer sending an endless packet. */
		r->rx_len = 0;
	}
	switch ((r->tty ? board_io_read : board_io_recv)(r->fd, deadline, r->rx + r->rx_len,
							  RSP_RX_CAP - r->rx_len, &got)) {
	case BOARD_IO_DATA:
		r->rx_len += got;
		return IMP_OK;
	case BOARD_IO_AGAIN:
		return IMP_OK;
	case BOARD_IO_TIMEOUT:
		return IMP_ERR_TIMEOUT;
	case BOARD_IO_EOF:
	case BOARD_IO_HANGUP:
		rsp_lost(r, "the server closed it");
		return IMP_ERR_PROBE;
	case BOARD_IO_ERROR:
	default:
		rsp_lost(r, strerror(errno));
		return IMP_ERR_PROBE;
	}
}

static void drop(struct rsp *r, size_t n)
{
	memmove(r->rx, r->rx + n, r->rx_len - n);
	r->rx_len -= n;
}

/* Discard whatever arrived unasked (a late reply to a timed-out command):
 * read without waiting until nothing is left (the tty is non-blocking). */
static void drain(struct rsp *r)
{
	for (;;) {
		ssize_t got = r->tty ? read(r->fd, r->rx, RSP_RX_CAP) :
			recv(r->fd, r->rx, RSP_RX_CAP, MSG_DONTWAIT);

		r->rx_len = 0;
		if (got < 0 && errno == EINTR)
			continue;
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
			if (!r->noack && r->defer_ack) {
				r->ack_owed = true;
			} else if (!r->noack) {
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

/* Packets are framed one byte into tx, so that an owed '+' can go in front
 * of one in the same send (r->ack_owed). */
#define TX_FRAME(r) ((r)->tx + 1)

/* Send the framed packet at TX_FRAME and, unless acks are off, wait for its
 * '+', resending on '-' up to r->retries times. *ack is '+' or, when a
 * reply packet came first, '*'. *sent is false when sending itself failed
 * (the caller gives up at once); otherwise the error is the ack's. */
static imp_err send_acked(struct rsp *r, size_t framed, uint64_t deadline, char *ack,
			  bool *sent)
{
	unsigned resend = 0;
	imp_err rc;

	*ack = 0;
	*sent = false;
	/* After an exchange that ended with its reply and nothing more, a
	 * server in all-stop mode has nothing left to say: the drain (one
	 * poll per packet, on the hot path of every memory access) is for
	 * what follows a timeout, a retry or a one-shot command. */
	if (!r->settled || r->rx_len)
		drain(r);
	r->settled = false;
	if (r->ack_owed) {
		/* the '+' owed for the last reply, in front of this packet */
		r->tx[0] = '+';
		r->ack_owed = false;
		rc = send_all(r, r->tx, framed + 1);
	} else {
		rc = send_all(r, TX_FRAME(r), framed);
	}
	if (rc != IMP_OK)
		return rc;
	*sent = true;
	if (r->noack)
		return IMP_OK;
	for (;;) {
		rc = next_item(r, WAIT_ACK, deadline, ack);
		if (rc != IMP_OK || *ack != '-')
			return rc;
		if (++resend > r->retries)
			return IMP_ERR_PROTOCOL;
		rc = send_all(r, TX_FRAME(r), framed);
		if (rc != IMP_OK) {
			*sent = false;
			return rc;
		}
	}
}

/* An exchange refused on a connection marked out of step. */
static bool refuse_out_of_step(const struct rsp *r, const char *what)
{
	if (!r->out_of_step)
		return false;
	IMP_ERROR("rsp probe: %s: the connection to %s is out of step after an unanswered "
		  "command; reconnect (the station does on the next board)", what, r->where);
	return true;
}

/*
 * Send payload body[0..n) as one packet and wait for one reply packet
 * (r->pkt). Retransmits on '-' and retries the whole exchange on a timeout
 * or an unreadable reply, r->retries times. Commands sent through here
 * must be idempotent (memory reads and writes are).
 */
static imp_err exchange(struct rsp *r, const uint8_t *body, size_t n, const char *what)
{
	size_t framed = board_rsp_frame(body, n, TX_FRAME(r), BOARD_RSP_MAX_PAYLOAD + 8);
	imp_err rc = IMP_ERR_INTERNAL;

	if (framed == 0)
		return IMP_ERR_INTERNAL;
	if (refuse_out_of_step(r, what))
		return IMP_ERR_PROBE;
	for (unsigned attempt = 0; attempt <= r->retries; attempt++) {
		uint64_t deadline = imp_now_ns() + (uint64_t)r->timeout_ms * 1000000u;
		char ack = 0;
		bool have_pkt = false, sent;

		if (attempt > 0)
			IMP_DEBUG("rsp probe: %s: retry %u", what, attempt);
		rc = send_acked(r, framed, deadline, &ack, &sent);
		if (!sent || rc == IMP_ERR_PROBE)
			return rc;
		if (rc != IMP_OK)
			continue;
		have_pkt = ack == '*';
		if (!have_pkt)
			rc = next_item(r, WAIT_PACKET, deadline, NULL);
		if (rc == IMP_OK) {
			r->settled = attempt == 0 && r->rx_len == 0;
			return IMP_OK;
		}
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

/*
 * Send body[0..n) once and wait up to timeout_ms for its reply: for packets
 * that must never run twice (monitor commands, vFlash). A '-' is answered by
 * resending (the server refused the packet, so did not act on it); a
 * timeout or garbled reply marks the connection out of step.
 */
static imp_err exchange_once(struct rsp *r, const uint8_t *body, size_t n, const char *what,
			     unsigned timeout_ms)
{
	size_t framed = board_rsp_frame(body, n, TX_FRAME(r), BOARD_RSP_MAX_PAYLOAD + 8);
	uint64_t deadline = imp_now_ns() + (uint64_t)timeout_ms * 1000000u;
	bool have_pkt = false;
	imp_err rc;

	if (framed == 0)
		return IMP_ERR_INTERNAL;
	if (refuse_out_of_step(r, what))
		return IMP_ERR_PROBE;
	{
		char ack = 0;
		bool sent;

		rc = send_acked(r, framed, deadline, &ack, &sent);
		if (!sent)
			return rc;
		have_pkt = rc == IMP_OK && ack == '*';
	}
	if (rc == IMP_OK && !have_pkt)
		rc = next_item(r, WAIT_PACKET, deadline, NULL);
	if (rc == IMP_ERR_TIMEOUT || rc == IMP_ERR_PROTOCOL) {
		r->out_of_step = true;
		IMP_ERROR("rsp probe: %s: no %sanswer from %s within %u ms; not sent again (it may "
			  "have run); check the GDB server's log", what,
			  rc == IMP_ERR_PROTOCOL ? "readable " : "", r->where, timeout_ms);
	}
	return rc;
}

/* Wait for the next packet of a one-shot command (monitor output). */
static imp_err next_once(struct rsp *r, uint64_t deadline, const char *what, unsigned timeout_ms)
{
	imp_err rc = next_item(r, WAIT_PACKET, deadline, NULL);

	if (rc == IMP_ERR_TIMEOUT || rc == IMP_ERR_PROTOCOL) {
		r->out_of_step = true;
		IMP_ERROR("rsp probe: %s: no final answer from %s within %u ms; not sent again (it "
			  "may still be running); check the GDB server's log", what, r->where,
			  timeout_ms);
	}
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
	/* Only imprint-vboard states a lock in its reply; from any other
	 * server an E-reply is an access error, whatever its number (OpenOCD
	 * answers E0E for every failed access, locked or not). */
	if (code == RSP_ERR_LOCKED && r->server == SRV_VBOARD)
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
			} else if (strcmp(feat, "qXfer:memory-map:read+") == 0) {
				r->memmap_offered = true;
			} else if (strcmp(feat, "imprint-vboard+") == 0 && !r->server_fixed) {
				r->server = SRV_VBOARD;
			}
		}
		i = j + 1;
	}
}

static imp_err parse_query(struct rsp *r, const char *uri, const char *q);

/* rsp+serial://PATH[?KEYS]: PATH absolute, of the characters a device path has. */
static imp_err parse_serial_uri(struct rsp *r, const char *uri, char *path, size_t cap)
{
	const char *p = uri + 13, *q;
	size_t n;

	if (strncmp(uri, "rsp+serial://", 13) != 0 || p[0] != '/')
		goto bad;
	q = strchr(p, '?');
	n = q ? (size_t)(q - p) : strlen(p);
	if (n < 2 || n >= cap)
		goto bad;
	memcpy(path, p, n);
	path[n] = '\0';
	if (strspn(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") != n)
		goto bad;
	return parse_query(r, uri, q ? q + 1 : p + n);
bad:
	IMP_ERROR("probe '%s': expected rsp+serial:///dev/ttyACM0[?server=bmp&timeout_ms=N...] "
		  "(docs/PROBES.md)", uri);
	return IMP_ERR_USAGE;
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
	/* 1..65535, as the configuration takes it: a larger number would
	 * reach the port it wraps to, another fixture's server. */
	if (pl > 5 || strtoul(port, NULL, 10) < 1 || strtoul(port, NULL, 10) > 65535) {
		IMP_ERROR("probe '%s': port %s is not 1 to 65535", uri, port);
		return IMP_ERR_USAGE;
	}
	if (*q == '?')
		q++;
	return parse_query(r, uri, q);
bad:
	IMP_ERROR("probe '%s': expected rsp://HOST:PORT[?server=NAME&timeout_ms=N&retries=N&"
		  "monitor_timeout_ms=N&flash_timeout_ms=N&reset=CMD&noack=0|1&dap=NAME&"
		  "data_abort=1&cache=off&auto_unlock=off] (docs/PROBES.md)", uri);
	return IMP_ERR_USAGE;
}

/* The KEY=VALUE pairs after '?' (q points past it). */
static imp_err parse_query(struct rsp *r, const char *uri, const char *q)
{
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
		if (strcmp(kv, "server") == 0) {
			size_t k;

			for (k = 0; k < IMP_ARRAY_SIZE(server_names); k++)
				if (k != SRV_GENERIC && strcmp(eq, server_names[k]) == 0)
					break;
			if (k == IMP_ARRAY_SIZE(server_names)) {
				IMP_ERROR("probe '%s': unknown server '%s' (openocd, pyocd, jlink, bmp, "
					  "qemu, vboard)", uri, eq);
				return IMP_ERR_USAGE;
			}
			r->server = (enum rsp_server)k;
			r->server_fixed = true;
			continue;
		}
		if (strcmp(kv, "dap") == 0) {
			if (!*eq || strlen(eq) >= sizeof(r->dap) || strspn(eq,
			    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
			    strlen(eq))
				goto bad;
			strcpy(r->dap, eq);
			continue;
		}
		if (strcmp(kv, "cache") == 0 || strcmp(kv, "auto_unlock") == 0) {
			if (strcmp(eq, "off") != 0)
				goto bad;
			if (kv[0] == 'c')
				r->cache_off = true;
			else
				r->auto_unlock_off = true;
			continue;
		}
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
		else if (strcmp(kv, "monitor_timeout_ms") == 0 && v > 0 && v <= 3600000)
			r->monitor_timeout_ms = (unsigned)v;
		else if (strcmp(kv, "flash_timeout_ms") == 0 && v > 0 && v <= 3600000)
			r->flash_timeout_ms = (unsigned)v;
		else if (strcmp(kv, "data_abort") == 0 && v == 1)
			r->data_abort = true;
		else if (strcmp(kv, "retries") == 0 && v <= 100)
			r->retries = (unsigned)v;
		else if (strcmp(kv, "noack") == 0 && v <= 1)
			r->allow_noack = v == 1;
		else
			goto bad;
	}
	return IMP_OK;
bad:
	IMP_ERROR("probe '%s': expected rsp://HOST:PORT[?server=NAME&timeout_ms=N&retries=N&"
		  "monitor_timeout_ms=N&flash_timeout_ms=N&reset=CMD&noack=0|1&dap=NAME&"
		  "data_abort=1&cache=off&auto_unlock=off] (docs/PROBES.md)", uri);
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
		/* A reply is then one recv, not a poll and a read. */
		if (board_io_socket_setup(fd) != 0) {
			err = errno;
			close(fd);
			continue;
		}
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

static imp_err monitor_run(struct rsp *r, const char *cmd, char *out, size_t cap,
			   unsigned timeout_ms);

/* Ask an unnamed server who it is: "monitor version" answers differ. */
static void identify_server(struct rsp *r)
{
	static const struct {
		const char *needle;
		enum rsp_server server;
	} known[] = {
		{ "Open On-Chip Debugger", SRV_OPENOCD },
		{ "pyOCD", SRV_PYOCD },
		{ "Black Magic", SRV_BMP },
		{ "SEGGER", SRV_JLINK },
		{ "J-Link", SRV_JLINK },
		{ "unknown command: 'version'", SRV_QEMU }, /* QEMU's HMP */
	};
	char out[512];

	if (monitor_run(r, "version", out, sizeof(out), r->timeout_ms) != IMP_OK &&
	    !out[0])
		return;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(known); i++)
		if (strstr(out, known[i].needle)) {
			r->server = known[i].server;
			return;
		}
}

/* Refuse servers whose defaults would hide a lock or unlock a board. */
static imp_err check_server(struct rsp *r, const char *uri)
{
	switch (r->server) {
	case SRV_OPENOCD:
		if (!r->data_abort) {
			IMP_ERROR("probe '%s': OpenOCD answers a failed memory read with zeros and OK "
				  "unless it runs with -c 'gdb_report_data_abort enable' (a config "
				  "command: it cannot be switched on over GDB); start it so and add "
				  "data_abort=1 to the URI, or use openocd://CONFIG", uri);
			return IMP_ERR_CONFIG;
		}
		break;
	case SRV_PYOCD:
		if (!r->cache_off || !r->auto_unlock_off) {
			IMP_ERROR("probe '%s': pyOCD mass-erases a locked nRF52 on connect "
				  "(auto_unlock) and answers reads from its memory cache; start it with "
				  "-O auto_unlock=false -O cache.enable_memory=false and add "
				  "auto_unlock=off&cache=off to the URI", uri);
			return IMP_ERR_CONFIG;
		}
		break;
	case SRV_JLINK:
		IMP_WARN("probe '%s': J-Link GDB server: untested here; run it with -nogui so a "
			 "locked nRF52 is never offered an unsecure (mass erase) prompt "
			 "(docs/PROBES.md)", uri);
		break;
	case SRV_BMP:
		IMP_DEBUG("probe '%s': Black Magic Probe: tested against imprint-vboard's model of "
			  "its GDB port only (docs/PROBES.md)", uri);
		break;
	default:
		break;
	}
	if (r->server == SRV_OPENOCD && !r->dap[0]) {
		char out[256];
		size_t k;

		/* The first DAP OpenOCD knows of; "dap names" lists one per line. */
		if (monitor_run(r, "dap names", out, sizeof(out), r->timeout_ms) == IMP_OK) {
			k = strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"0123456789._-");
			if (k > 0 && k < sizeof(r->dap) && (out[k] == '\0' || out[k] == '\n' ||
							     out[k] == '\r' || out[k] == ' ')) {
				memcpy(r->dap, out, k);
				r->dap[k] = '\0';
			}
		}
	}
	return IMP_OK;
}

/* qXfer:memory-map:read, in pieces, then parsed; flash regions kept. */
static imp_err read_memory_map(struct rsp *r)
{
	/* Gathered in the body buffer: no packet is built while the map is
	 * read (the requests go out of cmd). */
	char *xml = (char *)r->body;
	size_t len = 0;
	imp_err rc = IMP_OK;

	for (;;) {
		char cmd[64];
		size_t want = r->packet_size - 16;

		snprintf(cmd, sizeof(cmd), "qXfer:memory-map:read::%zx,%zx", len, want);
		rc = exchange_str(r, cmd, "memory map");
		if (rc != IMP_OK)
			goto cleanup;
		if (r->pkt_len == 0 || (r->pkt[0] != 'm' && r->pkt[0] != 'l')) {
			/* Offered, then refused (OpenOCD without flash banks): none. */
			IMP_DEBUG("rsp probe: %s offers a memory map but answered %.*s", r->where,
				  (int)(r->pkt_len > 8 ? 8 : r->pkt_len), (const char *)r->pkt);
			goto cleanup;
		}
		if (r->pkt_len - 1 > RSP_MEMMAP_MAX - 1 - len) {
			IMP_ERROR("rsp probe: the memory map of %s is larger than %u bytes; ignored",
				  r->where, RSP_MEMMAP_MAX);
			goto cleanup;
		}
		memcpy(xml + len, r->pkt + 1, r->pkt_len - 1);
		len += r->pkt_len - 1;
		if (r->pkt[0] == 'l' || r->pkt_len == 1)
			break;
	}
	if (board_rsp_parse_memory_map(xml, len, r->map, RSP_MAX_REGIONS, &r->n_map) != 0) {
		IMP_WARN("rsp probe: the memory map of %s is malformed; its flash driver is not "
			 "used", r->where);
		r->n_map = 0;
	}
cleanup:
	return rc;
}

static void rsp_free(struct rsp *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->rx); /* the block of all four buffers (rsp_new) */
	free(r);
}

/* A serial port in raw mode (a BMP's CDC-ACM port ignores the rate). */
static imp_err serial_open(struct rsp *r, const char *path)
{
	struct termios t;

	r->fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (r->fd < 0) {
		IMP_ERROR("rsp probe: cannot open %s: %s; check that the probe is plugged in and "
			  "the port is the GDB one (a BMP has two: the first is GDB)", path,
			  strerror(errno));
		return IMP_ERR_PROBE;
	}
	if (tcgetattr(r->fd, &t) != 0) {
		IMP_ERROR("rsp probe: %s is not a serial port (%s)", path, strerror(errno));
		return IMP_ERR_PROBE;
	}
	cfmakeraw(&t);
	cfsetispeed(&t, B115200);
	cfsetospeed(&t, B115200);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(r->fd, TCSANOW, &t) != 0) {
		IMP_ERROR("rsp probe: cannot set %s raw: %s", path, strerror(errno));
		return IMP_ERR_PROBE;
	}
	tcflush(r->fd, TCIOFLUSH);
	r->tty = true;
	return IMP_OK;
}

/*
 * A Black Magic Probe reaches no target until it has scanned the SWD bus
 * and attached: swd_scan must list target 1, then vAttach;1 must answer a
 * stop reply.
 */
static imp_err bmp_attach(struct rsp *r)
{
	char out[1024];
	imp_err rc;

	rc = monitor_run(r, "swd_scan", out, sizeof(out), r->monitor_timeout_ms);
	if (rc != IMP_OK)
		return rc;
	if (!strstr(out, "Available Targets") || !strstr(out, "\n 1 ")) {
		IMP_ERROR("rsp probe: the Black Magic Probe on %s found no target (swd_scan: %.200s); "
			  "check the target's power and SWD wiring", r->where, out);
		return IMP_ERR_PROBE;
	}
	rc = exchange_str(r, "vAttach;1", "vAttach");
	if (rc != IMP_OK)
		return rc;
	if (r->pkt_len == 0 || (r->pkt[0] != 'T' && r->pkt[0] != 'S')) {
		IMP_ERROR("rsp probe: the Black Magic Probe on %s did not attach to target 1 "
			  "(answered %.*s)", r->where, (int)(r->pkt_len > 16 ? 16 : r->pkt_len),
			  (const char *)r->pkt);
		return IMP_ERR_PROBE;
	}
	IMP_DEBUG("rsp probe: attached to target 1 on %s", r->where);
	return IMP_OK;
}

static struct rsp *rsp_new(void)
{
	struct rsp *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->fd = -1;
	r->timeout_ms = RSP_DEFAULT_TIMEOUT_MS;
	r->monitor_timeout_ms = RSP_DEFAULT_MONITOR_TIMEOUT_MS;
	r->flash_timeout_ms = RSP_DEFAULT_FLASH_TIMEOUT_MS;
	r->crc_ok = -1;
	r->retries = RSP_DEFAULT_RETRIES;
	r->packet_size = RSP_DEFAULT_PACKET_SIZE;
	r->x_ok = -1;
	r->allow_noack = true;
	snprintf(r->reset_cmd, sizeof(r->reset_cmd), "reset halt");
	/* One block for the four buffers: one trip to the heap, whose lock
	 * every fixture thread wants at the same moment when a run starts.
	 * Each part's size is a multiple of 16, so each stays aligned. */
	r->rx = malloc(RSP_RX_CAP + 3 * (size_t)BOARD_RSP_MAX_PAYLOAD + 16);
	if (!r->rx) {
		rsp_free(r);
		return NULL;
	}
	r->pkt = r->rx + RSP_RX_CAP;
	r->tx = r->pkt + BOARD_RSP_MAX_PAYLOAD; /* '+' and a frame of up to MAX + 8 */
	r->body = r->tx + BOARD_RSP_MAX_PAYLOAD + 16;
	return r;
}

/* What follows the transport: features, no-ack, the server, its memory map. */
static imp_err rsp_handshake(struct rsp *r, const char *uri)
{
	bool noack_offered;
	imp_err rc;

	/* GDB's '+' on connecting, then qSupported and QStartNoAckMode one
	 * after the other: their acks go in front of the next packet. */
	r->defer_ack = true;
	r->ack_owed = true;
	rc = exchange_str(r, "qSupported:swbreak+;hwbreak+;vContSupported+", "qSupported");
	if (rc == IMP_OK) {
		parse_supported(r, &noack_offered);
		if (noack_offered && r->allow_noack) {
			rc = exchange_str(r, "QStartNoAckMode", "QStartNoAckMode");
			if (rc == IMP_OK && reply_is(r, "OK"))
				r->noack = true;
		}
	}
	r->defer_ack = false;
	/* In no-ack mode the server waits for no '+' (the one GDB sends for
	 * the "OK" may come with the next packet); in ack mode it waits for
	 * it now. */
	if (rc == IMP_OK && r->ack_owed && !r->noack) {
		r->ack_owed = false;
		rc = send_all(r, (const uint8_t *)"+", 1);
	}
	if (rc != IMP_OK)
		return rc;
	/* Halt reason: GDB asks it first, and some servers expect it;
	 * imprint-vboard (named in its qSupported) does not, and nothing
	 * here reads the answer. */
	if (!(r->server == SRV_VBOARD && !r->server_fixed)) {
		rc = exchange_str(r, "?", "halt reason");
		if (rc != IMP_OK)
			return rc;
	}
	if (r->server == SRV_GENERIC)
		identify_server(r);
	rc = check_server(r, uri);
	if (rc == IMP_OK && r->server == SRV_BMP)
		rc = bmp_attach(r);
	if (rc == IMP_OK && r->memmap_offered)
		rc = read_memory_map(r);
	if (rc != IMP_OK)
		return rc;
	IMP_DEBUG("rsp probe: connected to %s (%s), PacketSize %zu, %s, %zu memory regions",
		  r->where, server_names[r->server], r->packet_size,
		  r->noack ? "no-ack mode" : "ack mode", r->n_map);
	return IMP_OK;
}

static imp_err rsp_serial_open(const char *uri, void **priv)
{
	char path[256];
	struct rsp *r = rsp_new();
	imp_err rc;

	if (!r)
		return IMP_ERR_NOMEM;
	rc = parse_serial_uri(r, uri, path, sizeof(path));
	if (rc == IMP_OK) {
		snprintf(r->where, sizeof(r->where), "%s", path);
		rc = serial_open(r, path);
	}
	if (rc == IMP_OK)
		rc = rsp_handshake(r, uri);
	if (rc != IMP_OK) {
		rsp_free(r);
		return rc;
	}
	*priv = r;
	return IMP_OK;
}

static imp_err rsp_open(const char *uri, void **priv)
{
	char host[256], port[16];
	struct rsp *r;
	imp_err rc;

	r = rsp_new();
	if (!r)
		return IMP_ERR_NOMEM;
	rc = parse_uri(r, uri, host, sizeof(host), port, sizeof(port));
	if (rc != IMP_OK)
		goto fail;
	snprintf(r->where, sizeof(r->where), "%s:%s", host, port);
	rc = tcp_connect(r, host, port);
	if (rc != IMP_OK)
		goto fail;
	rc = rsp_handshake(r, uri);
	if (rc != IMP_OK)
		goto fail;
	*priv = r;
	return IMP_OK;
fail:
	rsp_free(r);
	return rc;
}

static void rsp_close(void *priv)
{
	struct rsp *r = priv;

	/* Leave the target halted as found. 'D' resumes the core on QEMU, BMP
	 * and others (GDB's detach); OpenOCD and imprint-vboard keep it halted
	 * and close on 'D'. Elsewhere closing the connection leaves it halted. */
	if (r->fd >= 0 && !r->out_of_step &&
	    (r->server == SRV_OPENOCD || r->server == SRV_VBOARD)) {
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

/*
 * Run a monitor command (qRcmd) once, within timeout_ms in all: the output
 * ("O" packets; empty ones are keep-alives, OpenOCD sends one every 500 ms
 * while a command runs) goes to out, then comes the final reply. Never
 * resent. OpenOCD answers "OK" even when the command failed: callers that
 * need a result parse the output.
 */
static imp_err monitor_run(struct rsp *r, const char *cmd, char *out, size_t cap,
			   unsigned timeout_ms)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = 6, olen = 0, n = strlen(cmd);
	uint64_t deadline = imp_now_ns() + (uint64_t)timeout_ms * 1000000u;
	unsigned code;
	imp_err rc;

	if (out && cap)
		out[0] = '\0';
	if (n == 0 || n * 2 + 6 > r->packet_size - 16) {
		IMP_ERROR("rsp probe: monitor command empty or too long for %s", r->where);
		return IMP_ERR_USAGE;
	}
	memcpy(r->body, "qRcmd,", 6);
	for (size_t i = 0; i < n; i++) {
		r->body[len++] = (uint8_t)hex[(uint8_t)cmd[i] >> 4];
		r->body[len++] = (uint8_t)hex[(uint8_t)cmd[i] & 15];
	}
	rc = exchange_once(r, r->body, len, "monitor command", timeout_ms);
	while (rc == IMP_OK && r->pkt_len >= 1 && r->pkt[0] == 'O' && !reply_is(r, "OK")) {
		size_t k = (r->pkt_len - 1) / 2;

		if ((r->pkt_len - 1) % 2)
			break; /* not console output: the final reply */
		for (size_t i = 0; i < k; i++) {
			uint8_t b;

			if (board_rsp_unhex(r->pkt + 1 + 2 * i, 2, &b, 1) != 0)
				break;
			if (out && olen + 1 < cap)
				out[olen++] = (char)b;
		}
		rc = next_once(r, deadline, "monitor command", timeout_ms);
	}
	if (out && cap)
		out[olen < cap ? olen : cap - 1] = '\0';
	if (rc != IMP_OK)
		return rc;
	if (r->pkt_len == 0) {
		IMP_DEBUG("rsp probe: %s does not support monitor commands ('%s')", r->where, cmd);
		return IMP_ERR_UNSUPPORTED;
	}
	if (board_rsp_is_error(r->pkt, r->pkt_len, &code)) {
		if (code == RSP_ERR_LOCKED && r->server == SRV_VBOARD)
			return IMP_ERR_TARGET_LOCKED;
		IMP_DEBUG("rsp probe: monitor '%s' failed: %s answered E%02X", cmd, r->where, code);
		return IMP_ERR_PROBE;
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

static imp_err rsp_monitor(void *priv, const char *cmd, char *out, size_t cap)
{
	struct rsp *r = priv;
	imp_err rc = monitor_run(r, cmd, out, cap, r->monitor_timeout_ms);

	if (rc == IMP_ERR_UNSUPPORTED)
		IMP_ERROR("rsp probe: %s does not support monitor commands ('%s')", r->where, cmd);
	else if (rc == IMP_ERR_PROBE)
		IMP_ERROR("rsp probe: monitor '%s' failed on %s", cmd, r->where);
	return rc;
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

/* The flash region of the memory map holding [addr, addr+n), or NULL. */
static const struct board_rsp_region *flash_region(const struct rsp *r, uint32_t addr, size_t n)
{
	for (size_t i = 0; i < r->n_map; i++) {
		const struct board_rsp_region *m = &r->map[i];

		if (m->type == BOARD_RSP_MEM_FLASH && addr >= m->start &&
		    (uint64_t)addr + n <= m->start + m->length)
			return m;
	}
	return NULL;
}

/* Map the reply to a flash packet: "OK", or an error that names it. */
static imp_err flash_reply(struct rsp *r, const char *what, uint32_t addr, size_t n)
{
	unsigned code;

	if (reply_is(r, "OK")) {
		/* A flash packet has one reply: with nothing behind it, the next
		 * packet needs no drain (as after exchange()). */
		r->settled = r->rx_len == 0;
		return IMP_OK;
	}
	if (r->pkt_len >= 2 && r->pkt[0] == 'E' && r->pkt[1] == '.') {
		/* "E.memtype": the range is not flash after all. */
		IMP_ERROR("rsp probe: %s of 0x%08x (%zu bytes): %s says the range is not flash",
			  what, addr, n, r->where);
		return IMP_ERR_PROBE;
	}
	if (board_rsp_is_error(r->pkt, r->pkt_len, &code)) {
		if (code == RSP_ERR_LOCKED && r->server == SRV_VBOARD)
			return IMP_ERR_TARGET_LOCKED;
		IMP_ERROR("rsp probe: %s of 0x%08x (%zu bytes) failed: %s answered E%02X; see "
			  "the GDB server's log (flash driver, protection)", what, addr, n,
			  r->where, code);
		return IMP_ERR_PROBE;
	}
	if (r->pkt_len == 0) {
		IMP_ERROR("rsp probe: %s: %s does not support it", what, r->where);
		return IMP_ERR_UNSUPPORTED;
	}
	IMP_ERROR("rsp probe: unexpected reply to %s from %s", what, r->where);
	return IMP_ERR_PROTOCOL;
}

static imp_err rsp_flash_program(void *priv, uint32_t addr, const uint8_t *buf, size_t n)
{
	struct rsp *r = priv;
	const struct board_rsp_region *m = flash_region(r, addr, n);
	uint64_t first, last;
	size_t off = 0;
	char cmd[64];
	imp_err rc;

	if (!m)
		return IMP_ERR_UNSUPPORTED;
	/* Erase whole blocks: the server refuses unaligned erases. */
	first = m->start + (addr - m->start) / m->blocksize * m->blocksize;
	last = m->start + ((uint64_t)addr + n - m->start + m->blocksize - 1) / m->blocksize *
		m->blocksize;
	snprintf(cmd, sizeof(cmd), "vFlashErase:%llx,%llx", (unsigned long long)first,
		 (unsigned long long)(last - first));
	rc = exchange_once(r, (const uint8_t *)cmd, strlen(cmd), "flash erase",
			   r->flash_timeout_ms);
	if (rc == IMP_OK)
		rc = flash_reply(r, "flash erase", (uint32_t)first, (size_t)(last - first));
	while (rc == IMP_OK && off < n) {
		size_t room = r->packet_size - 16 - 32, used = 0, esc, hl;
		uint8_t *body = TX_FRAME(r) + 1; /* framed in place (board_rsp_frame) */

		/* The header's length does not depend on the data: escape
		 * straight behind it (at most 21 bytes: "vFlashWrite:", 8 hex
		 * digits and ":", within the 32). */
		hl = (size_t)snprintf((char *)body, 40, "vFlashWrite:%x:", addr + (uint32_t)off);
		esc = board_rsp_escape(buf + off, n - off, body + hl, room, &used);
		rc = exchange_once(r, body, hl + esc, "flash write", r->flash_timeout_ms);
		if (rc == IMP_OK)
			rc = flash_reply(r, "flash write", addr + (uint32_t)off, used);
		off += used;
	}
	if (rc != IMP_OK)
		return rc;
	/* OpenOCD programs the buffered data here: the long one. */
	rc = exchange_once(r, (const uint8_t *)"vFlashDone", 10, "flash done", r->flash_timeout_ms);
	if (rc == IMP_OK)
		rc = flash_reply(r, "flash done", addr, n);
	return rc;
}

static imp_err rsp_crc32(void *priv, uint32_t addr, size_t n, uint32_t *crc)
{
	struct rsp *r = priv;
	char cmd[48];
	unsigned code;
	imp_err rc;

	if (r->crc_ok == 0)
		return IMP_ERR_UNSUPPORTED;
	snprintf(cmd, sizeof(cmd), "qCRC:%x,%zx", addr, n);
	/* The server reads the whole range before answering: allow for it. */
	{
		unsigned saved = r->timeout_ms;

		if (r->timeout_ms < r->flash_timeout_ms)
			r->timeout_ms = r->flash_timeout_ms;
		rc = exchange_str(r, cmd, "memory checksum");
		r->timeout_ms = saved;
	}
	if (rc != IMP_OK)
		return rc;
	if (r->pkt_len == 0 || (r->crc_ok < 0 && reply_is(r, "OK"))) {
		/* QEMU answers qCRC with nothing; a server that answers "OK"
		 * to an unknown query does not compute it either. */
		r->crc_ok = 0;
		return IMP_ERR_UNSUPPORTED;
	}
	if (board_rsp_is_error(r->pkt, r->pkt_len, &code)) {
		if (code == RSP_ERR_LOCKED && r->server == SRV_VBOARD)
			return IMP_ERR_TARGET_LOCKED;
		IMP_ERROR("rsp probe: checksum of 0x%08x..0x%08x failed: %s answered E%02X", addr,
			  (uint32_t)(addr + n - 1), r->where, code);
		return IMP_ERR_PROBE;
	}
	if (r->pkt_len != 9 || r->pkt[0] != 'C') {
		IMP_ERROR("rsp probe: malformed reply to qCRC from %s", r->where);
		return IMP_ERR_PROTOCOL;
	}
	{
		uint8_t b[4];

		if (board_rsp_unhex(r->pkt + 1, 8, b, 4) != 0) {
			IMP_ERROR("rsp probe: malformed reply to qCRC from %s", r->where);
			return IMP_ERR_PROTOCOL;
		}
		*crc = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	}
	r->crc_ok = 1;
	return IMP_OK;
}

/*
 * The value OpenOCD prints for "DAP apreg AP REG": one 0x-number on its
 * own. Anything else (an error message) is a failed access.
 */
static int parse_apreg_output(const char *out, uint32_t *v)
{
	const char *p = out;
	char *end = NULL;
	unsigned long long x;

	while (*p == ' ' || *p == '\r' || *p == '\n')
		p++;
	if (p[0] != '0' || (p[1] != 'x' && p[1] != 'X'))
		return -1;
	errno = 0;
	x = strtoull(p, &end, 16);
	if (errno || end == p + 2 || x > 0xFFFFFFFFull)
		return -1;
	while (*end == ' ' || *end == '\r' || *end == '\n')
		end++;
	if (*end)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static imp_err ap_access(struct rsp *r, unsigned ap, uint32_t reg, const uint32_t *wv,
			 uint32_t *rv)
{
	char cmd[200], out[4096];
	const char *mark, *p;
	imp_err rc;

	if (ap > 255 || reg > 0xFFC || reg % 4) {
		IMP_ERROR("rsp probe: no access port register %u:0x%x", ap, reg);
		return IMP_ERR_USAGE;
	}
	if (r->server == SRV_VBOARD) {
		/* imprint-vboard takes OpenOCD's "dap apreg" and prints nothing
		 * else: the value, or nothing for a write; E-replies for errors. */
		if (wv)
			snprintf(cmd, sizeof(cmd), "dap apreg %u 0x%x 0x%x", ap, reg, *wv);
		else
			snprintf(cmd, sizeof(cmd), "dap apreg %u 0x%x", ap, reg);
		rc = monitor_run(r, cmd, out, sizeof(out), r->monitor_timeout_ms);
		if (rc == IMP_OK && !wv && parse_apreg_output(out, rv) != 0)
			rc = IMP_ERR_PROBE;
		if (rc != IMP_OK && rc != IMP_ERR_TIMEOUT)
			IMP_ERROR("rsp probe: '%s' on %s failed: %.200s", cmd, r->where, out);
		return rc == IMP_ERR_UNSUPPORTED ? IMP_ERR_PROBE : rc;
	}
	if (r->server != SRV_OPENOCD || !r->dap[0])
		return IMP_ERR_UNSUPPORTED;
	/* OpenOCD mixes its log into a monitor command's output: the answer
	 * comes on a line of its own behind a marker, errors caught. */
	if (wv)
		snprintf(cmd, sizeof(cmd), "if {[catch {%s apreg %u 0x%x 0x%x} e]} {echo "
			 "\"imprint-ap:E:$e\"} else {echo imprint-ap:OK}", r->dap, ap, reg, *wv);
	else
		snprintf(cmd, sizeof(cmd), "if {[catch {%s apreg %u 0x%x} e]} {echo "
			 "\"imprint-ap:E:$e\"} else {echo \"imprint-ap:$e\"}", r->dap, ap, reg);
	rc = monitor_run(r, cmd, out, sizeof(out), r->monitor_timeout_ms);
	if (rc != IMP_OK)
		return rc;
	mark = NULL;
	for (p = out; (p = strstr(p, "imprint-ap:")) != NULL; p++)
		if (p == out || p[-1] == '\n')
			mark = p;
	if (!mark) {
		IMP_ERROR("rsp probe: AP %u register 0x%x on %s: no answer in the output", ap, reg,
			  r->where);
		return IMP_ERR_PROBE;
	}
	mark += 11;
	if (wv) {
		if (strncmp(mark, "OK", 2) != 0 || (mark[2] && mark[2] != '\n' && mark[2] != '\r')) {
			IMP_ERROR("rsp probe: AP %u register 0x%x write on %s failed: %.200s", ap, reg,
				  r->where, mark);
			return IMP_ERR_PROBE;
		}
		return IMP_OK;
	}
	{
		char line[64];
		size_t k = strcspn(mark, "\r\n");

		if (k >= sizeof(line) || parse_apreg_output((memcpy(line, mark, k), line[k] = '\0',
							       line), rv) != 0) {
			IMP_ERROR("rsp probe: AP %u register 0x%x read on %s failed: %.200s", ap, reg,
				  r->where, mark);
			return IMP_ERR_PROBE;
		}
	}
	return IMP_OK;
}

static imp_err rsp_ap_read(void *priv, unsigned ap, uint32_t reg, uint32_t *v)
{
	return ap_access(priv, ap, reg, NULL, v);
}

static imp_err rsp_ap_write(void *priv, unsigned ap, uint32_t reg, uint32_t v)
{
	return ap_access(priv, ap, reg, &v, NULL);
}

const struct board_probe_driver board_probe_rsp_serial = {
	.name = "rsp+serial",
	.open = rsp_serial_open,
	.close = rsp_close,
	.read_mem = rsp_read,
	.write_mem = rsp_write,
	.reset = rsp_reset,
	.halt = rsp_halt,
	.monitor = rsp_monitor,
	.flash_program = rsp_flash_program,
	.crc32 = rsp_crc32,
	.ap_read = rsp_ap_read,
	.ap_write = rsp_ap_write,
};

const struct board_probe_driver board_probe_rsp = {
	.name = "rsp",
	.open = rsp_open,
	.close = rsp_close,
	.read_mem = rsp_read,
	.write_mem = rsp_write,
	.reset = rsp_reset,
	.halt = rsp_halt,
	.monitor = rsp_monitor,
	.flash_program = rsp_flash_program,
	.crc32 = rsp_crc32,
	.ap_read = rsp_ap_read,
	.ap_write = rsp_ap_write,
};
