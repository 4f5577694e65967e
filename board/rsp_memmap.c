/*
 * GDB memory map (qXfer:memory-map:read) parser: the subset of XML the
 * memory-map DTD uses, read without recursion and without trusting any
 * length. Format: docs/PROBES.md and GDB's gdb-memory-map.dtd:
 *
 *   <memory-map>
 *     <memory type="flash" start="0x0" length="0x100000">
 *       <property name="blocksize">0x1000</property>
 *     </memory>
 *     <memory type="ram" start="0x20000000" length="0x40000"/>
 *   </memory-map>
 */
#include <stdbool.h>
#include <string.h>

#include "board/rsp.h"

struct cur {
	const char *p, *end;
};

static bool at(const struct cur *c, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(c->end - c->p) >= n && memcmp(c->p, s, n) == 0;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static void skip_space(struct cur *c)
{
	while (c->p < c->end && is_space(*c->p))
		c->p++;
}

/* Skip past the first occurrence of s; false when it never comes. */
static bool skip_past(struct cur *c, const char *s)
{
	size_t n = strlen(s);

	while ((size_t)(c->end - c->p) >= n) {
		if (memcmp(c->p, s, n) == 0) {
			c->p += n;
			return true;
		}
		c->p++;
	}
	return false;
}

/* A number: decimal or 0x hex, nothing else, no overflow of 2^40. */
static bool parse_num(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	unsigned base = 10;

	while (n && is_space(s[0])) {
		s++;
		n--;
	}
	while (n && is_space(s[n - 1]))
		n--;
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i >= n)
		return false;
	for (; i < n; i++) {
		unsigned d;

		if (s[i] >= '0' && s[i] <= '9')
			d = (unsigned)(s[i] - '0');
		else if (base == 16 && s[i] >= 'a' && s[i] <= 'f')
			d = (unsigned)(s[i] - 'a' + 10);
		else if (base == 16 && s[i] >= 'A' && s[i] <= 'F')
			d = (unsigned)(s[i] - 'A' + 10);
		else
			return false;
		v = v * base + d;
		if (v > (1ull << 40))
			return false;
	}
	*out = v;
	return true;
}

struct attr {
	const char *name;
	size_t name_len;
	const char *val;
	size_t val_len;
};

/*
 * Read the attributes of a start tag (c just past its name) into a[]
 * (at most cap; more is malformed). Leaves c past '>' and sets
 * *self_closing for "/>". False when malformed.
 */
