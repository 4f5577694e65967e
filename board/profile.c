/*
 * Target profiles: strict JSON parser (errors name the field path) and the
 * register-sequence interpreter. Format: docs/PROFILES.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "board/agent.h"
#include "board/profile.h"
#include "board/rsp.h"
#include "imprint/log.h"
#include "imprint/util.h"

#ifndef IMPRINT_SOURCE_DIR
#define IMPRINT_SOURCE_DIR "."
#endif

/* ---- variables ---------------------------------------------------------- */

imp_err board_profile_var_set(struct board_profile_vars *vars, const char *name, uint32_t value)
{
	if (strlen(name) >= sizeof(vars->v[0].name))
		return IMP_ERR_INTERNAL;
	for (size_t i = 0; i < vars->n; i++)
		if (strcmp(vars->v[i].name, name) == 0) {
			vars->v[i].value = value;
			return IMP_OK;
		}
	if (vars->n >= BOARD_PROFILE_MAX_VARS)
		return IMP_ERR_INTERNAL;
	strcpy(vars->v[vars->n].name, name);
	vars->v[vars->n].value = value;
	vars->n++;
	return IMP_OK;
}

int board_profile_var_get(const struct board_profile_vars *vars, const char *name,
			  uint32_t *value)
{
	if (!vars)
		return -1;
	for (size_t i = 0; i < vars->n && i < BOARD_PROFILE_MAX_VARS; i++)
		if (strcmp(vars->v[i].name, name) == 0) {
			*value = vars->v[i].value;
			return 0;
		}
	return -1;
}

/* ---- parsing ------------------------------------------------------------ */

struct pctx {
	const char *source;
	char path[256];
};

static imp_err perr(const struct pctx *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static imp_err perr(const struct pctx *c, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	IMP_ERROR("profile %s: %s%s%s: %s", c->source, c->path, *c->path && field ? "." : "",
		  field ? field : "", msg);
	return IMP_ERR_CONFIG;
}

/* Push ".name" or "[i]" on the path; returns the old length to pop to. */
static size_t push(struct pctx *c, const char *name, long idx)
{
	size_t old = strlen(c->path);

	if (name)
		snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", name);
	else
		snprintf(c->path + old, sizeof(c->path) - old, "[%ld]", idx);
	return old;
}

static void pop(struct pctx *c, size_t old)
{
	c->path[old] = '\0';
}

/* Every key of obj must be in allowed (NULL-terminated). */
static imp_err only_keys(struct pctx *c, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		bool ok = false;

		(void)v;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				ok = true;
		if (!ok) {
			char list[200] = "";

			for (size_t i = 0; allowed[i]; i++) {
				strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
				strncat(list, allowed[i], sizeof(list) - strlen(list) - 1);
			}
			return perr(c, key, "unknown key (allowed: %s)", list);
		}
	}
	return IMP_OK;
}

static imp_err get_obj(struct pctx *c, json_t *parent, const char *key, bool required, json_t **out)
{
	json_t *v = json_object_get(parent, key);

	*out = NULL;
	if (!v) {
		if (required)
			return perr(c, key, "required object missing");
		return IMP_OK;
	}
	if (!json_is_object(v))
		return perr(c, key, "expected an object");
	*out = v;
	return IMP_OK;
}

static imp_err get_str(struct pctx *c, json_t *parent, const char *key, bool required, char **out)
{
	json_t *v = json_object_get(parent, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return perr(c, key, "required string missing");
		return IMP_OK;
	}
	if (!json_is_string(v))
		return perr(c, key, "expected a string");
	*out = strdup(json_string_value(v));
	return *out ? IMP_OK : IMP_ERR_NOMEM;
}

static imp_err get_bool(struct pctx *c, json_t *parent, const char *key, bool required, bool dflt,
			bool *out)
{
	json_t *v = json_object_get(parent, key);

	*out = dflt;
	if (!v) {
		if (required)
			return perr(c, key, "required true/false missing");
		return IMP_OK;
	}
	if (!json_is_boolean(v))
		return perr(c, key, "expected true or false");
	*out = json_is_true(v);
	return IMP_OK;
}

/* A 32-bit number: JSON integer, or a string "0x1F..." / "123". */
static imp_err parse_u32(struct pctx *c, const char *key, json_t *v, uint32_t *out)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < 0 || i > 0xFFFFFFFFll)
			return perr(c, key, "number out of range 0..0xFFFFFFFF");
		*out = (uint32_t)i;
		return IMP_OK;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end = NULL;
		unsigned long long x;

		if (!*s || *s == '-' || *s == ' ' || *s == '+')
			return perr(c, key, "expected a number, got \"%s\"", s);
		errno = 0;
		x = strtoull(s, &end, 0);
		if (errno || *end || x > 0xFFFFFFFFull)
			return perr(c, key, "expected a number (decimal or 0x hex) up to 0xFFFFFFFF, "
				    "got \"%s\"", s);
		*out = (uint32_t)x;
		return IMP_OK;
	}
	return perr(c, key, "expected a number or a \"0x...\" string");
}

static imp_err get_u32(struct pctx *c, json_t *parent, const char *key, bool required,
		       uint32_t dflt, uint32_t *out)
{
	json_t *v = json_object_get(parent, key);

	*out = dflt;
	if (!v) {
		if (required)
			return perr(c, key, "required number missing");
		return IMP_OK;
	}
	return parse_u32(c, key, v, out);
}

static bool valid_ident(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* A step value: number, or "$var". */
static imp_err get_value(struct pctx *c, json_t *step, const char *key, bool required,
			 struct board_profile_value *out)
{
	json_t *v = json_object_get(step, key);

	memset(out, 0, sizeof(*out));
	if (!v) {
		if (required)
			return perr(c, key, "required value missing");
		return IMP_OK;
	}
	if (json_is_string(v) && json_string_value(v)[0] == '$') {
		const char *name = json_string_value(v) + 1;

		if (!valid_ident(name, sizeof(out->var)))
			return perr(c, key, "bad variable name \"%s\" (lowercase, digits, _)",
				    json_string_value(v));
		strcpy(out->var, name);
		return IMP_OK;
	}
	return parse_u32(c, key, v, &out->num);
}

#define WRITE_KEYS "irreversible", "permanent", "resets", "fuse", "requires"

static const struct {
	const char *name;
	enum board_profile_op op;
	const char *const keys[17];
	const char *const required[4];
} ops[] = {
	{ "write32", BOARD_OP_WRITE32, { "op", "addr", "value", "ap", "if", "unless", "comment", WRITE_KEYS, NULL }, { "addr", "value", NULL } },
	{ "read32", BOARD_OP_READ32, { "op", "addr", "var", "ap", "if", "unless", "comment", NULL }, { "addr", "var", NULL } },
	{ "poll32", BOARD_OP_POLL32, { "op", "addr", "mask", "value", "timeout_ms", "error", "ap", "if", "unless", "comment", NULL }, { "addr", "mask", "value", NULL } },
	{ "check32", BOARD_OP_CHECK32, { "op", "addr", "mask", "value", "error", "ap", "if", "unless", "comment", NULL }, { "addr", "mask", "value", NULL } },
	{ "reset", BOARD_OP_RESET, { "op", "if", "unless", "comment", NULL }, { NULL } },
	{ "halt", BOARD_OP_HALT, { "op", "if", "unless", "comment", NULL }, { NULL } },
	{ "delay", BOARD_OP_DELAY, { "op", "us", "if", "unless", "comment", NULL }, { "us", NULL } },
	{ "select32", BOARD_OP_SELECT32, { "op", "addr", "mask", "var", "cases", "default", "error", "ap", "if", "unless", "comment", NULL }, { "addr", "var", "cases", NULL } },
	{ "modify32", BOARD_OP_MODIFY32, { "op", "addr", "mask", "value", "if", "unless", "comment", WRITE_KEYS, NULL }, { "addr", "mask", "value", NULL } },
};

const char *board_profile_op_name(enum board_profile_op op)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(ops); i++)
		if (ops[i].op == op)
			return ops[i].name;
	return "?";
}

