/*
 * Inside formats/: the members of identity and revocation records
 * (docs/RECORD.md), the one table every reader of a record checks against:
 * the reference reader (record.c: fmt_record_verify, fmt_revocation_verify),
 * the writer's self-check (record.c: fmt_record_build) and the fast path
 * (record_verify.c: fmt_rv_identity).
 */
#ifndef FORMATS_RECORD_INT_H
#define FORMATS_RECORD_INT_H

#include <stdbool.h>
#include <stddef.h>

/* What a member's value must be. */
enum fmt_member_kind {
	FMT_MK_STR,   /* a non-empty string */
	FMT_MK_HEX,   /* lowercase hex, an even number of digits, at least 2 */
	FMT_MK_HEX64, /* lowercase hex, exactly 64 digits (a SHA-256) */
	FMT_MK_INT,   /* an integer >= 0 */
	FMT_MK_BOOL,  /* true or false */
	FMT_MK_OBJ,   /* an object whose members are those of .sub */
};

struct fmt_member_table;

struct fmt_member {
	const char *name;
	size_t len;                         /* strlen(name) */
	enum fmt_member_kind kind;
	bool required;
	const struct fmt_member_table *sub; /* FMT_MK_OBJ: its members */
};

/* The members an object may have, sorted by name (the canonical order). */
struct fmt_member_table {
	const char *where;                  /* "record", "record.lock_state", ... */
	const struct fmt_member *m;
	size_t n;
};

extern const struct fmt_member_table fmt_identity_members;
extern const struct fmt_member_table fmt_revocation_members;

/* Member name of t, or NULL (name: n bytes, not NUL-terminated). */
const struct fmt_member *fmt_member_find(const struct fmt_member_table *t, const char *name,
					 size_t n);

/* s (n bytes) is lowercase hex: want_len digits exactly, or (want_len 0) an even number > 0. */
bool fmt_is_lower_hex(const char *s, size_t n, size_t want_len);

#endif
