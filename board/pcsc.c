/*
 * The PC/SC reader (board/pcsc.h): every SCard* call is made here, once,
 * and each failure is logged with the function name and the raw code and
 * its name (pcsc_stringify_error), then mapped to imprint's error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include "board/pcsc.h"
#include "imprint/log.h"

struct board_pcsc {
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD proto;
	char reader[256];
};

static bool removed(LONG r)
{
	return r == (LONG)SCARD_W_REMOVED_CARD || r == (LONG)SCARD_E_NO_SMARTCARD ||
	       r == (LONG)SCARD_W_RESET_CARD || r == (LONG)SCARD_E_READER_UNAVAILABLE ||
	       r == (LONG)SCARD_W_UNPOWERED_CARD || r == (LONG)SCARD_E_UNKNOWN_READER ||
	       r == (LONG)SCARD_E_NO_READERS_AVAILABLE || r == (LONG)SCARD_E_NO_SERVICE;
}

static imp_err pcsc_err(const char *fn, LONG r, const char *reader)
{
	if (removed(r)) {
		IMP_ERROR("pc/sc %s: %s (0x%08lX) on reader '%s': the card was removed or the "
			  "reader is gone; put the card back and resume",
			  fn, pcsc_stringify_error(r), (unsigned long)r, reader ? reader : "");
		return IMP_ERR_NOT_FOUND;
	}
	IMP_ERROR("pc/sc %s: %s (0x%08lX)", fn, pcsc_stringify_error(r), (unsigned long)r);
	return r == (LONG)SCARD_E_TIMEOUT ? IMP_ERR_TIMEOUT : IMP_ERR_IO;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Pick the reader from the multi-string list (exact name, prefix, or index). */
static imp_err pick_reader(const char *list, DWORD len, const char *want, char *out, size_t cap)
{
	const char *prefix_hit = NULL;
	long idx = all_digits(want) ? strtol(want, NULL, 10) : -1;
	long i = 0;
	size_t wl = strlen(want);

	for (const char *r = list; r < list + len && *r; r += strlen(r) + 1, i++) {
		if (i == idx || strcmp(r, want) == 0) {
			snprintf(out, cap, "%s", r);
			return IMP_OK;
		}
		if (!prefix_hit && strncmp(r, want, wl) == 0)
			prefix_hit = r;
	}
	if (prefix_hit) {
		snprintf(out, cap, "%s", prefix_hit);
		return IMP_OK;
	}
	IMP_ERROR("pc/sc reader '%s' not found; 'pcsc_scan' lists the readers pcscd sees", want);
	return IMP_ERR_NOT_FOUND;
}

imp_err board_pcsc_open(const char *reader, struct board_pcsc **out)
{
	struct board_pcsc *p;
	char *list = NULL;
	DWORD len = SCARD_AUTOALLOCATE;
	LONG r;
	imp_err rc;

	*out = NULL;
	if (!reader || !*reader)
		return IMP_ERR_USAGE;
	p = calloc(1, sizeof(*p));
	if (!p)
		return IMP_ERR_NOMEM;
	r = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->ctx);
	if (r != SCARD_S_SUCCESS) {
		IMP_ERROR("pc/sc: cannot reach pcscd (is it running? start it with 'pcscd -f -a')");
		rc = pcsc_err("SCardEstablishContext", r, reader);
		free(p);
		return rc;
	}
	r = SCardListReaders(p->ctx, NULL, (LPSTR)&list, &len);
	if (r != SCARD_S_SUCCESS) {
		rc = pcsc_err("SCardListReaders", r, reader);
		goto fail;
	}
	rc = pick_reader(list, len, reader, p->reader, sizeof(p->reader));
	SCardFreeMemory(p->ctx, list);
	if (rc != IMP_OK)
		goto fail;
	{
		/* pcscd polls the reader: a card put in just now may not be seen yet. */
		SCARD_READERSTATE rs = { .szReader = p->reader, .dwCurrentState = SCARD_STATE_UNAWARE };

		r = SCardGetStatusChange(p->ctx, 0, &rs, 1);
		if (r == SCARD_S_SUCCESS && !(rs.dwEventState & SCARD_STATE_PRESENT)) {
			IMP_INFO("pc/sc: waiting up to %u s for a card in '%s'",
				 BOARD_PCSC_INSERT_WAIT_MS / 1000, p->reader);
			rs.dwCurrentState = rs.dwEventState;
			r = SCardGetStatusChange(p->ctx, BOARD_PCSC_INSERT_WAIT_MS, &rs, 1);
		}
	}
	r = SCardConnect(p->ctx, p->reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1 | SCARD_PROTOCOL_T0,
			 &p->card, &p->proto);
	if (r != SCARD_S_SUCCESS) {
		rc = pcsc_err("SCardConnect", r, p->reader);
		goto fail;
	}
	IMP_DEBUG("pc/sc: connected to '%s' with T=%d", p->reader,
		  p->proto == SCARD_PROTOCOL_T1 ? 1 : 0);
	*out = p;
	return IMP_OK;