/* "$name" of an "if"/"unless"/"fuse" key into out. */
static imp_err get_var_key(struct pctx *c, json_t *js, const char *key, bool dollar, char *out,
			   size_t cap)
{
	json_t *v = json_object_get(js, key);
	const char *t;

	if (!v)
		return IMP_OK;
	t = json_is_string(v) ? json_string_value(v) : NULL;
	if (t && dollar && t[0] == '$')
		t++;
	else if (dollar)
		t = NULL;
	if (!t || !valid_ident(t, cap))
		return perr(c, key, dollar ? "expected \"$variable\"" :
			    "expected a name (lowercase, digits, _)");
	strcpy(out, t);
	return IMP_OK;
}

/* "cases": [[value, result], ...] of a select32 step. */
static imp_err parse_cases(struct pctx *c, json_t *arr, struct board_profile_step *st)
{
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > BOARD_PROFILE_MAX_CASES)
		return perr(c, "cases", "expected 1..%u pairs [value, result]",
			    BOARD_PROFILE_MAX_CASES);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *pair = json_array_get(arr, i);
		imp_err rc;

		if (!json_is_array(pair) || json_array_size(pair) != 2)
			return perr(c, "cases", "[%zu]: expected a pair [value, result]", i);
		rc = parse_u32(c, "cases", json_array_get(pair, 0), &st->cases[i].value);
		if (rc == IMP_OK)
			rc = parse_u32(c, "cases", json_array_get(pair, 1), &st->cases[i].result);
		if (rc != IMP_OK)
			return rc;
		for (size_t k = 0; k < i; k++)
			if (st->cases[k].value == st->cases[i].value)
				return perr(c, "cases", "[%zu]: value 0x%x listed twice", i,
					    st->cases[i].value);
		st->n_cases = i + 1;
	}
	return IMP_OK;
}

static imp_err parse_step(struct pctx *c, json_t *js, struct board_profile_step *st)
{
	json_t *opv;
	const char *opname;
	size_t oi;
	imp_err rc;

	if (!json_is_object(js))
		return perr(c, NULL, "expected a step object {\"op\": ...}");
	opv = json_object_get(js, "op");
	if (!opv || !json_is_string(opv))
		return perr(c, "op", "required string missing (write32, read32, poll32, check32, "
			    "reset, halt, delay, select32, modify32)");
	opname = json_string_value(opv);
	for (oi = 0; oi < IMP_ARRAY_SIZE(ops); oi++)
		if (strcmp(ops[oi].name, opname) == 0)
			break;
	if (oi == IMP_ARRAY_SIZE(ops))
		return perr(c, "op", "unknown op \"%s\" (write32, read32, poll32, check32, reset, "
			    "halt, delay, select32, modify32)", opname);
	rc = only_keys(c, js, ops[oi].keys);
	if (rc != IMP_OK)
		return rc;
	for (size_t k = 0; ops[oi].required[k]; k++)
		if (!json_object_get(js, ops[oi].required[k]))
			return perr(c, ops[oi].required[k], "required for op %s", opname);
	st->op = ops[oi].op;
	rc = get_value(c, js, "addr", false, &st->addr);
	if (rc == IMP_OK)
		rc = get_value(c, js, "value", false, &st->value);
	if (rc == IMP_OK)
		rc = get_value(c, js, "mask", false, &st->mask);
	if (rc == IMP_OK)
		rc = get_u32(c, js, "timeout_ms", false, 1000, &st->timeout_ms);
	if (rc == IMP_OK && (st->timeout_ms == 0 || st->timeout_ms > 600000))
		rc = perr(c, "timeout_ms", "must be 1..600000");
	if (rc == IMP_OK)
		rc = get_u32(c, js, "us", false, 0, &st->us);
	if (rc == IMP_OK && st->us > 10000000)
		rc = perr(c, "us", "at most 10000000 (10 s)");
	if (rc == IMP_OK)
		rc = get_str(c, js, "error", false, &st->error);
	if (rc == IMP_OK && json_object_get(js, "var")) {
		json_t *v = json_object_get(js, "var");

		if (!json_is_string(v) || !valid_ident(json_string_value(v), sizeof(st->var)))
			return perr(c, "var", "expected a variable name (lowercase, digits, _)");
		strcpy(st->var, json_string_value(v));
	}
	if (rc == IMP_OK && json_object_get(js, "comment") &&
	    !json_is_string(json_object_get(js, "comment")))
		rc = perr(c, "comment", "expected a string");
	st->ap = -1;
	if (rc == IMP_OK && json_object_get(js, "ap")) {
		uint32_t ap = 0;

		rc = get_u32(c, js, "ap", false, 0, &ap);
		if (rc == IMP_OK && ap > 255)
			rc = perr(c, "ap", "access port numbers are 0..255");
		st->ap = (int)ap;
		if (rc == IMP_OK && (st->addr.var[0] || st->addr.num > 0xFFC || st->addr.num % 4))
			rc = perr(c, "addr", "with \"ap\", addr is a register offset 0..0xFFC, "
				  "a multiple of 4");
	}
	if (rc == IMP_OK)
		rc = get_var_key(c, js, "if", true, st->if_var, sizeof(st->if_var));
	if (rc == IMP_OK)
		rc = get_var_key(c, js, "unless", true, st->unless_var, sizeof(st->unless_var));
	if (rc == IMP_OK)
		rc = get_str(c, js, "irreversible", false, &st->irreversible);
	if (rc == IMP_OK)
		rc = get_bool(c, js, "permanent", false, false, &st->permanent);
	if (rc == IMP_OK)
		rc = get_bool(c, js, "resets", false, false, &st->resets);
	if (rc == IMP_OK)
		rc = get_var_key(c, js, "fuse", false, st->fuse, sizeof(st->fuse));
	if (rc == IMP_OK && json_object_get(js, "requires")) {
		json_t *a = json_object_get(js, "requires");

		if (!json_is_array(a) || json_array_size(a) == 0 ||
		    json_array_size(a) > BOARD_PROFILE_MAX_REQUIRES)
			return perr(c, "requires", "expected 1..%u fuse names",
				    BOARD_PROFILE_MAX_REQUIRES);
		for (size_t k = 0; k < json_array_size(a); k++) {
			json_t *e = json_array_get(a, k);

			if (!json_is_string(e) || !valid_ident(json_string_value(e), 24))
				return perr(c, "requires", "[%zu]: expected a fuse name", k);
			strcpy(st->requires[k], json_string_value(e));
			st->n_requires = k + 1;
		}
	}
	if (rc == IMP_OK && (st->permanent || st->n_requires) && !st->irreversible)
		rc = perr(c, st->permanent ? "permanent" : "requires",
			  "only on an irreversible write (add \"irreversible\": \"what it does\")");
	if (rc == IMP_OK && st->op == BOARD_OP_SELECT32) {
		rc = parse_cases(c, json_object_get(js, "cases"), st);
		if (rc == IMP_OK && json_object_get(js, "default")) {
			st->has_default = true;
			rc = get_u32(c, js, "default", false, 0, &st->dflt);
		}
		if (rc == IMP_OK && !json_object_get(js, "mask"))
			st->mask.num = 0xFFFFFFFFu;
	}
	return rc;
}

static imp_err parse_seqs(struct pctx *c, json_t *obj, struct board_profile *p)
{
	const char *key;
	json_t *arr;
	size_t i = 0;

	p->seqs = calloc(json_object_size(obj) + 1, sizeof(*p->seqs));
	if (!p->seqs)
		return IMP_ERR_NOMEM;
	json_object_foreach(obj, key, arr) {
		struct board_profile_seq *s = &p->seqs[i];
		size_t old = push(c, key, 0);
		imp_err rc = IMP_OK;

		if (!valid_ident(key, 64))
			return perr(c, NULL, "sequence names are lowercase, digits and _");
		if (!json_is_array(arr) || json_array_size(arr) == 0)
			return perr(c, NULL, "expected a non-empty array of steps");
		s->name = strdup(key);
		s->steps = calloc(json_array_size(arr), sizeof(*s->steps));
		if (!s->name || !s->steps)
			return IMP_ERR_NOMEM;
		p->n_seqs = ++i;
		for (size_t k = 0; k < json_array_size(arr); k++) {
			size_t o2 = push(c, NULL, (long)k);

			rc = parse_step(c, json_array_get(arr, k), &s->steps[k]);
			if (rc != IMP_OK)
				return rc;
			s->n_steps = k + 1;
			pop(c, o2);
		}
		pop(c, old);
	}
	return IMP_OK;
}

