/*
 * Option parsing from tables (one row per option), for commands and the
 * global options alike.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imprint/log.h"
#include "station.h"

#define MAX_OPTIONS 64

void st_print_options(const struct st_option *opts)
{
	for (const struct st_option *o = opts; o && o->long_name; o++) {
		char left[64];

		if (o->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->long_name,
				 o->arg_name ? " " : "", o->arg_name ? o->arg_name : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->long_name,
				 o->arg_name ? " " : "", o->arg_name ? o->arg_name : "");
		printf("  %-30s %s\n", left, o->help);
	}
}

static imp_err store(const struct st_option *o, const char *arg)
{
	char *end = NULL;
	long v;

	switch (o->type) {
	case ST_OPT_FLAG:
		*(bool *)o->dest = true;
		return IMP_OK;
	case ST_OPT_COUNT:
		(*(int *)o->dest)++;
		return IMP_OK;
	case ST_OPT_STRING:
		*(const char **)o->dest = arg;
		return IMP_OK;
	case ST_OPT_INT:
		errno = 0;
		v = strtol(arg, &end, 10);
		if (!isdigit((unsigned char)*arg) || *end || v < 0 || errno == ERANGE) {
			IMP_ERROR("--%s expects a whole number from 0 to %ld, got '%s'", o->long_name,
				  LONG_MAX, arg);
			return IMP_ERR_USAGE;
		}
		*(long *)o->dest = v;
		return IMP_OK;
	default:
		return IMP_ERR_INTERNAL;
	}
}

bool st_has_text(const char *s)
{
	for (; s && *s; s++)
		if (!isspace((unsigned char)*s))
			return true;
	return false;
}

bool st_plain_text(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

size_t st_edit_distance(const char *a, size_t la, const char *b)
{
	size_t lb = strlen(b), prev[32], cur[32];

	if (la >= 31 || lb >= 31)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(cur));
	}
	return prev[lb];
}

/* The long option closest to a mistyped "--name[=value]", or NULL. */
static const char *closest(const struct st_option *const *rows, size_t nr, const char *arg)
{
	const char *best = NULL;
	size_t bd = 3, len;

	if (strncmp(arg, "--", 2) != 0)
		return NULL;
	arg += 2;
	len = strcspn(arg, "=");
	for (size_t i = 0; i < nr; i++) {
		size_t d = st_edit_distance(arg, len, rows[i]->long_name);

		if (d < bd) {
			bd = d;
			best = rows[i]->long_name;
		}
	}
	return best;
}

imp_err st_parse_options(const struct st_option *const *tables, bool stop_at_arg, int argc,
			 char **argv, int *new_argc, bool *help)
{
	const struct st_option *rows[MAX_OPTIONS];
	struct option longs[MAX_OPTIONS + 2];
	char shorts[3 * MAX_OPTIONS + 4];
	size_t nr = 0, ns = 0;
	int c;

	*help = false;
	shorts[ns++] = stop_at_arg ? '+' : '-'; /* '-': arguments come back in order, as 1 */
	shorts[ns++] = ':';
	for (const struct st_option *const *t = tables; *t; t++)
		for (const struct st_option *o = *t; o->long_name; o++) {
			if (nr == MAX_OPTIONS)
				return IMP_ERR_INTERNAL;
			rows[nr] = o;
			longs[nr] = (struct option){ o->long_name,
						     o->type == ST_OPT_STRING ||
								     o->type == ST_OPT_INT ?
							     required_argument :
							     no_argument,
						     NULL, 256 + (int)nr };
			nr++;
			if (o->short_name) {
				shorts[ns++] = o->short_name;
				if (o->type == ST_OPT_STRING || o->type == ST_OPT_INT)
					shorts[ns++] = ':';
			}
		}
	longs[nr] = (struct option){ "help", no_argument, NULL, 'h' };
	longs[nr + 1] = (struct option){ NULL, 0, NULL, 0 };
	shorts[ns++] = 'h';
	shorts[ns] = '\0';

	/* Arguments are collected in order, behind the command name. */
	int nargs = 1;

	optind = 0; /* a full re-initialisation of getopt */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct st_option *o = NULL;
		imp_err rc;

		if (c == 1) {
			argv[nargs++] = optarg;
			continue;
		}
		if (c == 'h') {
			/* The rest is still read: an unknown option exits 2 with it too. */
			*help = true;
			continue;
		}
		if (c == '?' || c == ':') {
			const char *near = c == '?' ? closest(rows, nr, argv[optind - 1]) : NULL;

			if (near)
				IMP_ERROR("unknown option '%s'; did you mean '--%s'?", argv[optind - 1],
					  near);
			else
				IMP_ERROR("%s option '%s'", c == ':' ? "missing argument for" :
					  "unknown", argv[optind - 1]);
			return IMP_ERR_USAGE;
		}
		if (c >= 256) {
			o = rows[c - 256];
		} else {
			for (size_t i = 0; i < nr && !o; i++)
				if (rows[i]->short_name == c)
					o = rows[i];
		}
		if (!o)
			return IMP_ERR_INTERNAL;
		rc = store(o, optarg);
		if (rc != IMP_OK)
			return rc;
	}
	/* Whatever stopped the scan ("--", or the first argument with '+'). */
	while (optind < argc)
		argv[nargs++] = argv[optind++];
	*new_argc = nargs;
	return IMP_OK;
}
