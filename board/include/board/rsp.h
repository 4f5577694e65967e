/*
 * GDB Remote Serial Protocol packet codec: pure functions, no I/O, used by
 * the rsp probe driver and fuzzed on their own (tests/fuzz).
 *
 * On the wire a packet is '$' payload '#' XX, where XX is two hex digits of
 * the modulo-256 sum of the payload bytes as sent. Inside the payload, '}'
 * escapes the next byte (sent XOR 0x20), and "c*N" repeats c (N - 29) more
 * times (run-length encoding; N is a printable character, 0x20 < N < 0x7F
 * and N is not '#' or '$'). A '+' or '-' alone acknowledges a packet; '%'
 * starts a notification (non-stop mode), parsed like a packet.
 */
#ifndef BOARD_RSP_H
#define BOARD_RSP_H

#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

/* Largest decoded payload the station accepts (and PacketSize it offers). */
#define BOARD_RSP_MAX_PAYLOAD (64u * 1024u)

enum board_rsp_result {
	BOARD_RSP_PACKET = 0,       /* out holds the decoded payload */
	BOARD_RSP_ACK = 1,          /* a '+' (*ack = '+') or '-' (*ack = '-') */
	BOARD_RSP_NOTIFY = 2,       /* a well-formed '%' notification; ignore it */
	BOARD_RSP_NEED_MORE = 3,    /* no complete item yet */
	BOARD_RSP_BAD_CHECKSUM = 4, /* complete packet, checksum wrong: send '-' */
	BOARD_RSP_BAD = 5,          /* complete packet, malformed (bad escape, bad
	                               run length, checksum not hex, too large) */
};

/*
 * Parse the first item in buf[0..n). Bytes before a '$', '%', '+' or '-'
 * are noise and skipped. Always sets *consumed: the number of bytes the
 * caller must drop before calling again (noise only for NEED_MORE; the
 * whole item otherwise). Never reads past n, never writes past cap; *out_len
 * is set for PACKET and NOTIFY. ack may be NULL.
 */
enum board_rsp_result board_rsp_parse(const uint8_t *buf, size_t n, uint8_t *out, size_t cap,
				      size_t *out_len, size_t *consumed, char *ack);

/*
 * Frame payload[0..n) as "$payload#XX" into out (capacity cap). The payload
 * must already be escaped where needed (board_rsp_escape). payload may be
 * out + 1: a payload written in place is framed without a copy. Returns the
 * number of bytes written, or 0 if cap is too small.
 */
size_t board_rsp_frame(const uint8_t *payload, size_t n, uint8_t *out, size_t cap);

/*
 * Escape binary data for an 'X' packet: '#', '$', '}' and '*' become '}'
 * followed by the byte XOR 0x20. Consumes as many input bytes as fit in cap
 * output bytes; returns the output length and sets *used to the input
 * bytes consumed.
 */
size_t board_rsp_escape(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *used);

/* If reply is "Enn" (two hex digits, nothing else), return 1 and set *code. */
int board_rsp_is_error(const uint8_t *reply, size_t n, unsigned *code);

/*
 * Decode exactly 2*n hex digits at hex into out. Returns 0 on success, -1 on
 * a non-hex character or when hex_len != 2*n.
 */
int board_rsp_unhex(const uint8_t *hex, size_t hex_len, uint8_t *out, size_t n);

/* CRC-32 as GDB's qCRC packet defines it (imp_crc32_msb). */
uint32_t board_rsp_crc32(uint32_t crc, const uint8_t *buf, size_t n);

/* One <memory> element of a GDB memory map (qXfer:memory-map:read). */
enum board_rsp_mem_type { BOARD_RSP_MEM_RAM = 1, BOARD_RSP_MEM_ROM = 2, BOARD_RSP_MEM_FLASH = 3 };

struct board_rsp_region {
	enum board_rsp_mem_type type;
	uint64_t start;
	uint64_t length;
	uint64_t blocksize;         /* flash: erase block, > 0; else 0 */
};

/*
 * Parse the memory-map XML (GDB's gdb-memory-map.dtd) in xml[0..n): the
 * <memory type= start= length=> elements and a flash region's
 * <property name="blocksize">. A strict subset parser, safe on hostile
 * input: it never reads past n, never recurses, and answers -1 (nothing
 * usable, *count 0) on anything malformed: unknown memory type, a number
 * that is not decimal or 0x hex or overflows, length 0, a region ending
 * past 2^32, a flash region without a blocksize or whose length is not a
 * multiple of it, more than cap regions. 0 on success.
 */
int board_rsp_parse_memory_map(const char *xml, size_t n, struct board_rsp_region *out,
			       size_t cap, size_t *count);

#endif