static imp_err parse_regions(struct pctx *c, json_t *arr, struct board_profile *p)
{
	static const char *const keys[] = { "name", "kind", "base", "size", "page", "comment", NULL };
	static const char *const kinds[] = { "flash", "ram", "otp", "rom", "regs", NULL };

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return perr(c, NULL, "expected a non-empty array of regions");
	p->regions = calloc(json_array_size(arr), sizeof(*p->regions));
	if (!p->regions)
		return IMP_ERR_NOMEM;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct board_profile_region *r = &p->regions[i];
		json_t *js = json_array_get(arr, i);
		size_t old = push(c, NULL, (long)i);
		bool kind_ok = false;
		imp_err rc;

		if (!json_is_object(js))
			return perr(c, NULL, "expected a region object");
		p->n_regions = i + 1;
		rc = only_keys(c, js, keys);
		if (rc == IMP_OK)
			rc = get_str(c, js, "name", true, &r->name);
		if (rc == IMP_OK)
			rc = get_str(c, js, "kind", true, &r->kind);
		if (rc == IMP_OK)
			rc = get_u32(c, js, "base", true, 0, &r->base);
		if (rc == IMP_OK)
			rc = get_u32(c, js, "size", true, 0, &r->size);
		if (rc == IMP_OK)
			rc = get_u32(c, js, "page", false, 0, &r->page);
		if (rc != IMP_OK)
			return rc;
		for (size_t k = 0; kinds[k]; k++)
			if (strcmp(r->kind, kinds[k]) == 0)
				kind_ok = true;
		if (!kind_ok)
			return perr(c, "kind", "unknown kind \"%s\" (flash, ram, otp, rom, regs)",
				    r->kind);
		if (r->size == 0 || (uint64_t)r->base + r->size > 0x100000000ull)
			return perr(c, "size", "must be > 0 and end within 4 GiB");
		if (strcmp(r->kind, "flash") == 0 &&
		    (r->page == 0 || (r->page & (r->page - 1)) || r->size % r->page))
			return perr(c, "page", "flash needs a power-of-two page that divides size");
		for (size_t k = 0; k < i; k++)
			if (strcmp(p->regions[k].name, r->name) == 0)
				return perr(c, "name", "duplicate region \"%s\"", r->name);
		pop(c, old);
	}
	return IMP_OK;
}

static const struct {
	const char *name;
	uint32_t bit;
} fuse_names[] = {
	{ "debug_lock", WIRE_FUSE_DEBUG_LOCK },
	{ "boot_lock", WIRE_FUSE_BOOT_LOCK },
};

/* ---- fatal combinations -------------------------------------------------- */

const char *const board_profile_rules[] = {
	"lock-before-firmware",
	"permanent-without-opt-in",
	"missing-companion",
	"lock-unverified",
	NULL,
};

