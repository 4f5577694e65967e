#include <string.h>

#include "board/rsp.h"
#include "imprint/util.h"

/* Hex digit value + 1, 0 for anything else: one load per digit, and a
 * bad digit shows as bit 7 of (value - 1). */
static const uint8_t hex1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7,
	['7'] = 8, ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14,
	['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15,
	['F'] = 16,
};

static int hexval(uint8_t c)
{
	return (int)hex1[c] - 1;
}

int board_rsp_unhex(const uint8_t *hex, size_t hex_len, uint8_t *out, size_t n)
{
	uint8_t bad = 0;

	if (hex_len != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint8_t hi = (uint8_t)(hex1[hex[2 * i]] - 1);
		uint8_t lo = (uint8_t)(hex1[hex[2 * i + 1]] - 1);

		bad |= hi | lo;
		out[i] = (uint8_t)(hi << 4 | (lo & 15));
	}
	return bad & 0xf0 ? -1 : 0;
}

/* The modulo-256 sum of p[0..n) (the packet checksum), eight bytes a step. */
static uint8_t byte_sum(const uint8_t *p, size_t n)
{
	const uint64_t m = 0x00ff00ff00ff00ffull;
	uint64_t total = 0;
	size_t i = 0;

	while (n - i >= 8) {
		/* 16-bit lanes: at most 2 * 255 per word, so 128 words fit. */
		uint64_t lanes = 0;
		size_t stop = i + 8 * 128 < n - 7 ? i + 8 * 128 : n - 7;

		for (; i < stop; i += 8) {
			uint64_t w;

			memcpy(&w, p + i, 8);
			lanes += (w & m) + ((w >> 8) & m);
		}
		total += (lanes & 0xffff) + ((lanes >> 16) & 0xffff) + ((lanes >> 32) & 0xffff) +
			 (lanes >> 48);
	}
	for (; i < n; i++)
		total += p[i];
	return (uint8_t)total;
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
	const uint8_t *esc = memchr(body, '}', n), *rle = memchr(body, '*', n);
	size_t o = 0, i = 0;

	for (;;) {
		/* Copy up to the next escape or run, found with memchr. */
		size_t next = n, run;

		if (esc && (size_t)(esc - body) < next)
			next = (size_t)(esc - body);
		if (rle && (size_t)(rle - body) < next)
			next = (size_t)(rle - body);
		run = next - i;
		if (run > cap - o)
			return -1;
		memcpy(out + o, body + i, run);
		o += run;
		i = next;
		if (i >= n)
			break;
		if (body[i] == '}') {
			if (i + 1 >= n || o >= cap)
				return -1;
			out[o++] = body[i + 1] ^ 0x20;
			i += 2;
		} else {
			uint8_t rc;
			size_t count;

			/* Repeat the previous decoded byte (N - 29) more times. */
			if (o == 0 || i + 1 >= n)
				return -1;
			rc = body[i + 1];
			if (rc < 29 + 3 || rc > 126 || rc == '#' || rc == '$')
				return -1;
			count = (size_t)rc - 29;
			if (count > cap - o)
				return -1;
			memset(out + o, out[o - 1], count);
			o += count;
			i += 2;
		}
		if (esc && esc < body + i)
			esc = i < n ? memchr(body + i, '}', n - i) : NULL;
		if (rle && rle < body + i)
			rle = i < n ? memchr(body + i, '*', n - i) : NULL;
	}
	*out_len = o;
	return 0;
}

