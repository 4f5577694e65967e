/*
 * The man page and the shell completion, made from the command table
 * (st_commands, each command's usage, help and options, the global
 * options) and the error enum: the one source of `imprint help`, of
 * imprint(1) and of the completion. The build runs these (station/
 * CMakeLists.txt) and installs what they print.
 */
#ifndef STATION_DOCGEN_H
#define STATION_DOCGEN_H

/*
 * Print the man page to stdout: the template file (man/imprint.1.in) line
 * by line, "@VERSION@" replaced by the version, and each line that is
 * exactly one of these markers replaced by a section body in roff:
 *   @SYNOPSIS@        the synopsis, one line per command
 *   @GLOBAL_OPTIONS@  the global options
 *   @COMMANDS@        a subsection per command and sub-command: usage,
 *                     summary, description, options, the exit codes it can
 *                     return (st_command_exit_codes) and its examples
 * (the EXIT STATUS section, each code's full meaning, is the template's).
 * Returns an exit code: 0, or IMP_ERR_IO / IMP_ERR_CONFIG (a marker
 * missing from the template), logged.
 */
int st_print_man(const char *template_path);

/* Print the completion script for shell (only "bash") to stdout. Returns
 * 0, or IMP_ERR_USAGE for another shell, logged. */
int st_print_completion(const char *shell);

#endif
