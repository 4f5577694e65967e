/*
 * imprint label SERIAL --format png|svg|zpl [-o FILE]: the Matter
 * onboarding label of a finished board (docs/MATTER.md "The label").
 *
 * The passcode is stored nowhere in clear: the journal holds it sealed
 * under the HSM's sealing key, bound to the board's UID and serial. This
 * command opens it in the HSM (so printing needs the HSM and its PIN, like
 * provisioning), checks it against the board's journaled verifier, renders
 * the label in memory and writes it to FILE (created 0600, never over an
 * existing file) or to stdout. Nothing else it prints holds the codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "formats/matter.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "label.h"
#include "run.h"

static const char *label_format;
static const char *label_out;

static imp_err label_check(int argc, char **argv)
{
	enum st_label_format f;

	(void)argc;
	(void)argv;
	if (st_label_format_parse(label_format, &f) != IMP_OK) {
		IMP_ERROR("label: give the format with --format png, svg or zpl");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static void print_label(const json_t *o, void *arg)
{
	(void)arg;
	printf("label of %s written to %s (%s)\n", json_string_value(json_object_get(o, "serial")),
	       json_string_value(json_object_get(o, "file")),
	       json_string_value(json_object_get(o, "format")));
}

/* The label's bytes to FILE (a new file, 0600) or stdout ("-" or none). */
static imp_err write_label(const char *path, const uint8_t *p, size_t n)
{
	size_t off = 0;
	imp_err rc;

	if (path && strcmp(path, "-") != 0) {
		rc = imp_write_secret_file(path, p, n);
		if (rc == IMP_ERR_EXISTS)
			IMP_ERROR("label: %s exists; a label is never written over a file: remove it "
				  "or give another name with -o", path);
		else if (rc != IMP_OK)
			IMP_ERROR("label: cannot write %s", path);
		return rc;
	}
	while (off < n) {
		ssize_t w = write(STDOUT_FILENO, p + off, n - off);

		if (w <= 0) {
			IMP_ERROR("label: writing to stdout failed");
			return IMP_ERR_IO;
		}
		off += (size_t)w;
	}
	return IMP_OK;
}

static int label_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct st_run *l = ctx->run;
	const char *serial = argv[1];
	struct jnl_board b = { 0 };
	struct fmt_matter_payload p;
	enum st_label_format f = ST_LABEL_PNG;
	char qr[FMT_MATTER_QR_MAX], manual[FMT_MATTER_MANUAL_MAX];
	json_t *data = NULL;
	hsm_obj seal = HSM_OBJ_NONE;
	uint8_t *img = NULL;
	size_t img_len = 0;
	bool to_file = label_out && strcmp(label_out, "-") != 0;
	imp_err rc;

	(void)argc;
	memset(&p, 0, sizeof(p));
	st_label_format_parse(label_format, &f);
	rc = jnl_get_board_by_serial(l->journal, serial, &b);
	if (rc == IMP_ERR_NOT_FOUND)
		IMP_ERROR("label: serial %s is not in this station's journal", serial);
	if (rc != IMP_OK)
		goto cleanup;
	if (b.state != JNL_ST_DONE) {
		IMP_ERROR("label: board %s is %s, not done: only a finished board gets its label; "
			  "finish it with 'imprint resume' or 'imprint provision'", serial,
			  jnl_state_name(b.state));
		rc = IMP_ERR_BOARD;
		goto cleanup;
	}
	data = json_loads(b.data ? b.data : "{}", 0, NULL);
	if (!json_object_get(data, "matter")) {
		IMP_ERROR("label: board %s has no matter factory data (it was provisioned without "
			  "a \"matter\" object in the configuration)", serial);
		rc = IMP_ERR_NOT_FOUND;
		goto cleanup;
	}
	rc = hsm_seal_key(l->journal_session, PROV_MATTER_SEAL_LABEL, false, &seal);
	if (rc == IMP_ERR_NOT_FOUND)
		IMP_ERROR("label: the hsm holds no sealing key \"%s\": this is not the hsm that "
			  "provisioned %s", PROV_MATTER_SEAL_LABEL, serial);
	if (rc == IMP_OK)
		rc = prov_matter_payload(l->journal_session, seal, b.uid, serial,
					 json_object_get(data, "matter"), &p);
	if (rc == IMP_OK)
		rc = fmt_matter_qr(&p, qr);
	if (rc == IMP_OK)
		rc = fmt_matter_manual_code(&p, manual);
	if (rc == IMP_OK)
		rc = st_label_render(f, qr, manual, serial, &img, &img_len);
	if (rc == IMP_OK)
		rc = write_label(label_out, img, img_len);
	if (rc == IMP_OK && to_file)
		st_emit(ctx,
			json_pack("{s:s, s:s, s:s, s:s}", "event", "label", "serial", serial, "file",
				  label_out, "format", label_format),
			print_label, NULL);
cleanup:
	imp_wipe(&p, sizeof(p));
	imp_wipe(qr, sizeof(qr));
	imp_wipe(manual, sizeof(manual));
	if (img)
		imp_wipe(img, img_len);
	free(img);
	json_decref(data);
	jnl_board_release(&b);
	return st_fail(rc, NULL);
}

static const struct st_option label_opts[] = {
	{ "format", 'f', ST_OPT_STRING, &label_format, "FORMAT",
	  "png, svg or zpl (a ZPL II label for a label printer) (required)" },
	{ "out", 'o', ST_OPT_STRING, &label_out, "FILE",
	  "write the label to FILE, a new file with mode 0600 (default: stdout)" },
	ST_OPTIONS_END,
};

const struct st_command st_cmd_label = {
	.name = "label",
	.fn = label_run,
	.need = NEED_HSM,
	.summary = "print a finished board's Matter onboarding label (QR code, manual code, serial)",
	.usage = "imprint label SERIAL --format png|svg|zpl [-o FILE]",
	.opts = label_opts,
	.min_args = 1,
	.max_args = 1,
	.help = "Renders the Matter onboarding label of finished board SERIAL: the QR code "
		"of its MT: payload, its manual pairing code and its serial. The setup passcode "
		"is kept only sealed under the hsm's sealing key; the label opens it in the hsm "
		"and checks it against the board's verifier (exit 12 if it does not open or "
		"match). FILE is created new with mode 0600 (exit 10 if it exists); without -o "
		"the label goes to stdout, e.g. a printer pipe. The label holds the passcode: "
		"print it and remove the file (docs/MATTER.md, docs/SECURITY.md). Exits 9 if "
		"SERIAL is not in the journal or was provisioned without \"matter\", 19 if the "
		"board is not done.",
	.check = label_check,
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_NOT_FOUND, IMP_ERR_EXISTS,
				    IMP_ERR_VERIFY, IMP_ERR_BOARD, IMP_OK },
	.example = "imprint label DEMO000001 --format png -o DEMO000001.png\n"
		   "imprint label DEMO000001 --format zpl | lp -d zebra -o raw",
};
