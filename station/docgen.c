/*
 * imprint(1) and the bash completion, printed from the command table
 * (docgen.h). Nothing here knows a command by name: a new verb, a new
 * sub-command or a new option appears in both by being in the table.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docgen.h"
#include "imprint/log.h"
#include "station.h"

/* ---- roff ---------------------------------------------------------------- */

/* Plain text for roff: backslashes and hyphens escaped, a control
 * character at the start of a line neutralised, leading blanks dropped.
 * A line break ("\n", as `help` prints it: a new paragraph) becomes
 * `br` (".PP" in a command's description, ".br" inside a list item, a
 * plain newline when br is "": lines kept as they are, in .nf). */
static void roff_text_br(FILE *f, const char *s, const char *br)
{
	bool bol = true;

	for (; *s; s++) {
		if (bol && (*s == ' ' || *s == '\t'))
			continue;
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", f);
		bol = false;
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else if (*s == '\n') {
			if (*br)
				fprintf(f, "\n%s\n", br);
			else
				fputc('\n', f);
			while (s[1] == '\n')
				s++;
			bol = true;
		} else
			fputc(*s, f);
	}
}

static void roff_text(FILE *f, const char *s)
{
	roff_text_br(f, s, ".br");
}

static bool is_metavar(const char *w, size_t n)
{
	bool upper = false;

	for (size_t i = 0; i < n; i++) {
		if (isupper((unsigned char)w[i]))
			upper = true;
		else if (!isdigit((unsigned char)w[i]) && w[i] != '_' && w[i] != ':' && w[i] != '.')
			return false;
	}
	return upper;
}

/* A usage line ("imprint status [--failures N] | ..."): options and
 * literal words in bold, metavariables (N, FILE, ADDR:PORT) in italics,
 * brackets and bars in roman. */
static void roff_usage(FILE *f, const char *u)
{
	static const char *const punct = " []|(){}=,";
	bool bol = true;

	while (*u) {
		size_t n = strcspn(u, punct);

		if (n == 0) {
			if (!(bol && *u == ' '))
				fputc(*u, f);
			u++;
			continue;
		}
		bol = false;
		if (n == 3 && strncmp(u, "...", 3) == 0) {
			fputs("\\&...", f);
		} else {
			fputs(is_metavar(u, n) ? "\\fI" : "\\fB", f);
			for (size_t i = 0; i < n; i++) {
				if (u[i] == '-')
					fputs("\\-", f);
				else if (u[i] == '\\')
					fputs("\\e", f);
				else
					fputc(u[i], f);
			}
			fputs("\\fR", f);
		}
		u += n;
	}
	fputc('\n', f);
}

static void roff_option(FILE *f, const struct st_option *o)
{
	fputs(".TP\n", f);
	if (o->short_name)
		fprintf(f, "\\fB\\-%c\\fR, ", o->short_name);
	fputs("\\fB\\-\\-", f);
	for (const char *c = o->long_name; *c; c++) {
		if (*c == '-')
			fputs("\\-", f);
		else
			fputc(*c, f);
	}
	fputs("\\fR", f);
	if (o->arg_name) {
		fputs(" \\fI", f);
		roff_text(f, o->arg_name);
		fputs("\\fR", f);
	}
	fputc('\n', f);
	roff_text(f, o->help ? o->help : "");
	fputc('\n', f);
}

static void man_synopsis(FILE *f)
{
	/* left-aligned, unhyphenated: these are lines to type */
	fputs(".nh\n.ad l\n", f);
	fputs(".B imprint\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n", f);
	for (const struct st_command *const *c = st_commands; *c; c++) {
		if ((*c)->subs) {
			for (const struct st_command *const *s = (*c)->subs; *s; s++) {
				fputs(".br\n", f);
				roff_usage(f, (*s)->usage);
			}
			continue;
		}
		fputs(".br\n", f);
		roff_usage(f, (*c)->usage);
	}
	fputs(".ad\n.hy\n", f);
}

