/* Onboarding labels: QR code, manual code and serial (label.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <qrencode.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "dynlibs.h"
#include "label.h"

#define PX_PER_MODULE 6
#define QUIET_MODULES 4
#define FONT_SCALE 3
#define GLYPH_W 5
#define GLYPH_H 7

imp_err st_label_format_parse(const char *s, enum st_label_format *f)
{
	static const char *const names[] = { "png", "svg", "zpl" };

	for (size_t i = 0; i < IMP_ARRAY_SIZE(names); i++) {
		if (s && strcmp(s, names[i]) == 0) {
			*f = (enum st_label_format)i;
			return IMP_OK;
		}
	}
	return IMP_ERR_USAGE;
}

void st_label_group_digits(const char *manual, char *out, size_t cap)
{
	static const size_t groups[] = { 4, 3, 4, 5, 5 };
	size_t o = 0, i = 0, len = strlen(manual);

	for (size_t g = 0; g < IMP_ARRAY_SIZE(groups) && i < len; g++) {
		if (g && o + 1 < cap)
			out[o++] = '-';
		for (size_t k = 0; k < groups[g] && i < len && o + 1 < cap; k++)
			out[o++] = manual[i++];
	}
	if (cap)
		out[o < cap ? o : cap - 1] = '\0';
}

/* ------------------------------------------------------------ the buffer */

struct buf {
	uint8_t *p;
	size_t n, cap;
	bool failed;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->failed)
		return;
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		uint8_t *np;

		while (cap < b->n + n)
			cap *= 2;
		np = malloc(cap);
		if (!np) {
			b->failed = true;
			return;
		}
		if (b->p) {
			memcpy(np, b->p, b->n);
			imp_wipe(b->p, b->cap);
			free(b->p);
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		b->failed = true;
	else
		buf_add(b, tmp, (size_t)n);
	imp_wipe(tmp, sizeof(tmp));
}

static void buf_free(struct buf *b)
{
	if (b->p)
		imp_wipe(b->p, b->cap);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------- the font */

/* 5x7 dots, rows top to bottom, bit 4 the leftmost: 0-9, A-Z, '-'. */
static const uint8_t font[37][GLYPH_H] = {
	{ 0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E }, { 0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E },
	{ 0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F }, { 0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E },
	{ 0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02 }, { 0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E },
	{ 0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E }, { 0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 },
	{ 0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E }, { 0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C },
	{ 0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11 }, { 0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E },
	{ 0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E }, { 0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C },
	{ 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F }, { 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10 },
	{ 0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F }, { 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11 },
	{ 0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E }, { 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C },
	{ 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 }, { 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F },
	{ 0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11 }, { 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 },
	{ 0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E }, { 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10 },
	{ 0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D }, { 0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11 },
	{ 0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E }, { 0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 },
	{ 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E }, { 0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04 },
	{ 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A }, { 0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11 },
	{ 0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04 }, { 0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F },
	{ 0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00 },
};

static const uint8_t *glyph(char c)
{
	if (c >= '0' && c <= '9')
		return font[c - '0'];
	if (c >= 'A' && c <= 'Z')
		return font[10 + c - 'A'];
	if (c >= 'a' && c <= 'z')
		return font[10 + c - 'a'];
	if (c == '-')
		return font[36];
	return NULL; /* a blank */
}

static size_t text_px(const char *s)
{
	return strlen(s) * (GLYPH_W + 1) * FONT_SCALE;
}

/* Draw s in black on the grey image img (w pixels wide) at x, y. */
static void draw_text(uint8_t *img, size_t w, size_t x, size_t y, const char *s)
{
	for (; *s; s++, x += (GLYPH_W + 1) * FONT_SCALE) {
		const uint8_t *g = glyph(*s);

		if (!g)
			continue;
		for (size_t r = 0; r < GLYPH_H; r++)
			for (size_t c = 0; c < GLYPH_W; c++)
				if (g[r] >> (GLYPH_W - 1 - c) & 1u)
					for (size_t dy = 0; dy < FONT_SCALE; dy++)
						memset(img + (y + r * FONT_SCALE + dy) * w + x +
							       c * FONT_SCALE,
						       0, FONT_SCALE);
	}
}

/* --------------------------------------------------------------- formats */

static void png_write_cb(png_structp png, png_bytep data, png_size_t n)
{
	buf_add(png_get_io_ptr(png), data, n);
}

static void png_flush_cb(png_structp png)
{
	(void)png;
}

static imp_err render_png(const QRcode *q, const char *manual, const char *serial,
			  struct buf *out)
{
	size_t qr_px = ((size_t)q->width + 2 * QUIET_MODULES) * PX_PER_MODULE;
	size_t line_h = (GLYPH_H + 3) * FONT_SCALE, w = qr_px, h;
	size_t tw = text_px(manual) > text_px(serial) ? text_px(manual) : text_px(serial);
	png_structp png = NULL;
	png_infop info = NULL;
	uint8_t *img = NULL;
	png_bytep *rows = NULL;
	imp_err rc = IMP_ERR_NOMEM;

	if (tw + 2 * QUIET_MODULES * PX_PER_MODULE > w)
		w = tw + 2 * QUIET_MODULES * PX_PER_MODULE;
	h = qr_px + 2 * line_h + QUIET_MODULES * PX_PER_MODULE;
	img = malloc(w * h);
	rows = calloc(h, sizeof(*rows));
	if (!img || !rows)
		goto cleanup;
	memset(img, 0xFF, w * h);
	for (int y = 0; y < q->width; y++)
		for (int x = 0; x < q->width; x++)
			if (q->data[y * q->width + x] & 1)
				for (size_t dy = 0; dy < PX_PER_MODULE; dy++)
					memset(img + (((size_t)y + QUIET_MODULES) * PX_PER_MODULE + dy) *
							     w +
						       (w - qr_px) / 2 +
						       ((size_t)x + QUIET_MODULES) * PX_PER_MODULE,
					       0, PX_PER_MODULE);
	draw_text(img, w, (w - text_px(manual)) / 2, qr_px, manual);
	draw_text(img, w, (w - text_px(serial)) / 2, qr_px + line_h, serial);
	for (size_t y = 0; y < h; y++)
		rows[y] = img + y * w;
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	if (png)
		info = png_create_info_struct(png);
	if (!png || !info)
		goto cleanup;
	if (setjmp(png_jmpbuf(png))) {
		rc = IMP_ERR_INTERNAL;
		goto cleanup;
	}
	png_set_write_fn(png, out, png_write_cb, png_flush_cb);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	png_write_image(png, rows);
	png_write_end(png, NULL);
	rc = out->failed ? IMP_ERR_NOMEM : IMP_OK;
cleanup:
	png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
	if (img)
		imp_wipe(img, w * h);
	free(img);
	free(rows);
	return rc;
}

static void xml_text(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			buf_printf(b, "&lt;");
		else if (*s == '>')
			buf_printf(b, "&gt;");
		else if (*s == '&')
			buf_printf(b, "&amp;");
		else if (*s == '"')
			buf_printf(b, "&quot;");
		else
			buf_add(b, s, 1);
	}
}

