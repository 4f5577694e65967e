/*
 * One strict, table-driven JSON reader for imprint's data files: the
 * station configuration (formats/config.c), the target profiles
 * (board/profile.c) and the certificate profiles (formats/certprofile.c).
 *
 * A table lists an object's members, one row each: name, type, whether it
 * is required, its bounds or names, where it is stored (an offset into the
 * struct being filled, or a setter), and for an object or an array of
 * objects the table of the nested members. fmt_jr_object() walks a table
 * over one JSON object:
 *   - a key that has no row is refused ("unknown key (expected a, b, c)");
 *   - a missing required member is refused ("missing (expected ...)");
 *   - each present member is type-checked and stored in row order;
 *   - the table's finish hook then checks what spans members.
 * The first error stops the walk; its message names the full JSON path of
 * the value, e.g. "fixtures[2].probe: expected ...", and is kept in the
 * reader (fmt_jr.msg) for the caller to prefix with the file it read.
 *
 * Absent members are left as they are, so a caller fills its defaults
 * before the walk (or in a table's init hook).
 */
#ifndef FORMATS_JSONREAD_H
#define FORMATS_JSONREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "imprint/err.h"

#define FMT_JR_PATH_MAX 256u /* the longest JSON path kept (a longer one is cut) */
#define FMT_JR_MSG_MAX 512u  /* the longest message kept */

/* The reader: where it is in the document, and the first error. */
struct fmt_jr {
	char path[FMT_JR_PATH_MAX]; /* JSON path of the value being read ("" = top) */
	char msg[FMT_JR_MSG_MAX];   /* "PATH: what is wrong" of the first error */
	imp_err rc;                 /* that error, IMP_OK while none */
	void *ctx;                  /* the caller's, for its setters and hooks */
	/* While an element of a FMT_JR_ARRAY is read (its table's hooks
	 * included): the array's first element and this element's index. */
	void *elems;
	size_t index;
};

enum fmt_jr_type {
	FMT_JR_STR = 1, /* string without NUL bytes, non-empty unless
			   FMT_JR_EMPTY_OK: a malloc'ed copy in a char *
			   (the old value freed) */
	FMT_JR_BOOL,    /* true or false: a bool */
	FMT_JR_UINT,    /* integer min..max (FMT_JR_HEX: or a string of decimal
			   or 0x hex digits) in an unsigned field of size 1, 2,
			   4 or 8 (an int field holds 0..INT_MAX) */
	FMT_JR_ENUM,    /* one of names[].name: its value in a field of size
			   1, 2 or 4 */
	FMT_JR_FLAGS,   /* an array (min..max entries) of names[].name: their
			   values OR'ed into a field of size 1, 2 or 4 (FMT_JR_ONCE:
			   each name at most once) */
	FMT_JR_OBJECT,  /* an object read with sub; offset is added to the
			   base (0: sub's offsets are the same struct's) */
	FMT_JR_ARRAY,   /* an array of min..max objects, each read with sub
			   into a calloc'ed element of sub->size bytes: the
			   pointer at offset (NULL before), the count (size_t) at
			   count_offset */
	FMT_JR_ANY,     /* any value, left to the setter (or ignored without one) */
};

enum {
	FMT_JR_REQUIRED = 1u << 0, /* absent is an error */
	FMT_JR_EMPTY_OK = 1u << 1, /* STR: "" is a value */
	FMT_JR_NULLABLE = 1u << 2, /* null counts as absent */
	FMT_JR_HEX = 1u << 3,      /* UINT: also "0x1F" / "31" strings */
	FMT_JR_ONCE = 1u << 4,     /* FLAGS: no name twice */
};

/* A name and the value it stands for (ENUM, FLAGS); NULL name ends a list. */
struct fmt_jr_name {
	const char *name;
	uint32_t value;
};

struct fmt_jr_table;
struct fmt_jr_field;

