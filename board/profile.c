/*
 * Target profiles: strict JSON parser (errors name the field path) and the
 * register-sequence interpreter. Format: docs/PROFILES.md.
 */
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
#include "formats/jsonread.h"
#include "imprint/log.h"
#include "imprint/paths.h"
#include "imprint/util.h"

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

/* ---- parsing: tables for formats/jsonread.h --------------------------- */

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

/* A 32-bit number: a JSON integer, or a string "0x1F..." / "123". */
static const struct fmt_jr_field u32_row = {
	.name = "", .type = FMT_JR_UINT, .flags = FMT_JR_HEX, .max = 0xFFFFFFFFu,
};

static imp_err read_u32(struct fmt_jr *r, json_t *v, uint32_t *out)
{
	uint64_t x = 0;
	imp_err rc;

	rc = fmt_jr_uint(r, &u32_row, v, &x);
	if (rc == IMP_OK)
		*out = (uint32_t)x;
	return rc;
}

/* A step value: number, or "$var". */
static imp_err set_value(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct board_profile_value *out = (void *)((char *)obj + f->offset);

	memset(out, 0, sizeof(*out));
	if (json_is_string(v) && json_string_value(v)[0] == '$') {
		const char *name = json_string_value(v) + 1;

		if (!valid_ident(name, sizeof(out->var)))
			return fmt_jr_fail(r, NULL, "bad variable name \"%s\" (lowercase, digits, _)",
					   json_string_value(v));
		strcpy(out->var, name);
		return IMP_OK;
	}
	return read_u32(r, v, &out->num);
}

/* "$name" of an "if"/"unless" key. */
static imp_err set_dollar_var(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v,
			      void *obj)
{
	const char *t = json_string_value(v);

	if (!t || t[0] != '$' || !valid_ident(t + 1, f->size))
		return fmt_jr_fail(r, NULL, "expected \"$variable\"");
	strcpy((char *)obj + f->offset, t + 1);
	return IMP_OK;
}

/* A name of a variable ("var") or of a fuse ("fuse"). */
static imp_err set_ident(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	const char *t = json_string_value(v);

	if (!t || !valid_ident(t, f->size))
		return fmt_jr_expected(r, f);
	strcpy((char *)obj + f->offset, t);
	return IMP_OK;
}

static imp_err set_requires(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *a, void *obj)
{
	struct board_profile_step *st = obj;

	(void)f;
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > BOARD_PROFILE_MAX_REQUIRES)
		return fmt_jr_fail(r, NULL, "expected 1..%u fuse names", BOARD_PROFILE_MAX_REQUIRES);
	for (size_t k = 0; k < json_array_size(a); k++) {
		json_t *e = json_array_get(a, k);

		if (!json_is_string(e) || !valid_ident(json_string_value(e), sizeof(st->requires[0]))) {
			fmt_jr_push_index(r, k);
			return fmt_jr_fail(r, NULL, "expected a fuse name");
		}
		strcpy(st->requires[k], json_string_value(e));
		st->n_requires = k + 1;
	}
	return IMP_OK;
}

/* "cases": [[value, result], ...] of a select32 step. */
static imp_err set_cases(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *arr, void *obj)
{
	struct board_profile_step *st = obj;

	(void)f;
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > BOARD_PROFILE_MAX_CASES)
		return fmt_jr_fail(r, NULL, "expected 1..%u pairs [value, result]",
				   BOARD_PROFILE_MAX_CASES);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *pair = json_array_get(arr, i);
		size_t mark = fmt_jr_push_index(r, i);
		imp_err rc;

		if (!json_is_array(pair) || json_array_size(pair) != 2)
			return fmt_jr_fail(r, NULL, "expected a pair [value, result]");
		rc = read_u32(r, json_array_get(pair, 0), &st->cases[i].value);
		if (rc == IMP_OK)
			rc = read_u32(r, json_array_get(pair, 1), &st->cases[i].result);
		if (rc != IMP_OK)
			return rc;
		for (size_t k = 0; k < i; k++)
			if (st->cases[k].value == st->cases[i].value)
				return fmt_jr_fail(r, NULL, "value 0x%x listed twice", st->cases[i].value);
		st->n_cases = i + 1;
		fmt_jr_pop(r, mark);
	}
	return IMP_OK;
}