static imp_err rule_err(const struct pctx *c, const char *rule, const char *seq, size_t i,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static imp_err rule_err(const struct pctx *c, const char *rule, const char *seq, size_t i,
			const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (seq)
		IMP_ERROR("profile %s: refused by rule %s: sequences.%s[%zu]: %s", c->source, rule,
			  seq, i, msg);
	else
		IMP_ERROR("profile %s: refused by rule %s: %s", c->source, rule, msg);
	return IMP_ERR_CONFIG;
}

/* The companion c runs whenever step s does: unconditionally, or under the same condition. */
static bool runs_with(const struct board_profile_step *c, const struct board_profile_step *s)
{
	if (!c->if_var[0] && !c->unless_var[0])
		return true;
	return strcmp(c->if_var, s->if_var) == 0 && strcmp(c->unless_var, s->unless_var) == 0;
}

/* The fatal combinations (board_profile_rules, docs/PROFILES.md). */
static imp_err check_rules(const struct pctx *c, const struct board_profile *p, bool has_verify)
{
	bool irreversible = false;

	for (size_t si = 0; si < p->n_seqs; si++) {
		const struct board_profile_seq *s = &p->seqs[si];

		for (size_t i = 0; i < s->n_steps; i++) {
			const struct board_profile_step *st = &s->steps[i];

			if (!st->irreversible)
				continue;
			irreversible = true;
			if (strcmp(s->name, "fuse_burn") != 0)
				return rule_err(c, "lock-before-firmware", s->name, i,
						"an irreversible write (%s) in '%s', which the station "
						"runs before the firmware digest is verified; such "
						"writes belong in fuse_burn, run at LOCK", st->irreversible,
						s->name);
			if (st->permanent && !p->permanent_lock_allowed)
				return rule_err(c, "permanent-without-opt-in", s->name, i,
						"a permanent write (%s) without the profile's opt-in; "
						"add \"permanent_lock\": {\"allowed\": true} only if every "
						"board of this product is to be closed for good",
						st->irreversible);
			if (st->permanent && strcmp(st->if_var, "permanent") != 0)
				return rule_err(c, "permanent-without-opt-in", s->name, i,
						"a permanent write (%s) not under \"if\": \"$permanent\", "
						"so it would run without the supervisor's confirmation",
						st->irreversible);
			for (size_t r = 0; r < st->n_requires; r++) {
				bool found = false;

				for (size_t k = 0; k < s->n_steps && !found; k++)
					found = k != i && s->steps[k].irreversible &&
						strcmp(s->steps[k].fuse, st->requires[r]) == 0 &&
						runs_with(&s->steps[k], st);
				if (!found)
					return rule_err(c, "missing-companion", s->name, i,
							"'%s' must be written with '%s' (its inverse or "
							"companion), but %s does not write '%s' whenever "
							"it writes this", st->fuse[0] ? st->fuse :
							st->irreversible, st->requires[r], s->name,
							st->requires[r]);
			}
		}
	}
	if ((p->fuse_mask || irreversible) && !has_verify)
		return rule_err(c, "lock-unverified", NULL, 0,
				"the profile burns fuses but has no lock_verify: a lock is only "
				"ever concluded from the chip, from outside, after the reset");
	return IMP_OK;
}

static imp_err parse_profile(struct pctx *c, json_t *root, struct board_profile *p)
{
	static const char *const top[] = { "format", "name", "description", "note",
		"hardware_tested", "uid", "memory", "flash", "fuses", "lock_verify", "agent",
		"sequences", "connect", "permanent_lock", NULL };
	static const char *const connect_keys[] = { "reset", "comment", NULL };
	static const char *const uid_keys[] = { "addr", "len", "comment", NULL };
	static const char *const flash_keys[] = { "program_unit", "program_chunk", NULL };
	static const char *const fuse_keys[] = { "supported", "comment", NULL };
	static const char *const lock_keys[] = { "reset", "uid_read", "refused_read",
		"agent_lifecycle", "comment", NULL };
	static const char *const refused_keys[] = { "addr", "len", "comment", NULL };
	static const char *const perm_keys[] = { "allowed", "comment", NULL };
	static const char *const agent_keys[] = { "baud", "protocol", "image", "slots", NULL };
	static const char *const slot_keys[] = { "device", "psk", NULL };
	json_t *o, *v;
	char *s = NULL;
	size_t old;
	imp_err rc;

	if (!json_is_object(root))
		return perr(c, NULL, "the file must hold one JSON object");
	rc = only_keys(c, root, top);
	if (rc != IMP_OK)
		return rc;
	rc = get_str(c, root, "format", true, &s);
	if (rc != IMP_OK)
		return rc;
	if (strcmp(s, BOARD_PROFILE_FORMAT) != 0) {
		rc = perr(c, "format", "\"%s\" is not \"%s\"", s, BOARD_PROFILE_FORMAT);
		free(s);
		return rc;
	}
	free(s);
	if ((rc = get_str(c, root, "name", true, &p->name)) != IMP_OK ||
	    (rc = get_str(c, root, "description", true, &p->description)) != IMP_OK ||
	    (rc = get_str(c, root, "note", false, &p->note)) != IMP_OK ||
	    (rc = get_bool(c, root, "hardware_tested", true, false, &p->hardware_tested)) != IMP_OK)
		return rc;

	if ((rc = get_obj(c, root, "uid", true, &o)) != IMP_OK)
		return rc;
	old = push(c, "uid", 0);
	if ((rc = only_keys(c, o, uid_keys)) != IMP_OK ||
	    (rc = get_u32(c, o, "addr", true, 0, &p->uid_addr)) != IMP_OK ||
	    (rc = get_u32(c, o, "len", true, 0, &p->uid_len)) != IMP_OK)
		return rc;
	if (p->uid_len == 0 || p->uid_len > 64)
		return perr(c, "len", "must be 1..64 bytes");
	pop(c, old);

	v = json_object_get(root, "memory");
	if (!v)
		return perr(c, "memory", "required array missing");
	old = push(c, "memory", 0);
	if ((rc = parse_regions(c, v, p)) != IMP_OK)
		return rc;
	pop(c, old);

	if ((rc = get_obj(c, root, "flash", false, &o)) != IMP_OK)
		return rc;
	p->program_unit = 4;
	p->program_chunk = 1024;
	if (o) {
		old = push(c, "flash", 0);
		if ((rc = only_keys(c, o, flash_keys)) != IMP_OK ||
		    (rc = get_u32(c, o, "program_unit", false, 4, &p->program_unit)) != IMP_OK ||
		    (rc = get_u32(c, o, "program_chunk", false, 1024, &p->program_chunk)) != IMP_OK)
			return rc;
		if (p->program_unit == 0 || p->program_unit > 256 ||
		    (p->program_unit & (p->program_unit - 1)))
			return perr(c, "program_unit", "must be a power of two up to 256");
		if (p->program_chunk < p->program_unit || p->program_chunk > 65536 ||
		    p->program_chunk % p->program_unit)
			return perr(c, "program_chunk", "must be a multiple of program_unit, at most 65536");
		pop(c, old);
	}

	if ((rc = get_obj(c, root, "fuses", false, &o)) != IMP_OK)
		return rc;
	if (o) {
		old = push(c, "fuses", 0);
		if ((rc = only_keys(c, o, fuse_keys)) != IMP_OK)
			return rc;
		v = json_object_get(o, "supported");
		if (!v || !json_is_array(v))
			return perr(c, "supported", "expected an array of fuse names");
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *e = json_array_get(v, i);
			bool ok = false;

			for (size_t k = 0; json_is_string(e) && k < IMP_ARRAY_SIZE(fuse_names); k++)
				if (strcmp(json_string_value(e), fuse_names[k].name) == 0) {
					p->fuse_mask |= fuse_names[k].bit;
					ok = true;
				}
			if (!ok) {
				size_t o2 = push(c, "supported", 0);

				(void)o2;
				return perr(c, NULL, "[%zu]: unknown fuse (debug_lock, boot_lock)", i);
			}
		}
		pop(c, old);
	}

	if ((rc = get_obj(c, root, "lock_verify", false, &o)) != IMP_OK)
		return rc;
	if (o) {
		char *lc = NULL, *uid_read = NULL;

		old = push(c, "lock_verify", 0);
		if ((rc = only_keys(c, o, lock_keys)) != IMP_OK ||
		    (rc = get_bool(c, o, "reset", false, true, &p->lock_reset)) != IMP_OK ||
		    (rc = get_str(c, o, "uid_read", true, &uid_read)) != IMP_OK)
			return rc;
		p->lock_uid_readable = strcmp(uid_read, "readable") == 0;
		if (strcmp(uid_read, "target_locked") != 0 && !p->lock_uid_readable) {
			free(uid_read);
			return perr(c, "uid_read", "\"target_locked\" (the UID read must fail) or "
				    "\"readable\" (it stays readable; refused_read must fail)");
		}
		free(uid_read);
		if ((rc = get_obj(c, o, "refused_read", p->lock_uid_readable, &v)) != IMP_OK)
			return rc;
		if (v) {
			size_t o2 = push(c, "refused_read", 0);

			if (!p->lock_uid_readable)
				return perr(c, NULL, "only with uid_read \"readable\"");
			if ((rc = only_keys(c, v, refused_keys)) != IMP_OK ||
			    (rc = get_u32(c, v, "addr", true, 0, &p->lock_refused_addr)) != IMP_OK ||
			    (rc = get_u32(c, v, "len", true, 0, &p->lock_refused_len)) != IMP_OK)
				return rc;
			if (p->lock_refused_len == 0 || p->lock_refused_len > 64)
				return perr(c, "len", "must be 1..64 bytes");
			pop(c, o2);
		}
		if ((rc = get_str(c, o, "agent_lifecycle", false, &lc)) != IMP_OK)
			return rc;
		if (lc) {
			if (strcmp(lc, "open") == 0)
				p->lock_lifecycle = WIRE_LC_OPEN;
			else if (strcmp(lc, "personalised") == 0)
				p->lock_lifecycle = WIRE_LC_PERSONALISED;
			else if (strcmp(lc, "locked") == 0)
				p->lock_lifecycle = WIRE_LC_LOCKED;
			free(lc);
			if (!p->lock_lifecycle)
				return perr(c, "agent_lifecycle", "expected open, personalised or locked");
		}
		pop(c, old);
	}

	if ((rc = get_obj(c, root, "permanent_lock", false, &o)) != IMP_OK)
		return rc;
	if (o) {
		old = push(c, "permanent_lock", 0);
		if ((rc = only_keys(c, o, perm_keys)) != IMP_OK ||
		    (rc = get_bool(c, o, "allowed", true, false, &p->permanent_lock_allowed)) != IMP_OK)
			return rc;
		pop(c, old);
	}

	p->connect_reset = true;
	if ((rc = get_obj(c, root, "connect", false, &o)) != IMP_OK)
		return rc;
	if (o) {
		old = push(c, "connect", 0);
		if ((rc = only_keys(c, o, connect_keys)) != IMP_OK ||
		    (rc = get_bool(c, o, "reset", false, true, &p->connect_reset)) != IMP_OK)
			return rc;
		pop(c, old);
	}

	p->slot_device = -1;
	p->slot_psk = -1;
	if ((rc = get_obj(c, root, "agent", false, &o)) != IMP_OK)
		return rc;
	if (o) {
		json_t *so;

		old = push(c, "agent", 0);
		if ((rc = only_keys(c, o, agent_keys)) != IMP_OK ||
		    (rc = get_u32(c, o, "baud", false, BOARD_LINK_DEFAULT_BAUD, &p->agent_baud)) != IMP_OK ||
		    (rc = get_u32(c, o, "protocol", false, WIRE_AGENT_PROTO_VERSION, &p->agent_protocol)) != IMP_OK ||
		    (rc = get_str(c, o, "image", false, &p->agent_image)) != IMP_OK ||
		    (rc = get_obj(c, o, "slots", false, &so)) != IMP_OK)
			return rc;
		if (p->agent_protocol != WIRE_AGENT_PROTO_VERSION)
			return perr(c, "protocol", "this station speaks agent protocol %u",
				    WIRE_AGENT_PROTO_VERSION);
		if (so) {
			uint32_t dev = 0, psk = 0;
			size_t o2 = push(c, "slots", 0);

			if ((rc = only_keys(c, so, slot_keys)) != IMP_OK ||
			    (rc = get_u32(c, so, "device", false, 0xFFFFFFFFu, &dev)) != IMP_OK ||
			    (rc = get_u32(c, so, "psk", false, 0xFFFFFFFFu, &psk)) != IMP_OK)
				return rc;
			if ((dev != 0xFFFFFFFFu && dev > 7) || (psk != 0xFFFFFFFFu && psk > 7))
				return perr(c, NULL, "slot numbers are 0..7");
			p->slot_device = dev == 0xFFFFFFFFu ? -1 : (int)dev;
			p->slot_psk = psk == 0xFFFFFFFFu ? -1 : (int)psk;
			pop(c, o2);
		}
		pop(c, old);
	} else {
		p->agent_baud = BOARD_LINK_DEFAULT_BAUD;
		p->agent_protocol = WIRE_AGENT_PROTO_VERSION;
	}

	if ((rc = get_obj(c, root, "sequences", false, &o)) != IMP_OK)
		return rc;
	if (o) {
		old = push(c, "sequences", 0);
		if ((rc = parse_seqs(c, o, p)) != IMP_OK)
			return rc;
		pop(c, old);
	}
	p->fuses_readable = board_profile_seq(p, "fuse_read") != NULL;
	if (p->fuse_mask && !board_profile_seq(p, "fuse_burn"))
		return perr(c, "fuses", "fuses are supported but there is no fuse_burn sequence");
	if (p->lock_uid_readable && !board_profile_seq(p, "lock_status"))
		return perr(c, "lock_verify", "uid_read \"readable\" needs a lock_status sequence: "
			    "the chip's own word is the evidence of the lock");
	return check_rules(c, p, json_object_get(root, "lock_verify") != NULL);
}

