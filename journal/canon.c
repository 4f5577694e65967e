/*
 * Journal: the canonical JSON text of event details and board data. The
 * bytes are those jansson's json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
 * JSON_ENCODE_ANY) writes (docs/JOURNAL.md "Events"): they are hashed
 * into the chain, so they never change; test_journal_canon compares the
 * two over varied values. Written here because the journal dumps a board's
 * whole data and an event detail at every state change, and json_dumps
 * spends most of its time per character and per sorted key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal_int.h"

/* Nesting deeper than this is refused (json_dumps has no limit but stops
 * on a loop, which this depth also stops). */
#define CANON_MAX_DEPTH 512
/* Members sorted on the stack up to this many, beyond on the heap. */
#define CANON_STACK_KEYS 32

struct canon {
	char *p;
	size_t n, cap;
	bool failed;
};

static bool grow(struct canon *c, size_t more)
{
	size_t cap = c->cap ? c->cap : 256;
	char *np;

	if (c->failed)
		return false;
	while (cap - c->n <= more) {
		if (cap > SIZE_MAX / 2) {
			c->failed = true;
			return false;
		}
		cap *= 2;
	}
	np = realloc(c->p, cap);
	if (!np) {
		c->failed = true;
		return false;
	}
	c->p = np;
	c->cap = cap;
	return true;
}

static void put(struct canon *c, const char *s, size_t n)
{
	if (c->cap - c->n <= n && !grow(c, n))
		return;
	memcpy(c->p + c->n, s, n);
	c->n += n;
}

static void put_c(struct canon *c, char ch)
{
	if (c->cap - c->n <= 1 && !grow(c, 1))
		return;
	c->p[c->n++] = ch;
}

/* Bytes a JSON string holds as they are: printable ASCII but '"' and '\'. */
static const uint8_t plain[256] = {
	[0x20] = 1, [0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1,
};

/* Length of the valid UTF-8 sequence at s (at most n bytes) that starts
 * with a byte >= 0x80, or 0: the rules of jansson's utf8_check_full (no
 * overlong form, no surrogate, nothing above U+10FFFF). */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint32_t v;
	size_t len, i;

	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2;
		v = s[0] & 0x1Fu;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3;
		v = s[0] & 0x0Fu;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4;
		v = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
		v = (v << 6) | (s[i] & 0x3Fu);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (len == 3 && v < 0x800) ||
	    (len == 4 && v < 0x10000))
		return 0;
	return len;
}

static void put_string(struct canon *c, const char *str, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const uint8_t *s = (const uint8_t *)str;
	size_t i = 0;

	put_c(c, '"');
	while (i < len && !c->failed) {
		size_t start = i, seq;
		char esc[6];

		while (i < len && plain[s[i]])
			i++;
		if (i > start)
			put(c, str + start, i - start);
		if (i == len)
			break;
		if (s[i] >= 0x80) {
			seq = utf8_seq(s + i, len - i);
			if (!seq) {
				c->failed = true; /* json_dumps fails too */
				return;
			}
			put(c, str + i, seq);
			i += seq;
			continue;
		}
		esc[0] = '\\';
		switch (s[i]) {
		case '"':
		case '\\':
			esc[1] = (char)s[i];
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default: /* another control character: \u00XX, upper case */
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[s[i] >> 4];
			esc[5] = hex[s[i] & 0xF];
			put(c, esc, 6);
			i++;
			continue;
		}
		put(c, esc, 2);
		i++;
	}
	put_c(c, '"');
}

static void put_int(struct canon *c, json_int_t v)
{
	char buf[24];
	size_t o = sizeof(buf);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		buf[--o] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		buf[--o] = '-';
	put(c, buf + o, sizeof(buf) - o);
}

struct canon_key {
	const char *key;
	size_t len;
	json_t *value;
};

/* jansson's order of sorted keys: bytes, then the shorter first. */
static int key_cmp(const struct canon_key *a, const struct canon_key *b)
{
	int r = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);

	if (r)
		return r;
	return a->len < b->len ? -1 : a->len > b->len;
}

static int key_cmp_q(const void *a, const void *b)
{
	return key_cmp(a, b);
}

static void put_value(struct canon *c, const json_t *v, int depth);