fail:
	SCardReleaseContext(p->ctx);
	free(p);
	return rc;
}

void board_pcsc_close(struct board_pcsc *p)
{
	if (!p)
		return;
	if (p->card)
		SCardDisconnect(p->card, SCARD_LEAVE_CARD);
	SCardReleaseContext(p->ctx);
	free(p);
}

const char *board_pcsc_reader(const struct board_pcsc *p)
{
	return p->reader;
}

/* One short APDU on the wire. rbuf holds 258 bytes. */
static imp_err xfer(struct board_pcsc *p, const uint8_t *apdu, size_t n, uint8_t *rbuf,
		    size_t *rn)
{
	const SCARD_IO_REQUEST *pci = p->proto == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
	DWORD len = 258;
	LONG r;

	r = SCardTransmit(p->card, pci, apdu, (DWORD)n, NULL, rbuf, &len);
	if (r != SCARD_S_SUCCESS)
		return pcsc_err("SCardTransmit", r, p->reader);
	if (len == 0) {
		/* vpcd (and some readers) answer nothing when the card left mid-command,
		 * before pcscd's poll has noticed: treat it as the removal it is. */
		DWORD st = 0, proto = 0, rl = 0, al = 0;

		r = SCardStatus(p->card, NULL, &rl, &st, &proto, NULL, &al);
		return pcsc_err("SCardTransmit", r != SCARD_S_SUCCESS ? r : (LONG)SCARD_W_REMOVED_CARD,
				p->reader);
	}
	if (len < 2 || len > 258) {
		IMP_ERROR("pc/sc: the card answered %lu bytes, not an r-apdu", (unsigned long)len);
		return IMP_ERR_PROTOCOL;
	}
	*rn = len;
	return IMP_OK;
}

imp_err board_pcsc_transmit(struct board_pcsc *p, const struct board_apdu *cmd, uint8_t *resp,
			    size_t cap, size_t *resp_len, uint16_t *sw)
{
	uint8_t apdu[5 + BOARD_APDU_SHORT_MAX + 1], rbuf[258];
	size_t off = 0, an, rn = 0, got = 0, dl;
	const uint8_t *d;
	imp_err rc;

	*resp_len = 0;
	*sw = 0;
	if (cmd->len > BOARD_APDU_DATA_MAX)
		return IMP_ERR_USAGE;
	/* Command chaining (ISO 7816-4 5.1.1.1): every block but the last has CLA b5 set. */
	do {
		size_t part = cmd->len - off > BOARD_APDU_SHORT_MAX ? BOARD_APDU_SHORT_MAX
								    : cmd->len - off;
		bool last = off + part == cmd->len;
		uint8_t cla = (uint8_t)(cmd->cla | (last ? 0 : BOARD_PCSC_CLA_CHAIN));

		rc = board_apdu_encode(cla, cmd->ins, cmd->p1, cmd->p2, cmd->data + off, part,
				       apdu, sizeof(apdu), &an);
		if (rc == IMP_OK)
			rc = xfer(p, apdu, an, rbuf, &rn);
		if (rc == IMP_OK)
			rc = board_apdu_split(rbuf, rn, &d, &dl, sw);
		if (rc != IMP_OK)
			return rc;
		off += part;
		if (!last && *sw != BOARD_SW_OK)
			return IMP_OK; /* the card refused a block: its SW is the answer */
	} while (off < cmd->len);
	if ((*sw & 0xFF00u) == 0x6C00u) { /* wrong Le: resend with the one the card wants */
		apdu[an - 1] = (uint8_t)*sw;
		rc = xfer(p, apdu, an, rbuf, &rn);
		if (rc == IMP_OK)
			rc = board_apdu_split(rbuf, rn, &d, &dl, sw);
		if (rc != IMP_OK)
			return rc;
	}
	for (;;) {
		if (got + dl > cap) {
			IMP_ERROR("pc/sc: the card's response exceeds %zu bytes", cap);
			return IMP_ERR_PROTOCOL;
		}
		if (dl)
			memcpy(resp + got, d, dl);
		got += dl;
		if ((*sw & 0xFF00u) != 0x6100u)
			break;
		{
			const uint8_t gr[5] = { 0x00, BOARD_PCSC_INS_GET_RESPONSE, 0, 0,
						(uint8_t)*sw };

			rc = xfer(p, gr, sizeof(gr), rbuf, &rn);
		}
		if (rc == IMP_OK)
			rc = board_apdu_split(rbuf, rn, &d, &dl, sw);
		if (rc != IMP_OK)
			return rc;
	}
	*resp_len = got;
	return IMP_OK;
}