static void man_global_options(FILE *f)
{
	for (const struct st_option *o = st_global_options; o->long_name; o++)
		roff_option(f, o);
	roff_option(f, &(struct st_option){ "version", 0, ST_OPT_FLAG, NULL, NULL,
					   "print the version" });
	roff_option(f, &(struct st_option){ "help", 'h', ST_OPT_FLAG, NULL, NULL,
					   "show the help, also after a command" });
}

/* The exit codes the command can return (the same list as `help CMD`)
 * and its examples, one command line each. */
static void man_exits_and_example(FILE *f, const struct st_command *c)
{
	imp_err codes[IMP_ERR__COUNT];
	size_t n = st_command_exit_codes(c, codes);

	fputs(".PP\nExit status:", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s %d", i ? "," : "", (int)codes[i]);
	fputs(" (see \\fBEXIT STATUS\\fR).\n", f);
	if (!c->example)
		return;
	fprintf(f, ".PP\nExample%s:\n.RS\n.nf\n", strchr(c->example, '\n') ? "s" : "");
	roff_text_br(f, c->example, "");
	fputs("\n.fi\n.RE\n", f);
}

static void man_command(FILE *f, const char *prefix, const struct st_command *c)
{
	fprintf(f, ".SS \"%s ", prefix);
	roff_text(f, c->name);
	fputs("\"\n.nh\n.ad l\n", f);
	roff_usage(f, c->usage);
	fputs(".ad\n.hy\n", f);
	fputs(".PP\n", f);
	roff_text(f, c->summary);
	fputc('\n', f);
	if (c->help) {
		fputs(".PP\n", f);
		roff_text_br(f, c->help, ".PP");
		fputc('\n', f);
	}
	if (c->subs) {
		fputs(".PP\nSub-commands:\n", f);
		for (const struct st_command *const *s = c->subs; *s; s++) {
			fputs(".TP\n.B ", f);
			roff_text(f, (*s)->name);
			fputc('\n', f);
			roff_text(f, (*s)->summary);
			fputc('\n', f);
		}
		man_exits_and_example(f, c);
		return;
	}
	for (const struct st_option *o = c->opts; o && o->long_name; o++)
		roff_option(f, o);
	man_exits_and_example(f, c);
}

static void man_commands(FILE *f)
{
	char prefix[64];

	for (const struct st_command *const *c = st_commands; *c; c++) {
		man_command(f, "imprint", *c);
		if (!(*c)->subs)
			continue;
		snprintf(prefix, sizeof(prefix), "imprint %s", (*c)->name);
		for (const struct st_command *const *s = (*c)->subs; *s; s++)
			man_command(f, prefix, *s);
	}
}

static const struct {
	const char *marker;
	void (*print)(FILE *f);
} sections[] = {
	{ "@SYNOPSIS@", man_synopsis },
	{ "@GLOBAL_OPTIONS@", man_global_options },
	{ "@COMMANDS@", man_commands },
};

int st_print_man(const char *template_path)
{
	FILE *in = fopen(template_path, "r");
	bool seen[sizeof(sections) / sizeof(sections[0])] = { false };
	char line[4096];
	int code = 0;

	if (!in) {
		IMP_ERROR("cannot read the man page template %s; give man/imprint.1.in of the "
			  "sources", template_path);
		return IMP_ERR_IO;
	}
	while (fgets(line, sizeof(line), in)) {
		size_t len = strcspn(line, "\n");
		bool done = false;
		char *v;

		for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]) && !done; i++)
			if (strlen(sections[i].marker) == len &&
			    strncmp(line, sections[i].marker, len) == 0) {
				sections[i].print(stdout);
				seen[i] = done = true;
			}
		if (done)
			continue;
		v = strstr(line, "@VERSION@");
		if (v) {
			*v = '\0';
			printf("%s%s%s", line, IMPRINT_VERSION, v + strlen("@VERSION@"));
		} else {
			fputs(line, stdout);
		}
	}
	if (ferror(in)) {
		IMP_ERROR("cannot read the man page template %s", template_path);
		code = IMP_ERR_IO;
	}
	fclose(in);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]) && !code; i++)
		if (!seen[i]) {
			IMP_ERROR("the man page template %s has no line %s; add it where that "
				  "section goes", template_path, sections[i].marker);
			code = IMP_ERR_CONFIG;
		}
	if (fflush(stdout) != 0 && !code)
		code = IMP_ERR_IO;
	return code;
}