static void put_object(struct canon *c, const json_t *obj, int depth)
{
	struct canon_key stack_keys[CANON_STACK_KEYS], *keys = stack_keys;
	size_t n = json_object_size(obj), i = 0;
	void *it;

	if (n > CANON_STACK_KEYS) {
		keys = malloc(n * sizeof(*keys));
		if (!keys) {
			c->failed = true;
			return;
		}
	}
	for (it = json_object_iter((json_t *)obj); it && i < n;
	     it = json_object_iter_next((json_t *)obj, it)) {
		keys[i].key = json_object_iter_key(it);
		keys[i].len = json_object_iter_key_len(it);
		keys[i].value = json_object_iter_value(it);
		i++;
	}
	n = i;
	if (n > CANON_STACK_KEYS) {
		qsort(keys, n, sizeof(*keys), key_cmp_q);
	} else {
		for (i = 1; i < n; i++) { /* few keys: insertion sort */
			struct canon_key k = keys[i];
			size_t at = i;

			while (at > 0 && key_cmp(&keys[at - 1], &k) > 0) {
				keys[at] = keys[at - 1];
				at--;
			}
			keys[at] = k;
		}
	}
	put_c(c, '{');
	for (i = 0; i < n && !c->failed; i++) {
		if (i)
			put_c(c, ',');
		put_string(c, keys[i].key, keys[i].len);
		put_c(c, ':');
		put_value(c, keys[i].value, depth + 1);
	}
	put_c(c, '}');
	if (keys != stack_keys)
		free(keys);
}

static void put_value(struct canon *c, const json_t *v, int depth)
{
	if (!v || depth > CANON_MAX_DEPTH) {
		c->failed = true;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		put_object(c, v, depth);
		break;
	case JSON_ARRAY: {
		size_t n = json_array_size(v);

		put_c(c, '[');
		for (size_t i = 0; i < n && !c->failed; i++) {
			if (i)
				put_c(c, ',');
			put_value(c, json_array_get(v, i), depth + 1);
		}
		put_c(c, ']');
		break;
	}
	case JSON_STRING:
		put_string(c, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		put_int(c, json_integer_value(v));
		break;
	case JSON_REAL: {
		/* jansson's own: "%.17g", its locale and exponent rules */
		char *s = json_dumps(v, JSON_ENCODE_ANY);

		if (!s) {
			c->failed = true;
			return;
		}
		put(c, s, strlen(s));
		free(s);
		break;
	}
	case JSON_TRUE:
		put(c, "true", 4);
		break;
	case JSON_FALSE:
		put(c, "false", 5);
		break;
	case JSON_NULL:
		put(c, "null", 4);
		break;
	default:
		c->failed = true;
		break;
	}
}

char *jcanon_dump(const json_t *v)
{
	struct canon c = { 0 };

	if (!grow(&c, 0))
		return NULL;
	put_value(&c, v, 0);
	if (!c.failed)
		put_c(&c, '\0');
	if (c.failed) {
		free(c.p);
		return NULL;
	}
	return c.p;
}

static int member_cmp(const void *a, const void *b)
{
	const struct jcanon_member *x = a, *y = b;
	struct canon_key kx = { x->key, strlen(x->key), NULL };
	struct canon_key ky = { y->key, strlen(y->key), NULL };

	return key_cmp(&kx, &ky);
}

char *jcanon_object(const struct jcanon_member *m, size_t n)
{
	struct jcanon_member sorted[JCANON_MEMBERS_MAX];
	struct canon c = { 0 };

	if (n > JCANON_MEMBERS_MAX)
		return NULL;
	memcpy(sorted, m, n * sizeof(*m));
	qsort(sorted, n, sizeof(*sorted), member_cmp);
	if (!grow(&c, 0))
		return NULL;
	put_c(&c, '{');
	for (size_t i = 0; i < n && !c.failed; i++) {
		const struct jcanon_member *e = &sorted[i];

		if (i)
			put_c(&c, ',');
		put_string(&c, e->key, strlen(e->key));
		put_c(&c, ':');
		switch (e->type) {
		case JCM_STR:
			if (!e->s)
				c.failed = true; /* json_pack "s" refuses NULL */
			else
				put_string(&c, e->s, strlen(e->s));
			break;
		case JCM_STR_OR_NULL:
			if (e->s)
				put_string(&c, e->s, strlen(e->s));
			else
				put(&c, "null", 4);
			break;
		case JCM_INT:
			put_int(&c, e->i);
			break;
		case JCM_JSON:
			put_value(&c, e->v, 1);
			break;
		case JCM_JSON_OR_NULL:
			if (e->v)
				put_value(&c, e->v, 1);
			else
				put(&c, "null", 4);
			break;
		default:
			c.failed = true;
			break;
		}
	}
	put_c(&c, '}');
	if (!c.failed)
		put_c(&c, '\0');
	if (c.failed) {
		free(c.p);
		return NULL;
	}
	return c.p;
}