void board_profile_free(struct board_profile *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->description);
	free(p->note);
	free(p->path);
	free(p->agent_image);
	for (size_t i = 0; i < p->n_regions; i++) {
		free(p->regions[i].name);
		free(p->regions[i].kind);
	}
	free(p->regions);
	for (size_t i = 0; i < p->n_seqs; i++) {
		for (size_t k = 0; k < p->seqs[i].n_steps; k++) {
			free(p->seqs[i].steps[k].error);
			free(p->seqs[i].steps[k].irreversible);
		}
		free(p->seqs[i].steps);
		free(p->seqs[i].name);
	}
	free(p->seqs);
	free(p);
}

imp_err board_profile_parse(const char *json, size_t len, const char *source,
			    struct board_profile **out)
{
	struct pctx c = { .source = source ? source : "(text)" };
	struct board_profile *p;
	json_error_t jerr;
	json_t *root;
	imp_err rc;

	*out = NULL;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		IMP_ERROR("profile %s: line %d column %d: %s", c.source, jerr.line, jerr.column,
			  jerr.text);
		return IMP_ERR_CONFIG;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		json_decref(root);
		return IMP_ERR_NOMEM;
	}
	rc = parse_profile(&c, root, p);
	json_decref(root);
	if (rc != IMP_OK) {
		board_profile_free(p);
		return rc;
	}
	*out = p;
	return IMP_OK;
}

static bool is_path(const char *s)
{
	size_t n = strlen(s);

	return strchr(s, '/') || (n > 5 && strcmp(s + n - 5, ".json") == 0);
}

static bool try_dir(const char *dir, size_t dlen, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%.*s/%s.json", (int)dlen, dir, name);

	return n > 0 && (size_t)n < cap && access(out, R_OK) == 0;
}

imp_err board_profile_find(const char *name, const char *data_dir, char *out, size_t cap)
{
	const char *env = getenv("IMPRINT_PROFILE_PATH");
	char buf[4096];

	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.')) {
			IMP_ERROR("profile name '%s': only letters, digits, '-', '_' and '.'", name);
			return IMP_ERR_USAGE;
		}
	if (env && *env) {
		const char *p = env;

		while (*p) {
			size_t len = strcspn(p, ":");

			if (len && try_dir(p, len, name, out, cap))
				return IMP_OK;
			p += len;
			if (*p == ':')
				p++;
		}
	}
	if (data_dir && *data_dir) {
		snprintf(buf, sizeof(buf), "%s/profiles", data_dir);
		if (try_dir(buf, strlen(buf), name, out, cap))
			return IMP_OK;
	}
	if (try_dir(IMPRINT_SOURCE_DIR "/board/profiles", strlen(IMPRINT_SOURCE_DIR "/board/profiles"),
		    name, out, cap))
		return IMP_OK;
	if (try_dir("/usr/share/imprint/profiles", strlen("/usr/share/imprint/profiles"), name,
		    out, cap))
		return IMP_OK;
	IMP_ERROR("no target profile '%s' (looked in $IMPRINT_PROFILE_PATH%s, %s%s, "
		  "/usr/share/imprint/profiles); check the name or set IMPRINT_PROFILE_PATH", name,
		  data_dir ? ", DATA_DIR/profiles" : "", IMPRINT_SOURCE_DIR, "/board/profiles");
	return IMP_ERR_NOT_FOUND;
}

imp_err board_profile_load(const char *name_or_path, const char *data_dir,
			   struct board_profile **out)
{
	char path[4096];
	uint8_t *text = NULL;
	size_t n = 0;
	imp_err rc;

	*out = NULL;
	if (is_path(name_or_path)) {
		snprintf(path, sizeof(path), "%s", name_or_path);
	} else {
		rc = board_profile_find(name_or_path, data_dir, path, sizeof(path));
		if (rc != IMP_OK)
			return rc;
	}
	rc = imp_read_file(path, &text, &n);
	if (rc != IMP_OK) {
		IMP_ERROR("cannot read target profile %s", path);
		return rc == IMP_ERR_NOT_FOUND ? rc : IMP_ERR_CONFIG;
	}
	rc = board_profile_parse((const char *)text, n, path, out);
	free(text);
	if (rc == IMP_OK) {
		(*out)->path = strdup(path);
		if (!(*out)->path) {
			board_profile_free(*out);
			*out = NULL;
			return IMP_ERR_NOMEM;
		}
	}
	return rc;
}

const struct board_profile_seq *board_profile_seq(const struct board_profile *p,
						  const char *name)
{
	for (size_t i = 0; i < p->n_seqs; i++)
		if (strcmp(p->seqs[i].name, name) == 0)
			return &p->seqs[i];
	return NULL;
}

const struct board_profile_region *board_profile_region(const struct board_profile *p,
							const char *name)
{
	for (size_t i = 0; i < p->n_regions; i++)
		if (strcmp(p->regions[i].name, name) == 0)
			return &p->regions[i];
	return NULL;
}

/* ---- interpreter -------------------------------------------------------- */

static imp_err resolve(const struct board_profile *p, const char *seq, size_t i,
		       const struct board_profile_value *v, const struct board_profile_vars *vars,
		       uint32_t *out)
{
	if (!v->var[0]) {
		*out = v->num;
		return IMP_OK;
	}
	if (board_profile_var_get(vars, v->var, out) != 0) {
		IMP_ERROR("profile %s: sequence %s step %zu needs variable $%s, which is not set",
			  p->name, seq, i, v->var);
		return IMP_ERR_CONFIG;
	}
	return IMP_OK;
}

/* A step's word: memory, or an access-port register when the step names one. */
static imp_err step_read(struct board_probe *probe, const struct board_profile_step *st,
			 uint32_t addr, uint32_t *v)
{
	if (st->ap < 0)
		return board_probe_read_u32(probe, addr, v);
	return board_probe_ap_read(probe, (unsigned)st->ap, addr, v);
}

static imp_err step_write(struct board_probe *probe, const struct board_profile_step *st,
			  uint32_t addr, uint32_t v)
{
	if (st->ap < 0)
		return board_probe_write_u32(probe, addr, v);
	return board_probe_ap_write(probe, (unsigned)st->ap, addr, v);
}

imp_err board_profile_run(const struct board_profile *p, const char *name,
			  struct board_probe *probe, struct board_profile_vars *vars)
{
	const struct board_profile_seq *s = board_profile_seq(p, name);

	if (!s) {
		IMP_ERROR("profile %s has no '%s' sequence: this chip family does not support it "
			  "yet", p->name, name);
		return IMP_ERR_UNSUPPORTED;
	}
	/* The value a poll32 ended on, for a check32 of the same register
	 * right after it: one read of a status register serves both, as a
	 * driver reads SR once when BSY clears and tests its error bits. */
	const struct board_profile_step *polled = NULL;
	uint32_t polled_addr = 0, polled_v = 0;