static imp_err set_default(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	struct board_profile_step *st = obj;

	(void)f;
	st->has_default = true;
	return read_u32(r, v, &st->dflt);
}

static void step_init(void *obj)
{
	struct board_profile_step *st = obj;

	st->ap = -1;
	st->timeout_ms = 1000;
}

static imp_err step_finish(struct fmt_jr *r, json_t *js, void *obj)
{
	struct board_profile_step *st = obj;

	if (st->ap >= 0 && (st->addr.var[0] || st->addr.num > 0xFFC || st->addr.num % 4))
		return fmt_jr_fail(r, "addr", "with \"ap\", addr is a register offset 0..0xFFC, a "
				   "multiple of 4");
	if ((st->permanent || st->n_requires) && !st->irreversible)
		return fmt_jr_fail(r, st->permanent ? "permanent" : "requires",
				   "only on an irreversible write (add \"irreversible\": \"what it "
				   "does\")");
	if (st->op == BOARD_OP_SELECT32 && !json_object_get(js, "mask"))
		st->mask.num = 0xFFFFFFFFu;
	return IMP_OK;
}

#define STEP_AT(m) FMT_JR_AT(struct board_profile_step, m)
#define VALUE_ROW(member, fl) \
	{ .name = #member, .type = FMT_JR_ANY, .flags = fl, .set = set_value, \
	  .expect = "a number or \"$variable\"", STEP_AT(member) }
#define R_OP { .name = "op", .type = FMT_JR_ANY }
#define R_ADDR VALUE_ROW(addr, FMT_JR_REQUIRED)
#define R_VALUE VALUE_ROW(value, FMT_JR_REQUIRED)
#define R_MASK VALUE_ROW(mask, FMT_JR_REQUIRED)
#define R_VAR(fl) \
	{ .name = "var", .type = FMT_JR_ANY, .flags = fl, .set = set_ident, \
	  .expect = "a variable name (lowercase, digits, _)", STEP_AT(var) }
#define R_AP { .name = "ap", .type = FMT_JR_UINT, .flags = FMT_JR_HEX, .max = 255, STEP_AT(ap) }
#define R_ERROR \
	{ .name = "error", .type = FMT_JR_STR, .flags = FMT_JR_EMPTY_OK | FMT_JR_NULLABLE, \
	  STEP_AT(error) }
/* Rows every step has: its condition and a comment. */
#define R_COMMON \
	{ .name = "if", .type = FMT_JR_ANY, .set = set_dollar_var, STEP_AT(if_var) }, \
	{ .name = "unless", .type = FMT_JR_ANY, .set = set_dollar_var, STEP_AT(unless_var) }, \
	{ .name = "comment", .type = FMT_JR_STR, .flags = FMT_JR_EMPTY_OK }
/* Rows of a write step (write32, modify32). */
#define R_WRITE \
	{ .name = "irreversible", .type = FMT_JR_STR, \
	  .flags = FMT_JR_EMPTY_OK | FMT_JR_NULLABLE, STEP_AT(irreversible) }, \
	{ .name = "permanent", .type = FMT_JR_BOOL, STEP_AT(permanent) }, \
	{ .name = "resets", .type = FMT_JR_BOOL, STEP_AT(resets) }, \
	{ .name = "fuse", .type = FMT_JR_ANY, .set = set_ident, \
	  .expect = "a name (lowercase, digits, _)", STEP_AT(fuse) }, \
	{ .name = "requires", .type = FMT_JR_ANY, .set = set_requires }

#define STEP_TABLE(...) \
	(&(const struct fmt_jr_table){ .fields = (const struct fmt_jr_field[]){ __VA_ARGS__, { 0 } }, \
				       .init = step_init, .finish = step_finish })