enum board_rsp_result board_rsp_parse(const uint8_t *buf, size_t n, uint8_t *out, size_t cap,
				      size_t *out_len, size_t *consumed, char *ack)
{
	size_t start = 0, hash;
	uint8_t sum;
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
	/* Find the '#' that ends the body; binary data never holds a raw '#'.
	 * A raw '$' before it means the previous packet was cut: restart
	 * there. ('%' may appear raw: only '#', '$', '}' and '*' are always
	 * escaped.) */
	{
		const uint8_t *h = memchr(buf + start + 1, '#', n - start - 1);
		const uint8_t *d;

		hash = h ? (size_t)(h - buf) : n;
		d = memchr(buf + start + 1, '$', hash - start - 1);
		if (d) {
			*consumed = (size_t)(d - buf);
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
	sum = byte_sum(buf + start + 1, hash - start - 1);
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
	uint8_t sum;

	if (cap < 4 || n > cap - 4)
		return 0;
	out[0] = '$';
	if (payload != out + 1)
		memcpy(out + 1, payload, n);
	sum = byte_sum(payload, n);
	out[1 + n] = '#';
	out[2 + n] = (uint8_t)hex[sum >> 4];
	out[3 + n] = (uint8_t)hex[sum & 15];
	return n + 4;
}

/*
 * escape_block(in, out): copy ESC_BLOCK bytes from in to out, and return a
 * bit mask with bit k set when in[k] is one of the four bytes that must be
 * escaped ('#', '$', '}', '*'). SSE2 where the compiler has it (every
 * x86-64), else eight bytes in a 64-bit word. BOARD_RSP_NO_SIMD forces the
 * word version (its unit test builds it that way too).
 */
#if defined(__SSE2__) && !defined(BOARD_RSP_NO_SIMD)
#include <emmintrin.h>

#define ESC_BLOCK 16u

static inline unsigned escape_block(const uint8_t *in, uint8_t *out)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)in);
	__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('#')),
						_mm_cmpeq_epi8(v, _mm_set1_epi8('$'))),
				   _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('}')),
						_mm_cmpeq_epi8(v, _mm_set1_epi8('*'))));

	_mm_storeu_si128((__m128i *)(void *)out, v);
	return (unsigned)_mm_movemask_epi8(hit);
}
#else
#define ESC_BLOCK 8u

/* 0x80 in each byte of w that equals c, 0 in the others (exact: no carry
 * crosses a byte, so no false positives next to a match). */
static inline uint64_t bytes_equal(uint64_t w, uint8_t c)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
	uint64_t x = w ^ (0x0101010101010101ull * c);

	return ~(((x & low7) + low7) | x | low7);
}

static inline unsigned escape_block(const uint8_t *in, uint8_t *out)
{
	uint64_t w, m;
	unsigned bits = 0;

	memcpy(&w, in, 8);
	memcpy(out, &w, 8);
	m = bytes_equal(w, '#') | bytes_equal(w, '$') | bytes_equal(w, '}') | bytes_equal(w, '*');
	if (!m)
		return 0;
	/* Byte k of the word is in[k] on either byte order once read back
	 * through memcpy: gather the flags by position. */
	{
		uint8_t f[8];

		memcpy(f, &m, 8);
		for (unsigned k = 0; k < 8; k++)
			bits |= (unsigned)(f[k] >> 7) << k;
	}
	return bits;
}
#endif

size_t board_rsp_escape(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *used)
{
	static const uint8_t special[256] = { ['#'] = 1, ['$'] = 1, ['}'] = 1, ['*'] = 1 };
	size_t o = 0, i = 0;

	/* A block at a time while it and an escape fit: the block is copied
	 * whole; at its first special byte the copy is cut, the byte escaped,
	 * and the next block starts after it. The result is the byte loops'
	 * below (every byte fits, so none is left for them to refuse). */
	while (n - i >= ESC_BLOCK && cap - o >= ESC_BLOCK + 2) {
		unsigned m = escape_block(in + i, out + o);
		unsigned k;

		if (!m) {
			i += ESC_BLOCK;
			o += ESC_BLOCK;
			continue;
		}
		k = (unsigned)__builtin_ctz(m);
		i += k;
		o += k;
		out[o++] = '}';
		out[o++] = in[i++] ^ 0x20;
	}
	/* While two more bytes fit, one room check per input byte. */
	while (i < n && cap - o >= 2) {
		uint8_t c = in[i++];

		if (special[c]) {
			out[o++] = '}';
			out[o++] = c ^ 0x20;
		} else {
			out[o++] = c;
		}
	}
	for (; i < n; i++) {
		uint8_t c = in[i];

		if (special[c]) {
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

uint32_t board_rsp_crc32(uint32_t crc, const uint8_t *buf, size_t n)
{
	return imp_crc32_msb(crc, buf, n);
}