	for (size_t i = 0; i < s->n_steps; i++) {
		const struct board_profile_step *st = &s->steps[i];
		const struct board_profile_step *prev_poll = polled;
		uint32_t addr = 0, value = 0, mask = 0, v = 0;
		imp_err rc;

		polled = NULL;

		if (st->if_var[0]) {
			uint32_t cond = 0;

			if (board_profile_var_get(vars, st->if_var, &cond) != 0 || cond == 0)
				continue;
		}
		if (st->unless_var[0]) {
			uint32_t cond = 0;

			if (board_profile_var_get(vars, st->unless_var, &cond) == 0 && cond != 0)
				continue;
		}
		if ((rc = resolve(p, name, i, &st->addr, vars, &addr)) != IMP_OK ||
		    (rc = resolve(p, name, i, &st->value, vars, &value)) != IMP_OK ||
		    (rc = resolve(p, name, i, &st->mask, vars, &mask)) != IMP_OK)
			return rc;
		switch (st->op) {
		case BOARD_OP_WRITE32:
			if (st->irreversible)
				IMP_INFO("profile %s: %s[%zu]: %s", p->name, name, i, st->irreversible);
			rc = step_write(probe, st, addr, value);
			break;
		case BOARD_OP_MODIFY32:
			rc = step_read(probe, st, addr, &v);
			if (rc == IMP_OK) {
				if (st->irreversible)
					IMP_INFO("profile %s: %s[%zu]: %s", p->name, name, i,
						 st->irreversible);
				rc = step_write(probe, st, addr, (v & ~mask) | (value & mask));
			}
			break;
		case BOARD_OP_READ32:
			rc = step_read(probe, st, addr, &v);
			if (rc == IMP_OK) {
				if (!vars) {
					IMP_ERROR("profile %s: sequence %s reads into $%s but the "
						  "caller passed no variables", p->name, name, st->var);
					return IMP_ERR_INTERNAL;
				}
				rc = board_profile_var_set(vars, st->var, v);
			}
			break;
		case BOARD_OP_POLL32: {
			uint64_t deadline = imp_now_ns() + (uint64_t)st->timeout_ms * 1000000u;

			for (;;) {
				rc = step_read(probe, st, addr, &v);
				if (rc != IMP_OK || (v & mask) == value)
					break;
				if (imp_now_ns() > deadline) {
					IMP_ERROR("profile %s: sequence %s step %zu: register 0x%08x "
						  "= 0x%08x, still not 0x%x under mask 0x%x after %u "
						  "ms%s%s", p->name, name, i, addr, v, value, mask,
						  st->timeout_ms, st->error ? ": " : "",
						  st->error ? st->error : "");
					return IMP_ERR_TIMEOUT;
				}
				imp_sleep_us(200);
			}
			if (rc == IMP_OK) {
				polled = st;
				polled_addr = addr;
				polled_v = v;
			}
			break;
		}
		case BOARD_OP_SELECT32: {
			size_t k;

			rc = step_read(probe, st, addr, &v);
			if (rc != IMP_OK)
				break;
			for (k = 0; k < st->n_cases; k++)
				if (st->cases[k].value == (v & mask))
					break;
			if (k == st->n_cases && !st->has_default) {
				IMP_ERROR("%s (profile %s, sequence %s step %zu: %s 0x%08x = 0x%08x, "
					  "no case for 0x%x)", st->error ? st->error :
					  "unexpected register value", p->name, name, i,
					  st->ap >= 0 ? "AP register" : "register", addr, v, v & mask);
				return IMP_ERR_BOARD;
			}
			if (!vars) {
				IMP_ERROR("profile %s: sequence %s sets $%s but the caller passed no "
					  "variables", p->name, name, st->var);
				return IMP_ERR_INTERNAL;
			}
			rc = board_profile_var_set(vars, st->var,
						   k < st->n_cases ? st->cases[k].result : st->dflt);
			break;
		}
		case BOARD_OP_CHECK32:
			if (prev_poll && prev_poll->ap == st->ap && polled_addr == addr)
				v = polled_v;
			else
				rc = step_read(probe, st, addr, &v);
			if (rc == IMP_OK && (v & mask) != value) {
				IMP_ERROR("%s (profile %s, sequence %s step %zu: register 0x%08x = "
					  "0x%08x)", st->error ? st->error : "register check failed",
					  p->name, name, i, addr, v);
				return IMP_ERR_BOARD;
			}
			break;
		case BOARD_OP_RESET:
			rc = board_probe_reset(probe);
			break;
		case BOARD_OP_HALT:
			rc = board_probe_halt(probe);
			break;
		case BOARD_OP_DELAY:
			imp_sleep_us(st->us);
			break;
		}
		if (rc != IMP_OK && st->resets && st->op != BOARD_OP_MODIFY32 &&
		    rc != IMP_ERR_TARGET_LOCKED) {
			/* The chip reset under the write and took the debug
			 * connection with it: what the step announced. */
			IMP_DEBUG("profile %s: %s[%zu]: the write reset the chip (%s), as expected",
				  p->name, name, i, imp_err_name(rc));
			rc = IMP_OK;
		}
		if (rc != IMP_OK) {
			IMP_DEBUG("profile %s: sequence %s failed at step %zu", p->name, name, i);
			return rc;
		}
	}
	return IMP_OK;
}

imp_err board_profile_lock_status(const struct board_profile *p, struct board_probe *probe,
				  int *locked)
{
	struct board_profile_vars vars = { 0 };
	uint32_t v = 2;
	imp_err rc;

	if (!board_profile_seq(p, "lock_status"))
		return IMP_ERR_UNSUPPORTED;
	rc = board_profile_run(p, "lock_status", probe, &vars);
	if (rc != IMP_OK)
		return rc;
	if (board_profile_var_get(&vars, "locked", &v) != 0 || v > 1) {
		IMP_ERROR("profile %s: lock_status must set $locked to 0 or 1", p->name);
		return IMP_ERR_CONFIG;
	}
	*locked = (int)v;
	return IMP_OK;
}

/*
 * A read failed with rc: IMP_ERR_TARGET_LOCKED when the chip's own lock
 * status confirms a lock, else rc unchanged (an error code alone proves
 * nothing).
 */
static imp_err confirm_locked(const struct board_profile *p, struct board_probe *probe, imp_err rc)
{
	int locked = 0;

	if (rc == IMP_OK || rc == IMP_ERR_TARGET_LOCKED)
		return rc;
	if (board_profile_lock_status(p, probe, &locked) == IMP_OK && locked) {
		IMP_DEBUG("profile %s: the read failed and the chip reports itself locked", p->name);
		return IMP_ERR_TARGET_LOCKED;
	}
	return rc;
}

imp_err board_profile_read_uid(const struct board_profile *p, struct board_probe *probe,
			       uint8_t *uid, size_t cap, size_t *uid_len)
{
	bool zeros = true, ones = true;
	imp_err rc;

	*uid_len = 0;
	if (cap < p->uid_len)
		return IMP_ERR_USAGE;
	rc = board_probe_read(probe, p->uid_addr, uid, p->uid_len);
	if (rc != IMP_OK)
		return confirm_locked(p, probe, rc);
	for (size_t i = 0; i < p->uid_len; i++) {
		zeros = zeros && uid[i] == 0x00;
		ones = ones && uid[i] == 0xFF;
	}
	if (zeros || ones) {
		IMP_ERROR("the uid at 0x%08x reads as all %s: no chip has that uid; the debug "
			  "server hides a failed read (OpenOCD without gdb_report_data_abort?) or "
			  "the target is not powered", p->uid_addr, zeros ? "zeros" : "ones");
		rc = confirm_locked(p, probe, IMP_ERR_PROBE);
		return rc;
	}
	*uid_len = p->uid_len;
	return IMP_OK;
}