static const struct {
	const char *name;
	enum board_profile_op op;
	const struct fmt_jr_table *table;
} ops[] = {
	{ "write32", BOARD_OP_WRITE32, STEP_TABLE(R_OP, R_ADDR, R_VALUE, R_AP, R_COMMON, R_WRITE) },
	{ "read32", BOARD_OP_READ32, STEP_TABLE(R_OP, R_ADDR, R_VAR(FMT_JR_REQUIRED), R_AP,
						R_COMMON) },
	{ "poll32", BOARD_OP_POLL32,
	  STEP_TABLE(R_OP, R_ADDR, R_MASK, R_VALUE,
		     { .name = "timeout_ms", .type = FMT_JR_UINT, .flags = FMT_JR_HEX, .min = 1,
		       .max = 600000, STEP_AT(timeout_ms) },
		     R_ERROR, R_AP, R_COMMON) },
	{ "check32", BOARD_OP_CHECK32, STEP_TABLE(R_OP, R_ADDR, R_MASK, R_VALUE, R_ERROR, R_AP,
						  R_COMMON) },
	{ "reset", BOARD_OP_RESET, STEP_TABLE(R_OP, R_COMMON) },
	{ "halt", BOARD_OP_HALT, STEP_TABLE(R_OP, R_COMMON) },
	{ "delay", BOARD_OP_DELAY,
	  STEP_TABLE(R_OP,
		     { .name = "us", .type = FMT_JR_UINT, .flags = FMT_JR_HEX | FMT_JR_REQUIRED,
		       .max = 10000000, STEP_AT(us) },
		     R_COMMON) },
	{ "select32", BOARD_OP_SELECT32,
	  STEP_TABLE(R_OP, R_ADDR, VALUE_ROW(mask, 0), R_VAR(FMT_JR_REQUIRED),
		     { .name = "cases", .type = FMT_JR_ANY, .flags = FMT_JR_REQUIRED,
		       .set = set_cases, .expect = "pairs [value, result]" },
		     { .name = "default", .type = FMT_JR_ANY, .set = set_default },
		     R_ERROR, R_AP, R_COMMON) },
	{ "modify32", BOARD_OP_MODIFY32, STEP_TABLE(R_OP, R_ADDR, R_MASK, R_VALUE, R_COMMON,
						    R_WRITE) },
};

#define OP_NAMES "write32, read32, poll32, check32, reset, halt, delay, select32, modify32"

const char *board_profile_op_name(enum board_profile_op op)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(ops); i++)
		if (ops[i].op == op)
			return ops[i].name;
	return "?";
}

/* One step: its op picks the table of the keys it may have. */
static imp_err read_step(struct fmt_jr *r, json_t *js, struct board_profile_step *st)
{
	json_t *opv = json_object_get(js, "op");
	size_t oi;

	if (!json_is_object(js))
		return fmt_jr_fail(r, NULL, "expected a step object {\"op\": ...}");
	if (!json_is_string(opv))
		return fmt_jr_fail(r, "op", "missing (expected one of " OP_NAMES ")");
	for (oi = 0; oi < IMP_ARRAY_SIZE(ops); oi++)
		if (strcmp(ops[oi].name, json_string_value(opv)) == 0)
			break;
	if (oi == IMP_ARRAY_SIZE(ops))
		return fmt_jr_fail(r, "op", "unknown op \"%s\" (" OP_NAMES ")",
				   json_string_value(opv));
	st->op = ops[oi].op;
	return fmt_jr_object(r, js, ops[oi].table, st);
}

/* "sequences": named arrays of steps, in file order. */
static imp_err set_sequences(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *obj,
			     void *base)
{
	struct board_profile *p = base;
	const char *key;
	json_t *arr;
	size_t i = 0;

	if (!json_is_object(obj))
		return fmt_jr_expected(r, f);
	p->seqs = calloc(json_object_size(obj) + 1, sizeof(*p->seqs));
	if (!p->seqs)
		return fmt_jr_oom(r);
	json_object_foreach(obj, key, arr) {
		struct board_profile_seq *s = &p->seqs[i];
		size_t mark = fmt_jr_push_key(r, key);

		if (!valid_ident(key, 64))
			return fmt_jr_fail(r, NULL, "sequence names are lowercase, digits and _");
		if (!json_is_array(arr) || json_array_size(arr) == 0)
			return fmt_jr_fail(r, NULL, "expected a non-empty array of steps");
		s->name = strdup(key);
		s->steps = calloc(json_array_size(arr), sizeof(*s->steps));
		p->n_seqs = ++i;
		if (!s->name || !s->steps)
			return fmt_jr_oom(r);
		for (size_t k = 0; k < json_array_size(arr); k++) {
			size_t m2 = fmt_jr_push_index(r, k);
			imp_err rc;

			s->n_steps = k + 1; /* freed with the profile, also when it fails */
			rc = read_step(r, json_array_get(arr, k), &s->steps[k]);
			if (rc != IMP_OK)
				return rc;
			fmt_jr_pop(r, m2);
		}
		fmt_jr_pop(r, mark);
	}
	return IMP_OK;
}