/* ---- bash completion -------------------------------------------------- */

/* What an option's value is, for the shell: a file, a directory, or a
 * value it cannot guess; NULL for an option without a value. */
static const char *value_kind(const struct st_option *o)
{
	if (o->type != ST_OPT_STRING && o->type != ST_OPT_INT)
		return NULL;
	if (!o->arg_name)
		return "value";
	if (strstr(o->arg_name, "DIR"))
		return "dir";
	if (strstr(o->arg_name, "FILE") || strstr(o->arg_name, "PATH") ||
	    strstr(o->arg_name, "IMAGE") || strstr(o->arg_name, "TEMPLATE") ||
	    strstr(o->arg_name, "SIG"))
		return "file";
	return "value";
}

static void bash_words(const char *key, const struct st_option *opts, bool global)
{
	printf("\t\"%s\") echo \"", key);
	for (const struct st_option *o = opts; o && o->long_name; o++) {
		printf("%s--%s", o == opts ? "" : " ", o->long_name);
		if (o->short_name)
			printf(" -%c", o->short_name);
	}
	/* --help and --version: the parser's own, on every level */
	printf("%s\" ;;\n", global ? " --help -h --version" : "");
}

static void bash_kinds(const char *key, const struct st_option *opts)
{
	for (const struct st_option *o = opts; o && o->long_name; o++) {
		const char *kind = value_kind(o);

		if (!kind)
			continue;
		printf("\t\"%s --%s\"", key, o->long_name);
		if (o->short_name)
			printf("|\"%s -%c\"", key, o->short_name);
		printf(") echo %s ;;\n", kind);
	}
}

static void bash_tables(bool kinds)
{
	char key[128];

	if (kinds)
		bash_kinds("", st_global_options);
	else
		bash_words("", st_global_options, true);
	for (const struct st_command *const *c = st_commands; *c; c++) {
		if (!(*c)->subs) {
			if (kinds)
				bash_kinds((*c)->name, (*c)->opts);
			else
				bash_words((*c)->name, (*c)->opts, false);
			continue;
		}
		for (const struct st_command *const *s = (*c)->subs; *s; s++) {
			snprintf(key, sizeof(key), "%s %s", (*c)->name, (*s)->name);
			if (kinds)
				bash_kinds(key, (*s)->opts);
			else
				bash_words(key, (*s)->opts, false);
		}
	}
}

