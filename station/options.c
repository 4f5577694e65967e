#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imprint/log.h"
#include "station.h"

void st_print_usage(const char *usage, const struct st_option *opts)
{
	printf("usage: %s\n", usage);
	if (!opts || !opts->long_name)
		return;
	printf("\noptions:\n");
	for (const struct st_option *o = opts; o->long_name; o++) {
		char left[64];

		if (o->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->long_name,
				 o->arg_name ? " " : "", o->arg_name ? o->arg_name : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->long_name,
				 o->arg_name ? " " : "", o->arg_name ? o->arg_name : "");
		printf("  %-30s %s\n", left, o->help);
	}
	printf("  %-30s %s\n", "-h, --help", "show this help");
}

imp_err st_parse_options(const struct st_option *opts, const char *usage,
			 int argc, char **argv, int *first_arg, bool *help_shown)
{
	struct option longs[64];
	char shorts[160];
	size_t nl = 0, ns = 0;
	int c;

	*help_shown = false;
	shorts[ns++] = '+'; /* stop at the first non-option */
	shorts[ns++] = ':';
	for (const struct st_option *o = opts; o && o->long_name; o++) {
		if (nl + 2 >= (sizeof(longs) / sizeof(longs[0])))
			return IMP_ERR_INTERNAL;
		longs[nl].name = o->long_name;
		longs[nl].has_arg = o->type == ST_OPT_FLAG ? no_argument : required_argument;
		longs[nl].flag = NULL;
		longs[nl].val = 256 + (int)(o - opts);
		nl++;
		if (o->short_name) {
			shorts[ns++] = o->short_name;
			if (o->type != ST_OPT_FLAG)
				shorts[ns++] = ':';
		}
	}
	longs[nl++] = (struct option){ "help", no_argument, NULL, 'h' };
	longs[nl] = (struct option){ NULL, 0, NULL, 0 };
	shorts[ns++] = 'h';
	shorts[ns] = '\0';

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct st_option *o = NULL;

		if (c == 'h') {
			st_print_usage(usage, opts);
			*help_shown = true;
			return IMP_OK;
		}
		if (c == '?' || c == ':') {
			IMP_ERROR("%s: %s option '%s'; see '%s --help'", argv[0],
				  c == ':' ? "missing argument for" : "unknown",
				  argv[optind - 1], argv[0]);
			return IMP_ERR_USAGE;
		}
		if (c >= 256)
			o = &opts[c - 256];
		else
			for (const struct st_option *p = opts; p->long_name; p++)
				if (p->short_name == c)
					o = p;
		if (!o)
			return IMP_ERR_INTERNAL;
		switch (o->type) {
		case ST_OPT_FLAG:
			*(bool *)o->dest = true;
			break;
		case ST_OPT_STRING:
			*(const char **)o->dest = optarg;
			break;
		case ST_OPT_INT: {
			char *end = NULL;
			long v = strtol(optarg, &end, 10);

			if (!*optarg || *end || v < 0) {
				IMP_ERROR("--%s expects a non-negative whole number, got '%s'",
					  o->long_name, optarg);
				return IMP_ERR_USAGE;
			}
			*(long *)o->dest = v;
			break;
		}
		default:
			return IMP_ERR_INTERNAL;
		}
	}
	*first_arg = optind;
	return IMP_OK;
}