#define PROF_AT(m) FMT_JR_AT(struct board_profile, m)
#define U32_ROW(key, fl, member) \
	{ .name = key, .type = FMT_JR_UINT, .flags = FMT_JR_HEX | (fl), .max = 0xFFFFFFFFu, \
	  PROF_AT(member) }
#define R_COMMENT { .name = "comment", .type = FMT_JR_STR, .flags = FMT_JR_EMPTY_OK }
#define PROF_STR (FMT_JR_EMPTY_OK | FMT_JR_NULLABLE)

static imp_err region_finish(struct fmt_jr *r, json_t *js, void *obj)
{
	static const char *const kinds[] = { "flash", "ram", "otp", "rom", "regs", NULL };
	const struct board_profile_region *rg = obj;
	const struct board_profile_region *all = r->elems;
	bool kind_ok = false;

	(void)js;
	for (size_t k = 0; kinds[k]; k++)
		if (strcmp(rg->kind, kinds[k]) == 0)
			kind_ok = true;
	if (!kind_ok)
		return fmt_jr_fail(r, "kind", "unknown kind \"%s\" (flash, ram, otp, rom, regs)",
				   rg->kind);
	if (rg->size == 0 || (uint64_t)rg->base + rg->size > 0x100000000ull)
		return fmt_jr_fail(r, "size", "must be > 0 and end within 4 GiB");
	if (strcmp(rg->kind, "flash") == 0 &&
	    (rg->page == 0 || (rg->page & (rg->page - 1)) || rg->size % rg->page))
		return fmt_jr_fail(r, "page", "flash needs a power-of-two page that divides size");
	for (size_t k = 0; k < r->index; k++)
		if (strcmp(all[k].name, rg->name) == 0)
			return fmt_jr_fail(r, "name", "duplicate region \"%s\"", rg->name);
	return IMP_OK;
}

#define REGION_AT(m) FMT_JR_AT(struct board_profile_region, m)

static const struct fmt_jr_table region_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "name", .type = FMT_JR_STR, .flags = FMT_JR_REQUIRED | PROF_STR,
		  REGION_AT(name) },
		{ .name = "kind", .type = FMT_JR_STR, .flags = FMT_JR_REQUIRED | PROF_STR,
		  REGION_AT(kind) },
		{ .name = "base", .type = FMT_JR_UINT, .flags = FMT_JR_HEX | FMT_JR_REQUIRED,
		  .max = 0xFFFFFFFFu, REGION_AT(base) },
		{ .name = "size", .type = FMT_JR_UINT, .flags = FMT_JR_HEX | FMT_JR_REQUIRED,
		  .max = 0xFFFFFFFFu, REGION_AT(size) },
		{ .name = "page", .type = FMT_JR_UINT, .flags = FMT_JR_HEX, .max = 0xFFFFFFFFu,
		  REGION_AT(page) },
		R_COMMENT,
		{ 0 },
	},
	.size = sizeof(struct board_profile_region),
	.finish = region_finish,
};

static imp_err flash_finish(struct fmt_jr *r, json_t *js, void *obj)
{
	const struct board_profile *p = obj;

	(void)js;
	if (p->program_unit == 0 || p->program_unit > 256 ||
	    (p->program_unit & (p->program_unit - 1)))
		return fmt_jr_fail(r, "program_unit", "must be a power of two up to 256");
	if (p->program_chunk < p->program_unit || p->program_chunk > 65536 ||
	    p->program_chunk % p->program_unit)
		return fmt_jr_fail(r, "program_chunk", "must be a multiple of program_unit, at most "
				   "65536");
	return IMP_OK;
}

static const struct fmt_jr_name fuse_names[] = {
	{ "debug_lock", WIRE_FUSE_DEBUG_LOCK },
	{ "boot_lock", WIRE_FUSE_BOOT_LOCK },
	{ NULL, 0 },
};

static const struct fmt_jr_name uid_read_names[] = {
	{ "target_locked", 0 }, { "readable", 1 }, { NULL, 0 },
};