static bool read_attrs(struct cur *c, struct attr *a, size_t cap, size_t *na, bool *self_closing)
{
	*na = 0;
	*self_closing = false;
	for (;;) {
		const char *name;
		char q;

		skip_space(c);
		if (c->p >= c->end)
			return false;
		if (*c->p == '>') {
			c->p++;
			return true;
		}
		if (at(c, "/>")) {
			c->p += 2;
			*self_closing = true;
			return true;
		}
		name = c->p;
		while (c->p < c->end && (*c->p == '-' || *c->p == '_' || *c->p == ':' ||
					 (*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z') ||
					 (*c->p >= '0' && *c->p <= '9')))
			c->p++;
		if (c->p == name || *na >= cap)
			return false;
		a[*na].name = name;
		a[*na].name_len = (size_t)(c->p - name);
		skip_space(c);
		if (c->p >= c->end || *c->p != '=')
			return false;
		c->p++;
		skip_space(c);
		if (c->p >= c->end || (*c->p != '"' && *c->p != '\''))
			return false;
		q = *c->p++;
		a[*na].val = c->p;
		while (c->p < c->end && *c->p != q) {
			if (*c->p == '<')
				return false;
			c->p++;
		}
		if (c->p >= c->end)
			return false;
		a[*na].val_len = (size_t)(c->p - a[*na].val);
		c->p++;
		(*na)++;
	}
}

static const struct attr *find_attr(const struct attr *a, size_t na, const char *name)
{
	for (size_t i = 0; i < na; i++)
		if (a[i].name_len == strlen(name) && memcmp(a[i].name, name, a[i].name_len) == 0)
			return &a[i];
	return NULL;
}

static bool name_is(const struct cur *c, const char *name)
{
	size_t n = strlen(name);

	return (size_t)(c->end - c->p) > n && memcmp(c->p, name, n) == 0 &&
	       (is_space(c->p[n]) || c->p[n] == '>' || c->p[n] == '/');
}

/* The children of a <memory> element, up to its </memory>. */
static bool read_memory_body(struct cur *c, struct board_rsp_region *r)
{
	for (;;) {
		struct attr a[4];
		size_t na;
		bool sc;
		const struct attr *nm;
		const char *text;

		if (!skip_past(c, "<"))
			return false;
		if (at(c, "!--")) {
			if (!skip_past(c, "-->"))
				return false;
			continue;
		}
		if (at(c, "/memory")) {
			c->p += 7;
			skip_space(c);
			if (c->p >= c->end || *c->p != '>')
				return false;
			c->p++;
			return true;
		}
		if (!name_is(c, "property"))
			return false;
		c->p += 8;
		if (!read_attrs(c, a, 4, &na, &sc) || sc)
			return false;
		nm = find_attr(a, na, "name");
		text = c->p;
		if (!skip_past(c, "</property>"))
			return false;
		if (nm && nm->val_len == 9 && memcmp(nm->val, "blocksize", 9) == 0) {
			if (r->blocksize || !parse_num(text, (size_t)(c->p - 11 - text), &r->blocksize) ||
			    r->blocksize == 0)
				return false;
		}
		/* Other properties are allowed by the DTD and ignored. */
	}
}

int board_rsp_parse_memory_map(const char *xml, size_t n, struct board_rsp_region *out,
			       size_t cap, size_t *count)
{
	struct cur c = { xml, xml + n };
	size_t k = 0;
	bool in_map = false, closed = false;

	*count = 0;
	if (!xml)
		return -1;
	for (;;) {
		struct attr a[8];
		size_t na;
		bool sc;

		if (!skip_past(&c, "<"))
			break;
		if (at(&c, "?")) {
			if (!skip_past(&c, "?>"))
				return -1;
			continue;
		}
		if (at(&c, "!--")) {
			if (!skip_past(&c, "-->"))
				return -1;
			continue;
		}
		if (at(&c, "!")) {
			/* <!DOCTYPE ...>: no internal subset in a memory map. */
			while (c.p < c.end && *c.p != '>' && *c.p != '[')
				c.p++;
			if (c.p >= c.end || *c.p == '[')
				return -1;
			c.p++;
			continue;
		}
		if (name_is(&c, "memory-map")) {
			if (in_map || closed)
				return -1;
			c.p += 10;
			if (!read_attrs(&c, a, 8, &na, &sc))
				return -1;
			in_map = !sc;
			closed = sc;
			continue;
		}
		if (at(&c, "/memory-map")) {
			if (!in_map)
				return -1;
			in_map = false;
			closed = true;
			if (!skip_past(&c, ">"))
				return -1;
			continue;
		}
		if (name_is(&c, "memory")) {
			struct board_rsp_region r = { 0 };
			const struct attr *t, *s, *l;

			if (!in_map || k >= cap)
				return -1;
			c.p += 6;
			if (!read_attrs(&c, a, 8, &na, &sc))
				return -1;
			t = find_attr(a, na, "type");
			s = find_attr(a, na, "start");
			l = find_attr(a, na, "length");
			if (!t || !s || !l || !parse_num(s->val, s->val_len, &r.start) ||
			    !parse_num(l->val, l->val_len, &r.length))
				return -1;
			if (t->val_len == 3 && memcmp(t->val, "ram", 3) == 0)
				r.type = BOARD_RSP_MEM_RAM;
			else if (t->val_len == 3 && memcmp(t->val, "rom", 3) == 0)
				r.type = BOARD_RSP_MEM_ROM;
			else if (t->val_len == 5 && memcmp(t->val, "flash", 5) == 0)
				r.type = BOARD_RSP_MEM_FLASH;
			else
				return -1;
			if (!sc && !read_memory_body(&c, &r))
				return -1;
			if (r.length == 0 || r.start + r.length > 0x100000000ull)
				return -1;
			if (r.type == BOARD_RSP_MEM_FLASH &&
			    (r.blocksize == 0 || r.length % r.blocksize != 0))
				return -1;
			if (r.type != BOARD_RSP_MEM_FLASH)
				r.blocksize = 0;
			out[k++] = r;
			continue;
		}
		return -1;
	}
	if (!closed || in_map)
		return -1;
	*count = k;
	return 0;
}