/*
 * A setter stores a member itself. It is called with the reader's path on
 * the member, after the walker's type check (none for FMT_JR_ANY), with
 * v the member's value and obj the struct being filled (the table's base).
 * It returns IMP_OK or the error of fmt_jr_fail / fmt_jr_expected.
 */
typedef imp_err (*fmt_jr_set_fn)(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
				 void *obj);

struct fmt_jr_field {
	const char *name;        /* NULL ends a table's rows */
	enum fmt_jr_type type;
	unsigned flags;          /* FMT_JR_* above */
	size_t offset;           /* where the value goes in obj (not with a setter) */
	size_t size;             /* the field's size there; 0 = checked, not stored */
	size_t count_offset;     /* ARRAY: the size_t count */
	uint64_t min, max;       /* UINT: bounds; FLAGS, ARRAY: entries (max 0 = any) */
	const struct fmt_jr_name *names; /* ENUM, FLAGS */
	const struct fmt_jr_table *sub;  /* OBJECT, ARRAY */
	fmt_jr_set_fn set;       /* stores the value instead of offset/size */
	const char *expect;      /* what a good value is, for messages
				    ("a fixture name"); NULL: said from the type */
};

struct fmt_jr_table {
	const struct fmt_jr_field *fields;
	size_t size;             /* ARRAY elements: bytes of one */
	/* Before the members are read (an array element: after calloc):
	 * defaults. May be NULL. */
	void (*init)(void *obj);
	/* After every member was read: checks across members, with the
	 * reader's path on the object and o its JSON. May be NULL. */
	imp_err (*finish)(struct fmt_jr *r, json_t *o, void *obj);
};

/* Put a member's offset and size in a row: FMT_JR_AT(struct x, a.b). */
#define FMT_JR_AT(type, member) \
	.offset = offsetof(type, member), .size = sizeof(((type *)0)->member)

/* A reader at the top of a document; ctx is handed to setters and hooks. */
void fmt_jr_init(struct fmt_jr *r, void *ctx);

/*
 * Walk table over the object o into obj (the reader's path names o; ""
 * at the top, where a non-object is "(top level): expected an object").
 * IMP_OK, IMP_ERR_CONFIG with r->msg, or IMP_ERR_NOMEM.
 */
imp_err fmt_jr_object(struct fmt_jr *r, json_t *o, const struct fmt_jr_table *table, void *obj);

/* Refuse every key of o that names no row of fields (or, with fields
 * NULL, is not in names). */
imp_err fmt_jr_keys(struct fmt_jr *r, json_t *o, const struct fmt_jr_field *fields,
		    const struct fmt_jr_name *names);

/*
 * Read one number the way a FMT_JR_UINT row does (flags: FMT_JR_HEX; f's
 * min, max and expect), for setters that take a number among other forms.
 */
imp_err fmt_jr_uint(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, uint64_t *out);

/* The path: push a member key or an array index; pop back to a mark. */
size_t fmt_jr_push_key(struct fmt_jr *r, const char *key);
size_t fmt_jr_push_index(struct fmt_jr *r, size_t index);
void fmt_jr_pop(struct fmt_jr *r, size_t mark);

/*
 * Record an error at the path (key, if not NULL, is appended to it for the
 * message only): "PATH: message". Returns IMP_ERR_CONFIG.
 */
imp_err fmt_jr_fail(struct fmt_jr *r, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "PATH: expected " and f's expect text. Returns IMP_ERR_CONFIG. */
imp_err fmt_jr_expected(struct fmt_jr *r, const struct fmt_jr_field *f);
/* For setters: replace *dst with a malloc'ed copy of s (the old value
 * freed). IMP_OK or fmt_jr_oom's IMP_ERR_NOMEM. */
imp_err fmt_jr_set_str(struct fmt_jr *r, char **dst, const char *s);
/* Out of memory. Returns IMP_ERR_NOMEM. */
imp_err fmt_jr_oom(struct fmt_jr *r);

#endif