static const struct fmt_jr_name lifecycle_names[] = {
	{ "open", WIRE_LC_OPEN }, { "personalised", WIRE_LC_PERSONALISED },
	{ "locked", WIRE_LC_LOCKED }, { NULL, 0 },
};

static imp_err refused_finish(struct fmt_jr *r, json_t *js, void *obj)
{
	const struct board_profile *p = obj;

	(void)js;
	if (!p->lock_uid_readable)
		return fmt_jr_fail(r, NULL, "only with uid_read \"readable\"");
	return IMP_OK;
}

static void lock_init(void *obj)
{
	((struct board_profile *)obj)->lock_reset = true;
}

static imp_err lock_finish(struct fmt_jr *r, json_t *js, void *obj)
{
	const struct board_profile *p = obj;

	if (p->lock_uid_readable && !json_object_get(js, "refused_read"))
		return fmt_jr_fail(r, "refused_read", "missing (expected {\"addr\": ..., \"len\": "
				   "...}: a read the lock must refuse)");
	return IMP_OK;
}

static const struct fmt_jr_table lock_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "reset", .type = FMT_JR_BOOL, PROF_AT(lock_reset) },
		{ .name = "uid_read", .type = FMT_JR_ENUM, .flags = FMT_JR_REQUIRED,
		  .names = uid_read_names, PROF_AT(lock_uid_readable),
		  .expect = "\"target_locked\" (the UID read must fail) or \"readable\" (it stays "
			    "readable; refused_read must fail)" },
		{ .name = "refused_read", .type = FMT_JR_OBJECT,
		  .sub = &(const struct fmt_jr_table){
			  .fields = (const struct fmt_jr_field[]){
				  U32_ROW("addr", FMT_JR_REQUIRED, lock_refused_addr),
				  { .name = "len", .type = FMT_JR_UINT,
				    .flags = FMT_JR_HEX | FMT_JR_REQUIRED, .min = 1, .max = 64,
				    PROF_AT(lock_refused_len) },
				  R_COMMENT,
				  { 0 },
			  },
			  .finish = refused_finish,
		  } },
		{ .name = "agent_lifecycle", .type = FMT_JR_ENUM, .flags = FMT_JR_NULLABLE,
		  .names = lifecycle_names, PROF_AT(lock_lifecycle) },
		R_COMMENT,
		{ 0 },
	},
	.init = lock_init,
	.finish = lock_finish,
};

static imp_err agent_finish(struct fmt_jr *r, json_t *js, void *obj)
{
	const struct board_profile *p = obj;

	(void)js;
	if (p->agent_protocol != WIRE_AGENT_PROTO_VERSION)
		return fmt_jr_fail(r, "protocol", "this station speaks agent protocol %u",
				   WIRE_AGENT_PROTO_VERSION);
	return IMP_OK;
}

static const struct fmt_jr_table agent_table = {
	.fields = (const struct fmt_jr_field[]){
		U32_ROW("baud", 0, agent_baud),
		U32_ROW("protocol", 0, agent_protocol),
		{ .name = "image", .type = FMT_JR_STR, .flags = PROF_STR, PROF_AT(agent_image) },
		{ .name = "slots", .type = FMT_JR_OBJECT,
		  .sub = &(const struct fmt_jr_table){
			  .fields = (const struct fmt_jr_field[]){
				  { .name = "device", .type = FMT_JR_UINT, .flags = FMT_JR_HEX,
				    .max = 7, PROF_AT(slot_device) },
				  { .name = "psk", .type = FMT_JR_UINT, .flags = FMT_JR_HEX,
				    .max = 7, PROF_AT(slot_psk) },
				  { 0 },
			  },
		  } },
		{ 0 },
	},
	.finish = agent_finish,
};

static imp_err set_format(struct fmt_jr *r, const struct fmt_jr_field *f, json_t *v, void *obj)
{
	(void)f;
	(void)obj;
	if (strcmp(json_string_value(v), BOARD_PROFILE_FORMAT) != 0)
		return fmt_jr_fail(r, NULL, "\"%s\" is not \"%s\"", json_string_value(v),
				   BOARD_PROFILE_FORMAT);
	return IMP_OK;
}