static const char bash_main[] =
	"# The words of the line: the command, its sub-command, the arguments\n"
	"# after them; an option's value is skipped.\n"
	"_imprint()\n"
	"{\n"
	"\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev= verb= sub= key= kind= w i\n"
	"\tlocal -a pos=()\n"
	"\t((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
	"\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	"\t\tw=${COMP_WORDS[i]}\n"
	"\t\tcase $w in\n"
	"\t\t--*=*) continue ;;\n"
	"\t\t-*)\n"
	"\t\t\tkind=$(_imprint_kind \"\" \"$w\")\n"
	"\t\t\t[[ -z $kind && -n $verb ]] && kind=$(_imprint_kind \"$verb${sub:+ $sub}\" \"$w\")\n"
	"\t\t\t[[ -n $kind ]] && ((i++))\n"
	"\t\t\tcontinue ;;\n"
	"\t\tesac\n"
	"\t\tif [[ -z $verb ]]; then\n"
	"\t\t\tverb=$w\n"
	"\t\telif [[ -z $sub && -n $(_imprint_subs \"$verb\") ]]; then\n"
	"\t\t\tsub=$w\n"
	"\t\telse\n"
	"\t\t\tpos+=(\"$w\")\n"
	"\t\tfi\n"
	"\tdone\n"
	"\tkey=$verb${sub:+ $sub}\n"
	"\tCOMPREPLY=()\n"
	"\tif [[ $prev == -* ]] && ((COMP_CWORD > 1)); then\n"
	"\t\tkind=$(_imprint_kind \"\" \"$prev\")\n"
	"\t\t[[ -z $kind && -n $key ]] && kind=$(_imprint_kind \"$key\" \"$prev\")\n"
	"\t\tcase $kind in\n"
	"\t\tfile) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
	"\t\tdir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n"
	"\t\tvalue) return ;;\n"
	"\t\tesac\n"
	"\tfi\n"
	"\tif [[ $cur == -* ]]; then\n"
	"\t\tCOMPREPLY=($(compgen -W \"$(_imprint_words \"\") $([[ -n $key ]] && _imprint_words \"$key\")\" -- \"$cur\"))\n"
	"\telif [[ -z $verb ]]; then\n"
	"\t\tCOMPREPLY=($(compgen -W \"$(_imprint_subs \"\")\" -- \"$cur\"))\n"
	"\telif [[ -z $sub && -n $(_imprint_subs \"$verb\") ]]; then\n"
	"\t\tCOMPREPLY=($(compgen -W \"$(_imprint_subs \"$verb\")\" -- \"$cur\"))\n"
	"\telif [[ $verb == help ]] && ((${#pos[@]} == 0)); then\n"
	"\t\tCOMPREPLY=($(compgen -W \"$(_imprint_subs \"\")\" -- \"$cur\"))\n"
	"\telif [[ $verb == help ]] && ((${#pos[@]} == 1)); then\n"
	"\t\tCOMPREPLY=($(compgen -W \"$(_imprint_subs \"${pos[0]}\")\" -- \"$cur\"))\n"
	"\tfi\n"
	"}\n"
	"complete -F _imprint imprint\n";

int st_print_completion(const char *shell)
{
	if (strcmp(shell, "bash") != 0) {
		IMP_ERROR("no completion for shell '%s'; 'bash' is the one there is", shell);
		return IMP_ERR_USAGE;
	}
	printf("# bash completion for imprint(1), made from its command table by\n"
	       "# 'imprint help --completion bash' (imprint %s): do not edit.\n\n",
	       IMPRINT_VERSION);
	printf("# The commands (\"\"), or a command's sub-commands.\n"
	       "_imprint_subs()\n{\n\tcase $1 in\n\t\"\") echo \"");
	for (const struct st_command *const *c = st_commands; *c; c++)
		printf("%s%s", c == st_commands ? "" : " ", (*c)->name);
	printf("\" ;;\n");
	for (const struct st_command *const *c = st_commands; *c; c++) {
		if (!(*c)->subs)
			continue;
		printf("\t\"%s\") echo \"", (*c)->name);
		for (const struct st_command *const *s = (*c)->subs; *s; s++)
			printf("%s%s", s == (*c)->subs ? "" : " ", (*s)->name);
		printf("\" ;;\n");
	}
	printf("\tesac\n}\n\n");
	printf("# The options of the global level (\"\") or of \"COMMAND [SUB]\".\n"
	       "_imprint_words()\n{\n\tcase $1 in\n");
	bash_tables(false);
	printf("\tesac\n}\n\n");
	printf("# An option's value ($1: level, $2: option): file, dir or value;\n"
	       "# nothing for an option without one.\n"
	       "_imprint_kind()\n{\n\tcase \"$1 $2\" in\n");
	bash_tables(true);
	printf("\tesac\n}\n\n%s", bash_main);
	return fflush(stdout) == 0 ? 0 : IMP_ERR_IO;
}
