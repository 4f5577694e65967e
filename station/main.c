#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "imprint/log.h"
#include "station.h"

int main(int argc, char **argv)
{
	const struct st_option *tables[] = { NULL, st_global_options, NULL };
	static const struct st_option top[] = {
		{ "version", 0, ST_OPT_FLAG, NULL, NULL, "print the version" },
		ST_OPTIONS_END,
	};
	struct st_option top_rows[2] = { top[0], top[1] };
	bool version = false, help = false;
	int n = 0;
	imp_err rc;

	imp_log_set_prog("imprint");
	signal(SIGPIPE, SIG_IGN);
	/* Fixture threads each take and free the same buffers per board (the
	 * probe's 128 KiB receive buffer, images, SQLite pages): kept in the
	 * heap instead of mmap'ed and trimmed back, they are not faulted in
	 * afresh for every board (9,100 -> 5,700 page faults over 64 boards). */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	/* One heap per processor instead of glibc's eight: with 64 fixture
	 * threads each new arena grows (and faults in) a heap of its own for
	 * the same per-board buffers (5,500 -> 3,600 page faults over 64
	 * boards, no more context switches). */
	{
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		mallopt(M_ARENA_MAX, ncpu > 0 ? (int)ncpu : 1);
	}
	st_ctx.prog = argv[0];
	top_rows[0].dest = &version;
	tables[0] = top_rows;
	/* Global options before the verb; the dispatcher takes those after it. */
	argv[0] = "imprint";
	rc = st_parse_options(tables, true, argc, argv, &n, &help);
	if (rc != IMP_OK) {
		const struct st_command *c = NULL;

		/* "imprint --driver csv export": the command's own options go
		 * after its name; name the command whose help lists them. */
		for (int i = 1; i < argc && !c; i++)
			if (argv[i][0] != '-')
				c = st_command_find(st_commands, argv[i]);
		if (c)
			IMP_ERROR("only the global options may come before the command; give '%s' "
				  "options after its name (see 'imprint help %s')", c->name, c->name);
		else
			IMP_ERROR("see 'imprint help'");
		return (int)rc;
	}
	if (version)
		return st_dispatch(st_commands, "imprint", 1, (char *[]){ "version", NULL },
				   &st_ctx);
	if (help || n < 2) {
		st_dispatch(st_commands, "imprint", 1, (char *[]){ "help", NULL }, &st_ctx);
		return help ? 0 : IMP_ERR_USAGE;
	}
	return st_dispatch(st_commands, "imprint", n - 1, argv + 1, &st_ctx);
}