static void profile_init(void *obj)
{
	struct board_profile *p = obj;

	p->program_unit = 4;
	p->program_chunk = 1024;
	p->connect_reset = true;
	p->slot_device = -1;
	p->slot_psk = -1;
	p->agent_baud = BOARD_LINK_DEFAULT_BAUD;
	p->agent_protocol = WIRE_AGENT_PROTO_VERSION;
}

#define PROF_OBJECT(key, fl, ...) \
	{ .name = key, .type = FMT_JR_OBJECT, .flags = fl, \
	  .sub = &(const struct fmt_jr_table){ \
		  .fields = (const struct fmt_jr_field[]){ __VA_ARGS__, { 0 } } } }

static const struct fmt_jr_table profile_table = {
	.fields = (const struct fmt_jr_field[]){
		{ .name = "format", .type = FMT_JR_STR, .flags = FMT_JR_REQUIRED | PROF_STR,
		  .set = set_format, .expect = "\"" BOARD_PROFILE_FORMAT "\"" },
		{ .name = "name", .type = FMT_JR_STR, .flags = FMT_JR_REQUIRED | PROF_STR,
		  PROF_AT(name) },
		{ .name = "description", .type = FMT_JR_STR, .flags = FMT_JR_REQUIRED | PROF_STR,
		  PROF_AT(description) },
		{ .name = "note", .type = FMT_JR_STR, .flags = PROF_STR, PROF_AT(note) },
		{ .name = "hardware_tested", .type = FMT_JR_BOOL, .flags = FMT_JR_REQUIRED,
		  PROF_AT(hardware_tested) },
		PROF_OBJECT("uid", FMT_JR_REQUIRED, U32_ROW("addr", FMT_JR_REQUIRED, uid_addr),
			    { .name = "len", .type = FMT_JR_UINT,
			      .flags = FMT_JR_HEX | FMT_JR_REQUIRED, .min = 1, .max = 64,
			      PROF_AT(uid_len) },
			    R_COMMENT),
		{ .name = "memory", .type = FMT_JR_ARRAY, .flags = FMT_JR_REQUIRED, .min = 1,
		  .sub = &region_table, .expect = "a non-empty array of regions",
		  .offset = offsetof(struct board_profile, regions),
		  .count_offset = offsetof(struct board_profile, n_regions) },
		{ .name = "flash", .type = FMT_JR_OBJECT,
		  .sub = &(const struct fmt_jr_table){
			  .fields = (const struct fmt_jr_field[]){
				  U32_ROW("program_unit", 0, program_unit),
				  U32_ROW("program_chunk", 0, program_chunk),
				  { 0 },
			  },
			  .finish = flash_finish,
		  } },
		PROF_OBJECT("fuses", 0,
			    { .name = "supported", .type = FMT_JR_FLAGS, .flags = FMT_JR_REQUIRED,
			      .names = fuse_names, .expect = "an array of fuse names",
			      PROF_AT(fuse_mask) },
			    R_COMMENT),
		{ .name = "lock_verify", .type = FMT_JR_OBJECT, .sub = &lock_table },
		{ .name = "agent", .type = FMT_JR_OBJECT, .sub = &agent_table },
		{ .name = "sequences", .type = FMT_JR_ANY, .set = set_sequences,
		  .expect = "an object of named step arrays" },
		PROF_OBJECT("connect", 0, { .name = "reset", .type = FMT_JR_BOOL,
					    PROF_AT(connect_reset) },
			    R_COMMENT),
		PROF_OBJECT("permanent_lock", 0,
			    { .name = "allowed", .type = FMT_JR_BOOL, .flags = FMT_JR_REQUIRED,
			      PROF_AT(permanent_lock_allowed) },
			    R_COMMENT),
		{ 0 },
	},
	.init = profile_init,
};

/* ---- fatal combinations -------------------------------------------------- */

const char *const board_profile_rules[] = {
	"lock-before-firmware",
	"permanent-without-opt-in",
	"missing-companion",
	"lock-unverified",
	NULL,
};