imp_err board_profile_connect(const struct board_profile *p, struct board_probe *probe)
{
	int locked = 0;
	imp_err rc;

	if (p->connect_reset) {
		rc = board_probe_reset(probe);
		if (rc != IMP_OK && rc != IMP_ERR_TARGET_LOCKED)
			return rc;
	}
	rc = board_profile_lock_status(p, probe, &locked);
	if (rc == IMP_ERR_UNSUPPORTED)
		locked = 0;
	else if (rc != IMP_OK)
		return rc;
	if (locked)
		return IMP_OK; /* identify finds out what it is; nothing is written */
	if (board_profile_seq(p, "revision_check")) {
		struct board_profile_vars vars = { 0 };

		rc = board_profile_run(p, "revision_check", probe, &vars);
		if (rc != IMP_OK)
			return rc;
	}
	if (board_profile_seq(p, "debug_open")) {
		struct board_profile_vars vars = { 0 };

		rc = board_profile_run(p, "debug_open", probe, &vars);
		if (rc != IMP_OK)
			return rc;
	}
	return IMP_OK;
}

imp_err board_profile_recover(const struct board_profile *p, struct board_probe *probe)
{
	struct board_profile_vars vars = { 0 };
	imp_err rc;

	if (!board_profile_seq(p, "recover"))
		return IMP_ERR_UNSUPPORTED;
	rc = board_profile_run(p, "recover", probe, &vars);
	if (rc == IMP_OK && board_profile_seq(p, "debug_open")) {
		memset(&vars, 0, sizeof(vars));
		rc = board_profile_run(p, "debug_open", probe, &vars);
	}
	return rc;
}

static imp_err erase_pages(const struct board_profile *p, struct board_probe *probe,
			   const struct board_profile_region *fl, uint32_t addr, size_t n,
			   struct board_profile_vars *vars)
{
	for (uint32_t page = (addr - fl->base) / fl->page * fl->page + fl->base;
	     (uint64_t)page < (uint64_t)addr + n; page += fl->page) {
		imp_err rc;

		board_profile_var_set(vars, "addr", page);
		rc = board_profile_run(p, "flash_erase_page", probe, vars);
		if (rc != IMP_OK)
			return rc;
		if ((uint64_t)page + fl->page > 0xFFFFFFFFull)
			break;
	}
	return IMP_OK;
}

imp_err board_profile_program_flash(const struct board_profile *p, struct board_probe *probe,
				    uint32_t addr, const uint8_t *image, size_t n)
{
	const struct board_profile_region *fl = board_profile_region(p, "flash");
	struct board_profile_vars vars = { 0 };
	size_t padded, off;
	uint8_t *buf;
	imp_err rc, rc2;

	if (!fl || strcmp(fl->kind, "flash") != 0) {
		IMP_ERROR("profile %s has no region named \"flash\" of kind flash", p->name);
		return IMP_ERR_CONFIG;
	}
	padded = (n + p->program_unit - 1) / p->program_unit * p->program_unit;
	if (n == 0 || addr % p->program_unit || addr < fl->base ||
	    (uint64_t)addr + padded > (uint64_t)fl->base + fl->size) {
		IMP_ERROR("image of %zu bytes at 0x%08x does not fit the flash 0x%08x..0x%08x (or "
			  "is not %u-byte aligned)", n, addr, fl->base, fl->base + fl->size - 1,
			  p->program_unit);
		return IMP_ERR_USAGE;
	}
	buf = malloc(padded);
	if (!buf)
		return IMP_ERR_NOMEM;
	memcpy(buf, image, n);
	memset(buf + n, 0xFF, padded - n);
	/* The server's own flash driver, where it offers one for the range. */
	rc = board_probe_flash_program(probe, addr, buf, padded);
	if (rc != IMP_ERR_UNSUPPORTED)
		goto cleanup;
	rc = board_profile_run(p, "flash_unlock", probe, &vars);
	if (rc != IMP_OK)
		goto cleanup;
	/* A profile that can erase the whole flash in one operation does so
	 * (the firmware image owns the part's flash); otherwise page by page. */
	if (board_profile_seq(p, "flash_erase_all"))
		rc = board_profile_run(p, "flash_erase_all", probe, &vars);
	else
		rc = erase_pages(p, probe, fl, addr, padded, &vars);
	if (rc != IMP_OK)
		goto cleanup;
	rc = board_profile_run(p, "flash_program_begin", probe, &vars);
	if (rc != IMP_OK)
		goto cleanup;
	for (off = 0; off < padded; off += p->program_chunk) {
		size_t len = padded - off < p->program_chunk ? padded - off : p->program_chunk;

		board_profile_var_set(&vars, "addr", addr + (uint32_t)off);
		rc = board_probe_write(probe, addr + (uint32_t)off, buf + off, len);
		if (rc == IMP_OK)
			rc = board_profile_run(p, "flash_program_check", probe, &vars);
		if (rc != IMP_OK)
			break;
	}
	/* Leave the controller locked even when programming failed. */
	rc2 = board_profile_run(p, "flash_program_end", probe, &vars);
	if (rc == IMP_OK)
		rc = rc2;
cleanup:
	free(buf);
	return rc;
}