static imp_err render_svg(const QRcode *q, const char *manual, const char *serial,
			  struct buf *out)
{
	int side = q->width + 2 * QUIET_MODULES, h = side + 6;

	buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		   "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">\n"
		   "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n<path fill=\"#000\" d=\"",
		   side * PX_PER_MODULE, h * PX_PER_MODULE, side, h, side, h);
	for (int y = 0; y < q->width; y++)
		for (int x = 0; x < q->width; x++)
			if (q->data[y * q->width + x] & 1)
				buf_printf(out, "M%d %dh1v1h-1z", x + QUIET_MODULES,
					   y + QUIET_MODULES);
	buf_printf(out, "\"/>\n<text x=\"%d\" y=\"%d\" font-family=\"monospace\" "
		   "font-size=\"2.4\" text-anchor=\"middle\">", side / 2, side + 1);
	xml_text(out, manual);
	buf_printf(out, "</text>\n<text x=\"%d\" y=\"%d\" font-family=\"monospace\" "
		   "font-size=\"2.4\" text-anchor=\"middle\">", side / 2, side + 4);
	xml_text(out, serial);
	buf_printf(out, "</text>\n</svg>\n");
	return out->failed ? IMP_ERR_NOMEM : IMP_OK;
}

/* ZPL II: ^BQN,2,6 is a model 2 QR code, magnification 6; its ^FD starts
 * with the error correction level and the input mode ("MA,": M, automatic). */
static imp_err render_zpl(const char *qr, const char *manual, const char *serial,
			  struct buf *out)
{
	if (strpbrk(serial, "^~") || strpbrk(manual, "^~"))
		return IMP_ERR_USAGE; /* ZPL's command prefixes */
	buf_printf(out, "^XA\n^CI28\n^FO40,30^BQN,2,6^FDMA,%s^FS\n", qr);
	buf_printf(out, "^FO40,260^A0N,34,34^FD%s^FS\n", manual);
	buf_printf(out, "^FO40,305^A0N,28,28^FD%s^FS\n^XZ\n", serial);
	return out->failed ? IMP_ERR_NOMEM : IMP_OK;
}

imp_err st_label_render(enum st_label_format f, const char *qr_payload, const char *manual,
			const char *serial, uint8_t **out, size_t *n)
{
	struct buf b = { 0 };
	QRcode *q = NULL;
	char grouped[32];
	imp_err rc;

	*out = NULL;
	*n = 0;
	st_label_group_digits(manual, grouped, sizeof(grouped));
	if (f != ST_LABEL_ZPL) {
		rc = st_label_load(f == ST_LABEL_PNG);
		if (rc)
			goto cleanup;
		q = QRcode_encodeString(qr_payload, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
		if (!q) {
			IMP_ERROR("label: the payload cannot be encoded as a qr code");
			rc = IMP_ERR_USAGE;
			goto cleanup;
		}
	}
	switch (f) {
	case ST_LABEL_PNG:
		rc = render_png(q, grouped, serial, &b);
		break;
	case ST_LABEL_SVG:
		rc = render_svg(q, grouped, serial, &b);
		break;
	case ST_LABEL_ZPL:
		rc = render_zpl(qr_payload, grouped, serial, &b);
		break;
	default:
		rc = IMP_ERR_USAGE;
		break;
	}
	if (rc == IMP_OK) {
		*out = b.p;
		*n = b.n;
		b.p = NULL;
	}
cleanup:
	if (q) {
		imp_wipe(q->data, (size_t)q->width * (size_t)q->width);
		QRcode_free(q);
	}
	imp_wipe(grouped, sizeof(grouped));
	buf_free(&b);
	return rc;
}