static imp_err rule_err(const char *source, const char *rule, const char *seq, size_t i,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static imp_err rule_err(const char *source, const char *rule, const char *seq, size_t i,
			const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (seq)
		IMP_ERROR("profile %s: refused by rule %s: sequences.%s[%zu]: %s", source, rule,
			  seq, i, msg);
	else
		IMP_ERROR("profile %s: refused by rule %s: %s", source, rule, msg);
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
static imp_err check_rules(const char *source, const struct board_profile *p, bool has_verify)
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
				return rule_err(source, "lock-before-firmware", s->name, i,
						"an irreversible write (%s) in '%s', which the station "
						"runs before the firmware digest is verified; such "
						"writes belong in fuse_burn, run at LOCK", st->irreversible,
						s->name);
			if (st->permanent && !p->permanent_lock_allowed)
				return rule_err(source, "permanent-without-opt-in", s->name, i,
						"a permanent write (%s) without the profile's opt-in; "
						"add \"permanent_lock\": {\"allowed\": true} only if every "
						"board of this product is to be closed for good",
						st->irreversible);
			if (st->permanent && strcmp(st->if_var, "permanent") != 0)
				return rule_err(source, "permanent-without-opt-in", s->name, i,
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
					return rule_err(source, "missing-companion", s->name, i,
							"'%s' must be written with '%s' (its inverse or "
							"companion), but %s does not write '%s' whenever "
							"it writes this", st->fuse[0] ? st->fuse :
							st->irreversible, st->requires[r], s->name,
							st->requires[r]);
			}
		}
	}
	if ((p->fuse_mask || irreversible) && !has_verify)
		return rule_err(source, "lock-unverified", NULL, 0,
				"the profile burns fuses but has no lock_verify: a lock is only "
				"ever concluded from the chip, from outside, after the reset");
	return IMP_OK;
}

/* What the tables cannot say: checks across sections, then the rules. */
static imp_err check_profile(const char *source, json_t *root, struct board_profile *p)
{
	p->fuses_readable = board_profile_seq(p, "fuse_read") != NULL;
	if (p->fuse_mask && !board_profile_seq(p, "fuse_burn")) {
		IMP_ERROR("profile %s: fuses: fuses are supported but there is no fuse_burn sequence",
			  source);
		return IMP_ERR_CONFIG;
	}
	if (p->lock_uid_readable && !board_profile_seq(p, "lock_status")) {
		IMP_ERROR("profile %s: lock_verify: uid_read \"readable\" needs a lock_status "
			  "sequence: the chip's own word is the evidence of the lock", source);
		return IMP_ERR_CONFIG;
	}
	return check_rules(source, p, json_object_get(root, "lock_verify") != NULL);
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
	struct board_profile *p;
	json_error_t jerr;
	struct fmt_jr r;
	json_t *root;
	imp_err rc;

	*out = NULL;
	if (!source)
		source = "(text)";
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		IMP_ERROR("profile %s: line %d column %d: %s", source, jerr.line, jerr.column,
			  jerr.text);
		return IMP_ERR_CONFIG;
	}
	if (!json_is_object(root)) {
		IMP_ERROR("profile %s: the file must hold one JSON object", source);
		json_decref(root);
		return IMP_ERR_CONFIG;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		json_decref(root);
		return IMP_ERR_NOMEM;
	}
	fmt_jr_init(&r, NULL);
	rc = fmt_jr_object(&r, root, &profile_table, p);
	if (rc != IMP_OK)
		IMP_ERROR("profile %s: %s", source, r.msg);
	else
		rc = check_profile(source, root, p);
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

imp_err board_profile_find(const char *name, const char *data_dir, char *out, size_t cap)
{
	const char *env = getenv("IMPRINT_PROFILE_PATH");
	char buf[4096], shipped[4096];
	bool have_shipped;

	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.')) {
			IMP_ERROR("profile name '%s': only letters, digits, '-', '_' and '.'", name);
			return IMP_ERR_USAGE;
		}
	if (imp_json_in_path(env, name, out, cap))
		return IMP_OK;
	if (data_dir && *data_dir) {
		snprintf(buf, sizeof(buf), "%s/profiles", data_dir);
		if (imp_json_in_dir(buf, strlen(buf), name, out, cap))
			return IMP_OK;
	}
	have_shipped = imp_data_dir("profiles", "board/profiles", shipped, sizeof(shipped)) == IMP_OK;
	if (have_shipped && imp_json_in_dir(shipped, strlen(shipped), name, out, cap))
		return IMP_OK;
	IMP_ERROR("no target profile '%s' (looked in $IMPRINT_PROFILE_PATH%s, %s%s); check the "
		  "name or set IMPRINT_PROFILE_PATH", name, data_dir ? ", DATA_DIR/profiles" : "",
		  shipped, have_shipped ? "" : " (missing: reinstall imprint)");
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