imp_err board_probe_sha256(struct board_probe *probe, uint32_t addr, size_t n,
			   uint8_t digest[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t *buf = malloc(16384);
	unsigned dl = 0;
	imp_err rc = IMP_OK;

	if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = md && buf ? IMP_ERR_CRYPTO : IMP_ERR_NOMEM;
		goto cleanup;
	}
	for (size_t off = 0; off < n; off += 16384) {
		size_t len = n - off < 16384 ? n - off : 16384;

		rc = board_probe_read(probe, addr + (uint32_t)off, buf, len);
		if (rc != IMP_OK)
			goto cleanup;
		if (EVP_DigestUpdate(md, buf, len) != 1) {
			rc = IMP_ERR_CRYPTO;
			goto cleanup;
		}
	}
	if (EVP_DigestFinal_ex(md, digest, &dl) != 1 || dl != 32)
		rc = IMP_ERR_CRYPTO;
cleanup:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

/* Compare [addr, addr+n) with image: *match; logs the digests when asked. */
static imp_err compare_flash(struct board_probe *probe, uint32_t addr, const uint8_t *image,
			     size_t n, bool *match, bool log_mismatch)
{
	uint8_t want[32], got[32];
	char hw[65], hg[65];
	uint32_t crc = 0;
	unsigned dl = 0;
	imp_err rc;

	*match = false;
	rc = board_probe_crc32(probe, addr, n, &crc);
	if (rc == IMP_OK) {
		uint32_t expect = board_rsp_crc32(0xFFFFFFFFu, image, n);

		*match = crc == expect;
		if (!*match && log_mismatch)
			IMP_ERROR("flash at 0x%08x (%zu bytes) does not match the image: crc32 "
				  "%08x on the board (computed by the debug server), %08x in the "
				  "image; program it again", addr, n, crc, expect);
		return IMP_OK;
	}
	if (rc != IMP_ERR_UNSUPPORTED)
		return rc;
	if (EVP_Digest(image, n, want, &dl, EVP_sha256(), NULL) != 1)
		return IMP_ERR_CRYPTO;
	rc = board_probe_sha256(probe, addr, n, got);
	if (rc != IMP_OK)
		return rc;
	*match = memcmp(want, got, 32) == 0;
	if (!*match && log_mismatch) {
		imp_hex_encode(want, 32, hw);
		imp_hex_encode(got, 32, hg);
		IMP_ERROR("flash read-back at 0x%08x (%zu bytes) does not match the image: "
			  "sha256 %s on the board, %s in the image; program it again", addr, n, hg, hw);
	}
	return IMP_OK;
}

imp_err board_profile_flash_matches(const struct board_profile *p, struct board_probe *probe,
				    uint32_t addr, const uint8_t *image, size_t n, bool *match)
{
	(void)p;
	return compare_flash(probe, addr, image, n, match, false);
}

imp_err board_profile_verify_flash(const struct board_profile *p, struct board_probe *probe,
				   uint32_t addr, const uint8_t *image, size_t n)
{
	bool match = false;
	imp_err rc;

	(void)p;
	rc = compare_flash(probe, addr, image, n, &match, true);
	if (rc != IMP_OK)
		return rc;
	return match ? IMP_OK : IMP_ERR_VERIFY;
}

imp_err board_profile_burn_fuses(const struct board_profile *p, struct board_probe *probe,
				 uint32_t mask)
{
	return board_profile_burn_fuses_ex(p, probe, mask, false);
}

imp_err board_profile_burn_fuses_ex(const struct board_profile *p, struct board_probe *probe,
				    uint32_t mask, bool permanent)
{
	struct board_profile_vars vars = { 0 };

	if (mask == 0 || (mask & ~p->fuse_mask)) {
		IMP_ERROR("profile %s can burn fuse mask 0x%x, not 0x%x", p->name, p->fuse_mask,
			  mask);
		return mask ? IMP_ERR_UNSUPPORTED : IMP_ERR_USAGE;
	}
	if (permanent && !p->permanent_lock_allowed) {
		IMP_ERROR("profile %s does not allow a permanent lock; nothing was written", p->name);
		return IMP_ERR_CONFIG;
	}
	board_profile_var_set(&vars, "mask", mask);
	board_profile_var_set(&vars, "permanent", permanent ? 1 : 0);
	return board_profile_run(p, "fuse_burn", probe, &vars);
}

imp_err board_profile_read_fuses(const struct board_profile *p, struct board_probe *probe,
				 uint32_t *mask)
{
	struct board_profile_vars vars = { 0 };
	imp_err rc;

	rc = board_profile_run(p, "fuse_read", probe, &vars);
	if (rc != IMP_OK)
		return rc == IMP_ERR_UNSUPPORTED ? rc : confirm_locked(p, probe, rc);
	if (board_profile_var_get(&vars, "fuses", mask) != 0) {
		IMP_ERROR("profile %s: fuse_read does not set $fuses", p->name);
		return IMP_ERR_CONFIG;
	}
	return IMP_OK;
}

/* The agent reports the lifecycle the profile names, when it names one. */
static imp_err check_agent_lifecycle(const struct board_profile *p, struct board_link *link,
				     struct board_agent_info *info)
{
	imp_err rc;

	if (!link)
		return IMP_OK;
	rc = board_agent_identify(link, info);
	if (rc != IMP_OK)
		return rc;
	if (p->lock_lifecycle && info->lifecycle != p->lock_lifecycle) {
		IMP_ERROR("lock not complete: the agent reports lifecycle %s, expected %s",
			  board_lifecycle_name(info->lifecycle),
			  board_lifecycle_name(p->lock_lifecycle));
		return IMP_ERR_VERIFY;
	}
	return IMP_OK;
}

/*
 * A part whose UID stays readable under its lock (STM32 RDP level 1): the
 * chip's own lock status (FLASH_OPTR's RDP byte) is the positive evidence,
 * and a read of protected memory must fail as well; the UID must still
 * read, and match the agent's.
 */
static imp_err verify_lock_readable(const struct board_profile *p, struct board_probe *probe,
				    struct board_link *link)
{
	uint8_t uid[64], buf[64];
	size_t n = 0;
	int locked = -1;
	struct board_agent_info info;
	imp_err rc, rrc, st;

	board_probe_expect_locked(probe, true);
	if (p->lock_reset)
		(void)board_probe_reset(probe);
	st = board_profile_lock_status(p, probe, &locked);
	rrc = board_probe_read(probe, p->lock_refused_addr, buf, p->lock_refused_len);
	rc = board_profile_read_uid(p, probe, uid, sizeof(uid), &n);
	board_probe_expect_locked(probe, false);
	if (st != IMP_OK) {
		IMP_ERROR("lock verification inconclusive: the chip's lock status cannot be read "
			  "(%s); check the probe", imp_err_name(st));
		return st;
	}
	if (locked != 1) {
		IMP_ERROR("lock not effective: the chip reports itself open (lock_status); the "
			  "board is NOT locked");
		return IMP_ERR_VERIFY;
	}
	if (rrc == IMP_OK) {
		IMP_ERROR("lock not effective: the debug port still reads 0x%08x though the chip "
			  "reports its protection; the board is NOT locked", p->lock_refused_addr);
		return IMP_ERR_VERIFY;
	}
	if (rc != IMP_OK) {
		IMP_ERROR("lock verification inconclusive: the UID at 0x%08x, readable on this "
			  "chip when locked, cannot be read (%s)", p->uid_addr, imp_err_name(rc));
		return rc;
	}
	IMP_DEBUG("lock in force: the chip says so and 0x%08x is refused (%s)",
		  p->lock_refused_addr, imp_err_name(rrc));
	rc = check_agent_lifecycle(p, link, &info);
	if (rc != IMP_OK || !link)
		return rc;
	/* The UID through SWD and through the UART still name one board. */
	if (n > WIRE_UID_LEN || memcmp(uid, info.uid, n) != 0) {
		IMP_ERROR("after the lock the UID read through SWD differs from the agent's: the "
			  "probe and the UART are not on the same board");
		return IMP_ERR_VERIFY;
	}
	for (size_t i = n; i < WIRE_UID_LEN; i++)
		if (info.uid[i] != 0) {
			IMP_ERROR("after the lock the agent's UID does not extend the SWD UID with "
				  "zeros");
			return IMP_ERR_VERIFY;
		}
	return IMP_OK;
}

imp_err board_profile_verify_lock(const struct board_profile *p, struct board_probe *probe,
				  struct board_link *link)
{
	if (p->lock_uid_readable)
		return verify_lock_readable(p, probe, link);
	uint8_t uid[64];
	size_t n = 0;
	int locked = -1;
	imp_err rc, st;

	board_probe_expect_locked(probe, true);
	/* A reset may well fail on a part that locks at it; read regardless. */
	if (p->lock_reset)
		(void)board_probe_reset(probe);
	rc = board_probe_read(probe, p->uid_addr, uid, p->uid_len);
	if (rc == IMP_OK) {
		bool zeros = true, ones = true;

		for (size_t i = 0; i < p->uid_len; i++) {
			zeros = zeros && uid[i] == 0x00;
			ones = ones && uid[i] == 0xFF;
		}
		/* Zeros and OK is what a server hiding a failed read answers:
		 * proof of nothing, neither way. */
		if (zeros || ones)
			rc = IMP_ERR_PROBE;
	}
	/* The chip's own word on it, where the profile can ask (nRF52:
	 * CTRL-AP APPROTECTSTATUS): it decides; a refused read alone does not. */
	st = board_profile_lock_status(p, probe, &locked);
	board_probe_expect_locked(probe, false);
	if (st != IMP_OK && st != IMP_ERR_UNSUPPORTED) {
		IMP_ERROR("lock verification inconclusive: the chip's lock status cannot be read "
			  "(%s); check the probe", imp_err_name(st));
		return st;
	}
	if (rc == IMP_OK) {
		IMP_ERROR("lock not effective: the debug port still reads the UID at 0x%08x; "
			  "the board is NOT locked", p->uid_addr);
		return IMP_ERR_VERIFY;
	}
	if (st == IMP_OK && locked == 0) {
		IMP_ERROR("lock not effective: the chip reports its debug port open (lock_status) "
			  "though the UID read failed (%s); the board is NOT locked",
			  imp_err_name(rc));
		return IMP_ERR_VERIFY;
	}
	if (st == IMP_ERR_UNSUPPORTED && rc != IMP_ERR_TARGET_LOCKED) {
		IMP_ERROR("lock verification inconclusive: the UID read failed with %s, not "
			  "'target locked', and the profile cannot read the chip's lock status",
			  imp_err_name(rc));
		return rc;
	}
	(void)n;
	IMP_DEBUG("debug port refuses access: locked");
	if (link && p->lock_lifecycle) {
		struct board_agent_info info;

		rc = board_agent_identify(link, &info);
		if (rc != IMP_OK)
			return rc;
		if (info.lifecycle != p->lock_lifecycle) {
			IMP_ERROR("lock not complete: the agent reports lifecycle %s, expected %s",
				  board_lifecycle_name(info.lifecycle),
				  board_lifecycle_name(p->lock_lifecycle));
			return IMP_ERR_VERIFY;
		}
	}
	return IMP_OK;
}
