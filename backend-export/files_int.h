/*
 * What the file exporters share (files.c, azure_dps.c, tp_manifest.c):
 * outputs that appear complete or not at all, and small readers of the
 * record payloads.
 *
 * An output file is written under a temporary name beside its final path
 * (PATH.tmp.XXXXXX, mode 0644) and renamed into place by exp_out_commit
 * after fflush and fsync. An output directory is built as DIR.tmp.XXXXXX
 * and swapped in whole by exp_outdir_commit (an existing DIR is moved
 * aside and removed only after the new one is in place), so no file of an
 * older export survives in it.
 */
#ifndef EXP_FILES_INT_H
#define EXP_FILES_INT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "exp/export.h"

struct exp_out {
	char *path; /* final path */
	char *tmp;  /* temporary path while open */
	FILE *f;    /* open for writing while open */
};

/*
 * Open out for path: IMP_ERR_EXISTS (logged, naming --force) if path exists
 * and replace is false; IMP_ERR_IO, IMP_ERR_NOMEM. On failure nothing is
 * left to release.
 */
imp_err exp_out_open(struct exp_out *out, const char *path, bool replace);
/* Flush, fsync, close and rename into place; always releases out. */
imp_err exp_out_commit(struct exp_out *out);
/* Close and remove the temporary file; releases out. Safe on a zeroed one. */
void exp_out_abort(struct exp_out *out);

struct exp_outdir {
	char *path; /* final directory */
	char *tmp;  /* the directory being filled */
};

/* Like exp_out_open, for a directory (created mode 0755). */
imp_err exp_outdir_open(struct exp_outdir *d, const char *path, bool replace);
/* Write one file name (no '/') of the directory, complete, fsync'ed. */
imp_err exp_outdir_write(struct exp_outdir *d, const char *name, const char *text);
/* Swap the directory into place; always releases d. */
imp_err exp_outdir_commit(struct exp_outdir *d);
/* Remove what was written; releases d. Safe on a zeroed one. */
void exp_outdir_abort(struct exp_outdir *d);

/*
 * path without a trailing ".jsonl", ".json" or ".jws", then suffix: the
 * name of a file that goes beside the main output ("things.jsonl" ->
 * "things.template.json"). malloc'ed; NULL on allocation failure.
 */
char *exp_out_sibling(const char *path, const char *suffix);

/*
 * The push loop of the file drivers: each record's payload is read (not
 * verified: the records come from the station's own journal; verification
 * is the registry's and the audit's job), a malformed JWS is rejected with
 * that reason, and one(state, record, payload, result) takes the rest. The
 * first error one returns stops the loop and is returned.
 */
typedef imp_err (*exp_push_one_fn)(void *state, const struct exp_record *r, json_t *payload,
				   struct exp_result *res);
imp_err exp_push_each(void *state, const struct exp_record *recs, size_t n,
		      struct exp_result *res, exp_push_one_fn one);

/* The string member k of o, or "" (never NULL). */
const char *exp_str(const json_t *o, const char *k);

/* PEM text of a base64 DER certificate (64-column lines). malloc'ed. */
char *exp_pem_of(const char *b64);

/* Text of v as the file exporters write JSON: compact (indent 0) or
 * indented by 2, keys in insertion order, '\n' at the end. malloc'ed. */
char *exp_json_text(const json_t *v, bool indent);

/* backend-export/aws-iot-template.json, as shipped (generated at configure
 * time: aws_iot_template.c in the build tree). */
extern const char exp_aws_template[];
extern const size_t exp_aws_template_len;

#endif