/* Log a step's irreversible text with its $variables' values in place
 * ("burn the fuses of 0x3 ..."), as the step writes them. */
static void log_irreversible(const struct board_profile *p, const char *seq, size_t i,
			     const char *text, const struct board_profile_vars *vars)
{
	char out[512], name[24];
	size_t o = 0;

	for (const char *t = text; *t && o + 1 < sizeof(out); t++) {
		size_t k = 0;
		uint32_t v;

		if (*t == '$')
			while (k + 1 < sizeof(name) &&
			       ((t[k + 1] >= 'a' && t[k + 1] <= 'z') || t[k + 1] == '_' ||
				(t[k + 1] >= '0' && t[k + 1] <= '9'))) {
				name[k] = t[k + 1];
				k++;
			}
		name[k] = '\0';
		if (k && board_profile_var_get(vars, name, &v) == 0) {
			int w = snprintf(out + o, sizeof(out) - o, "0x%x", v);

			if (w < 0 || (size_t)w >= sizeof(out) - o)
				break;
			o += (size_t)w;
			t += k;
			continue;
		}
		out[o++] = *t;
	}
	out[o] = '\0';
	IMP_INFO("profile %s: %s[%zu]: %s", p->name, seq, i, out);
}

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
				log_irreversible(p, name, i, st->irreversible, vars);
			rc = step_write(probe, st, addr, value);
			break;
		case BOARD_OP_MODIFY32:
			rc = step_read(probe, st, addr, &v);
			if (rc == IMP_OK) {
				if (st->irreversible)
					log_irreversible(p, name, i, st->irreversible, vars);
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
	return board_profile_program_flash_progress(p, probe, addr, image, n, NULL, NULL);
}

imp_err board_profile_program_flash_progress(const struct board_profile *p,
					     struct board_probe *probe, uint32_t addr,
					     const uint8_t *image, size_t n,
					     board_flash_progress_fn progress, void *arg)
{
	const struct board_profile_region *fl = board_profile_region(p, "flash");
	struct board_profile_vars vars = { 0 };
	size_t padded, off;
	const uint8_t *buf;
	uint8_t *copy = NULL;
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
	/* An image of whole program units is programmed as it is; a shorter
	 * tail is padded with erased bytes in a copy. */
	buf = image;
	if (padded != n) {
		copy = malloc(padded);
		if (!copy)
			return IMP_ERR_NOMEM;
		memcpy(copy, image, n);
		memset(copy + n, 0xFF, padded - n);
		buf = copy;
	}
	/* The server's own flash driver, where it offers one for the range. */
	rc = board_probe_flash_program(probe, addr, buf, padded);
	if (rc == IMP_OK && progress)
		progress(arg, padded, padded);
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
		/* At most one report per whole percent, and the last. */
		if (progress && ((off + len) * 100 / padded != off * 100 / padded ||
				 off + len == padded))
			progress(arg, off + len, padded);
	}
	/* Leave the controller locked even when programming failed. */
	rc2 = board_profile_run(p, "flash_program_end", probe, &vars);
	if (rc == IMP_OK)
		rc = rc2;
cleanup:
	free(copy);
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
				  "image", addr, n, crc, expect);
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
			  "sha256 %s on the board, %s in the image", addr, n, hg, hw);
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
				    struct board_link *link, struct board_agent_info *seen,
				    bool *have_seen)
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
	*seen = info;
	*have_seen = true;
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
	struct board_agent_info seen;
	bool have_seen;

	return board_profile_verify_lock_seen(p, probe, link, &seen, &have_seen);
}

imp_err board_profile_verify_lock_seen(const struct board_profile *p, struct board_probe *probe,
				       struct board_link *link, struct board_agent_info *seen,
				       bool *have_seen)
{
	*have_seen = false;
	if (p->lock_uid_readable)
		return verify_lock_readable(p, probe, link, seen, have_seen);
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
		*seen = info;
		*have_seen = true;
	}
	return IMP_OK;
}
