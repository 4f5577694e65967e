#include <pthread.h>
#include <string.h>

#include "board/rsp.h"

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int board_rsp_unhex(const uint8_t *hex, size_t hex_len, uint8_t *out, size_t n)
{
	if (hex_len != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]);
		int lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int board_rsp_is_error(const uint8_t *reply, size_t n, unsigned *code)
{
	int hi, lo;

	if (n != 3 || reply[0] != 'E')
		return 0;
	hi = hexval(reply[1]);
	lo = hexval(reply[2]);
	if (hi < 0 || lo < 0)
		return 0;
	*code = (unsigned)(hi << 4 | lo);
	return 1;
}

/*
 * Decode body[0..n) (between '$' and '#') into out: escapes and run-length
 * encoding. Returns 0, or -1 when malformed or out of room.
 */
static int decode_body(const uint8_t *body, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = body[i];

		if (c == '}') {
			if (i + 1 >= n)
				return -1;
			c = body[++i] ^ 0x20;
		} else if (c == '*') {
			uint8_t rc;
			size_t count;

			/* Repeat the previous decoded byte (N - 29) more times. */
			if (o == 0 || i + 1 >= n)
				return -1;
			rc = body[++i];
			if (rc < 29 + 3 || rc > 126 || rc == '#' || rc == '$')
				return -1;
			count = (size_t)rc - 29;
			if (count > cap - o)
				return -1;
			memset(out + o, out[o - 1], count);
			o += count;
			continue;
		}
		if (o >= cap)
			return -1;
		out[o++] = c;
	}
	*out_len = o;
	return 0;
}

enum board_rsp_result board_rsp_parse(const uint8_t *buf, size_t n, uint8_t *out, size_t cap,
				      size_t *out_len, size_t *consumed, char *ack)
{
	size_t start = 0, hash;
	uint8_t sum = 0;
	int hi, lo;

	*consumed = 0;
	*out_len = 0;
	while (start < n && buf[start] != '$' && buf[start] != '%' && buf[start] != '+' &&
	       buf[start] != '-')
		start++;
	*consumed = start;
	if (start >= n)
		return BOARD_RSP_NEED_MORE;
	if (buf[start] == '+' || buf[start] == '-') {
		if (ack)
			*ack = (char)buf[start];
		*consumed = start + 1;
		return BOARD_RSP_ACK;
	}
	/* Find the '#' that ends the body; binary data never holds a raw '#'. */
	for (hash = start + 1; hash < n; hash++) {
		if (buf[hash] == '#')
			break;
		/* A raw '$' inside a body means the previous packet was cut:
		 * restart there. ('%' may appear raw: only '#', '$', '}' and '*'
		 * are always escaped.) */
		if (buf[hash] == '$') {
			*consumed = hash;
			return BOARD_RSP_BAD;
		}
	}
	if (hash >= n || n - hash < 3) {
		if (hash - start > 2 * BOARD_RSP_MAX_PAYLOAD + 16) {
			/* Far too long to be a packet we asked for: drop it. */
			*consumed = start + 1;
			return BOARD_RSP_BAD;
		}
		return BOARD_RSP_NEED_MORE;
	}
	*consumed = hash + 3;
	for (size_t i = start + 1; i < hash; i++)
		sum = (uint8_t)(sum + buf[i]);
	hi = hexval(buf[hash + 1]);
	lo = hexval(buf[hash + 2]);
	if (hi < 0 || lo < 0)
		return BOARD_RSP_BAD;
	if ((uint8_t)(hi << 4 | lo) != sum)
		return BOARD_RSP_BAD_CHECKSUM;
	if (decode_body(buf + start + 1, hash - start - 1, out, cap, out_len) != 0) {
		*out_len = 0;
		return BOARD_RSP_BAD;
	}
	return buf[start] == '%' ? BOARD_RSP_NOTIFY : BOARD_RSP_PACKET;
}

size_t board_rsp_frame(const uint8_t *payload, size_t n, uint8_t *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t sum = 0;

	if (cap < 4 || n > cap - 4)
		return 0;
	out[0] = '$';
	for (size_t i = 0; i < n; i++) {
		out[1 + i] = payload[i];
		sum = (uint8_t)(sum + payload[i]);
	}
	out[1 + n] = '#';
	out[2 + n] = (uint8_t)hex[sum >> 4];
	out[3 + n] = (uint8_t)hex[sum & 15];
	return n + 4;
}

size_t board_rsp_escape(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *used)
{
	size_t o = 0, i;

	for (i = 0; i < n; i++) {
		uint8_t c = in[i];

		if (c == '#' || c == '$' || c == '}' || c == '*') {
			if (cap - o < 2)
				break;
			out[o++] = '}';
			out[o++] = c ^ 0x20;
		} else {
			if (cap - o < 1)
				break;
			out[o++] = c;
		}
	}
	*used = i;
	return o;
}

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i << 24;

		for (int k = 0; k < 8; k++)
			c = c & 0x80000000u ? c << 1 ^ 0x04C11DB7u : c << 1;
		crc_table[i] = c;
	}
}

uint32_t board_rsp_crc32(uint32_t crc, const uint8_t *buf, size_t n)
{
	pthread_once(&crc_once, crc_init);
	for (size_t i = 0; i < n; i++)
		crc = crc << 8 ^ crc_table[(crc >> 24 ^ buf[i]) & 0xFF];
	return crc;
}
