/*
 * The run context: opening and closing what a command's set-up flags ask
 * for (configuration, journal, HSM, organisation keys, the line, target
 * profile, verified firmware).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>

#include <openssl/evp.h>

#include "formats/jws.h"
#include "formats/record.h"
#include "formats/serial.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "hsm/anchor.h"
#include "run.h"

static imp_err serial_format(void *arg, uint64_t counter, char *out, size_t cap)
{
	const struct fmt_config *cfg = arg;

	return fmt_serial_format(cfg->serial.prefix, cfg->serial.width, cfg->serial.check_digit,
				 cfg->serial.start - 1 + counter, out, cap);
}

static imp_err checkpoint_sign(void *arg, const uint8_t digest[32], uint8_t raw[64])
{
	struct st_run *l = arg;

	return hsm_sign_digest(l->journal_session, l->station.org.key[HSM_ORG_RECORD], digest,
			       raw);
}

const char *st_line_url(const struct station_ctx *ctx, const struct fmt_config *cfg)
{
	return ctx->line_url ? ctx->line_url : cfg->line.url;
}

void st_line_opts(const struct station_ctx *ctx, const struct fmt_config *cfg,
		  struct line_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->conninfo = st_line_url(ctx, cfg);
	o->station_id = cfg->station_id;
	o->block = cfg->line.block;
	o->quota = cfg->line.quota;
	o->connect_timeout_s = (int)cfg->line.connect_timeout;
}

/* Line mode: connect (or go on offline) and start feeding the line. */
static imp_err open_line(struct station_ctx *ctx, struct st_run *l)
{
	struct line_opts o;
	char *pem = NULL;
	imp_err rc;

	st_line_opts(ctx, &l->cfg, &o);
	/* The station's certificate for the line's registry of stations. */
	if (fmt_cert_to_pem(l->station.org.cert[HSM_ORG_RECORD], &pem) != IMP_OK)
		pem = NULL;
	o.certificate_pem = pem;
	rc = line_open(&o, l->journal, &l->line);
	free(pem);
	if (rc != IMP_OK)
		return rc;
	l->station.line = l->line;
	return line_start_feed(l->line, 250);
}

void st_journal_path(const struct station_ctx *ctx, const struct fmt_config *cfg, char *out,
		     size_t cap)
{
	if (cfg->journal)
		snprintf(out, cap, "%s", cfg->journal);
	else
		snprintf(out, cap, "%s/journal.sqlite", ctx->data_dir);
}

static imp_err load_firmware(struct st_run *l)
{
	const struct fmt_config *cfg = &l->cfg;
	const struct board_profile_region *flash;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	imp_err rc;

	if (!cfg->firmware.image)
		return IMP_OK;
	if (!cfg->firmware.signature) {
		IMP_ERROR("config: firmware.signature: an image without a signature is never "
			  "programmed; sign it with 'imprint firmware sign %s' and name the "
			  "signature in firmware.signature", cfg->firmware.image);
		return IMP_ERR_FIRMWARE;
	}
	rc = imp_read_file(cfg->firmware.image, &l->firmware, &l->firmware_len);
	if (rc != IMP_OK) {
		IMP_ERROR("cannot read firmware image %s", cfg->firmware.image);
		return rc;
	}
	rc = imp_read_file(cfg->firmware.signature, &sig, &sig_len);
	if (rc != IMP_OK) {
		IMP_ERROR("cannot read firmware signature %s", cfg->firmware.signature);
		return rc;
	}
	rc = prov_firmware_check(&l->station.org, l->firmware, l->firmware_len, sig, sig_len);
	free(sig);
	if (rc != IMP_OK)
		return rc;
	flash = board_profile_region(l->profile, "flash");
	if (!flash || l->firmware_len == 0 || l->firmware_len > flash->size) {
		IMP_ERROR("firmware image %s (%zu bytes) does not fit the target's flash",
			  cfg->firmware.image, l->firmware_len);
		return IMP_ERR_FIRMWARE;
	}
	l->station.firmware = l->firmware;
	l->station.firmware_len = l->firmware_len;
	l->station.firmware_addr = flash->base;
	if (EVP_Digest(l->firmware, l->firmware_len, l->station.firmware_sha256, NULL,
		       EVP_sha256(), NULL) != 1)
		return IMP_ERR_CRYPTO;
	return IMP_OK;
}

/*
 * The hierarchy must have been made for the configured device profile (a
 * Matter DAC needs a PAI): its note in the trust folder says which; none
 * is the default's (made before profiles existed).
 */
static imp_err profile_matches(struct station_ctx *ctx, const struct fmt_config *cfg)
{
	char trust[4200], made[128];
	imp_err rc;

	st_trust_dir(ctx, trust, sizeof(trust));
	rc = fmt_certprof_trust_name(trust, made, sizeof(made));
	if (rc != IMP_OK)
		return rc;
	if (!made[0])
		snprintf(made, sizeof(made), "%s", FMT_CERTPROF_DEFAULT);
	if (strcmp(made, cfg->certificate.profile) == 0)
		return IMP_OK;
	IMP_ERROR("the hierarchy in %s was made for certificate profile '%s', and "
		  "certificate.profile is '%s'; set certificate.profile to '%s', or make the "
		  "hierarchy again with 'imprint hsm init --force' (nothing was touched)",
		  trust, made, cfg->certificate.profile, made);
	return IMP_ERR_CONFIG;
}

static imp_err open_hsm(struct station_ctx *ctx, struct st_run *l, struct jnl_opts *jo,
			char fpr[65], bool boards)
{
	imp_err rc = st_open_hsm(ctx, &l->cfg, &l->hsm);

	if (rc == IMP_OK)
		rc = hsm_session_open(l->hsm, &l->journal_session);
	if (rc == IMP_OK)
		rc = hsm_org_load(l->journal_session, &l->station.org);
	/* Before the journal, any board or serial: refuse a key mode the token
	 * cannot do (docs/HSM.md). */
	if (rc == IMP_OK && boards)
		rc = hsm_org_ready(l->hsm, &l->station.org, st_hsm_mode(l->cfg.key_mode));
	if (rc == IMP_OK && boards)
		rc = profile_matches(ctx, &l->cfg);
	if (rc != IMP_OK)
		return rc;
	l->station.hsm = l->hsm;
	rc = fmt_cert_fingerprint(l->station.org.cert[HSM_ORG_RECORD], fpr);
	if (rc != IMP_OK)
		return rc;
	jo->sign = checkpoint_sign;
	jo->sign_arg = l;
	jo->signer_fpr = fpr;
	return IMP_OK;
}

/* The header of every identity record this run signs (step_record's chain). */
static imp_err record_header(struct st_run *l)
{
	X509 *chain[2] = { l->station.org.cert[HSM_ORG_RECORD], l->station.org.cert[HSM_ORG_ROOT] };

	if (l->station.record_header)
		return IMP_OK;
	return fmt_record_header_new(X509_get0_pubkey(chain[0]), "identity", chain, 2,
				     &l->station.record_header);
}

/* The HSM keeps the signed head and the counter at the last checkpoint. */
void st_anchor_update(struct st_run *l)
{
	struct hsm_anchor a = { .found = true };
	imp_err rc;

	if (!l->journal || !l->journal_session)
		return;
	rc = jnl_checkpoint_head(l->journal, &a.seq, a.head, &a.serial_counter);
	/* The next serials reserved in the same object: a next run of up to
	 * JNL_RESERVE_BLOCK boards writes no reservation of its own. */
	a.reserved = a.serial_counter + JNL_RESERVE_BLOCK;
	if (l->anchor_put.reserved > a.reserved)
		a.reserved = l->anchor_put.reserved;
	/* The end of a run and the close of its context both come here: the
	 * second finds the checkpoint the first stored (an HSM object write). */
	if (rc == IMP_OK && l->anchor_put.found && l->anchor_put.seq == a.seq &&
	    l->anchor_put.serial_counter == a.serial_counter &&
	    l->anchor_put.reserved == a.reserved && strcmp(l->anchor_put.head, a.head) == 0)
		return;
	if (rc == IMP_OK && a.seq > 0) {
		rc = hsm_anchor_put(l->journal_session, l->cfg.station_id, &a);
		if (rc == IMP_OK)
			l->anchor_put = a;
	}
	if (rc != IMP_OK)
		IMP_WARN("the hsm did not take the journal's anchor (%s): the next run retries",
			 imp_err_name(rc));
}

void st_run_checkpoint(struct st_run *l)
{
	if (!l->journal || !l->journal_session)
		return;
	if (jnl_checkpoint(l->journal) != IMP_OK)
		IMP_WARN("the journal's checkpoint failed (%s): take it with `imprint journal "
			 "checkpoint`", jnl_last_error());
	st_anchor_update(l);
}

/* `journal checkpoint --serials-after N` (st_journal_serials_after). */
static uint64_t serials_after;
static bool serials_after_given;

void st_journal_serials_after(uint64_t counter)
{
	serials_after = counter;
	serials_after_given = true;
}

/* The journal's reservation of serial counters (jnl_opts.reserve): in the
 * HSM's anchor, before the first of them is issued. */
static imp_err reserve_serials(void *arg, uint64_t upto)
{
	struct st_run *l = arg;
	struct hsm_anchor a = l->anchor_put;
	imp_err rc;

	a.found = true;
	a.reserved = upto;
	rc = hsm_anchor_put(l->journal_session, l->cfg.station_id, &a);
	if (rc == IMP_OK && upto > l->anchor_put.reserved)
		l->anchor_put.reserved = upto;
	return rc;
}

/* Before a journal is opened for writing: what the HSM's anchor says. */
static imp_err hsm_anchor_check(struct st_run *l, const char *jpath, struct hsm_anchor *ha)
{
	struct stat sb;
	imp_err rc;

	rc = hsm_anchor_get(l->journal_session, l->cfg.station_id, ha);
	if (rc != IMP_OK || !ha->found)
		return rc;
	if (stat(jpath, &sb) != 0 || sb.st_size == 0) {
		IMP_ERROR("no journal at %s (missing or empty), but the hsm's anchor says station "
			  "%s signed its journal up to event %llu with %llu serials issued (%llu "
			  "reserved): a new journal would issue them again; restore the journal "
			  "from backup", jpath, l->cfg.station_id, (unsigned long long)ha->seq,
			  (unsigned long long)ha->serial_counter,
			  (unsigned long long)ha->reserved);
		return IMP_ERR_JOURNAL;
	}
	return IMP_OK;
}

static imp_err open_journal(struct station_ctx *ctx, struct st_run *l, struct jnl_opts *jo,
			    bool writable)
{
	struct hsm_anchor ha = { 0 };
	char jpath[4200];
	imp_err rc;

	st_journal_path(ctx, &l->cfg, jpath, sizeof(jpath));
	jo->station_id = l->cfg.station_id;
	jo->quota = writable ? l->cfg.quota : 0;
	jo->format_serial = serial_format;
	jo->format_arg = &l->cfg;
	jo->read_only = !writable;
	jo->leased_serials = writable && st_line_url(ctx, &l->cfg);
	jo->must_exist = jo->read_only;
	if (writable && l->journal_session) {
		rc = hsm_anchor_check(l, jpath, &ha);
		if (rc != IMP_OK)
			return rc;
		/* What the HSM stored stays in every value this run stores. */
		l->anchor_put = ha;
		jo->reserve = reserve_serials;
		jo->reserve_arg = l;
		jo->reserved = ha.found ? ha.reserved : 0;
		jo->serials_after = serials_after;
		jo->serials_after_given = serials_after_given;
	}
	rc = jnl_open(jpath, jo, &l->journal);
	if (rc == IMP_ERR_NOT_FOUND)
		IMP_ERROR("no journal at %s yet: nothing was provisioned with it (a new station "
			  "starts with 'imprint hsm init', then 'imprint provision'; 'imprint "
			  "demo' runs one on virtual boards)", jpath);
	else if (rc != IMP_OK)
		IMP_ERROR("%s", jnl_last_error());
	if (rc != IMP_OK)
		return rc;
	if (ha.found) {
		char msg[JNL_MSG_MAX];

		rc = jnl_check_external(l->journal, "the hsm's journal anchor",
					ha.serial_counter, ha.seq, ha.head, msg, sizeof(msg));
		if (rc == IMP_ERR_AUDIT) {
			IMP_ERROR("%s", msg);
			rc = IMP_ERR_JOURNAL;
		}
		if (rc != IMP_OK)
			return rc;
	} else if (writable && l->journal_session) {
		struct jnl_info info;

		/* The journal has signed events but the hsm no anchor of them:
		 * this run writes one, and a journal put back from an older
		 * copy could not be told from the hsm meanwhile. */
		if (jnl_info(l->journal, &info) == IMP_OK && info.last_checkpoint_seq > 0)
			IMP_WARN("the hsm holds no journal anchor of station %s, though its "
				 "journal has signed events (up to event %llu): if the anchor was "
				 "removed from the token, check the journal against a backup; this "
				 "run writes a new one", l->cfg.station_id,
				 (unsigned long long)info.head_seq);
	}
	l->station.journal = l->journal;
	if (writable) {
		struct jnl_info info;

		/* A quota of 0 in the options means "keep": store it explicitly. */
		rc = jnl_info(l->journal, &info);
		if (rc == IMP_OK && info.quota != l->cfg.quota)
			rc = jnl_set_quota(l->journal, l->cfg.quota);
		if (rc == IMP_OK && jo->leased_serials)
			rc = open_line(ctx, l);
	}
	return rc;
}

imp_err st_run_open(struct station_ctx *ctx, struct st_run *l, unsigned need)
{
	unsigned todo = need & ~l->opened;
	struct jnl_opts jo = { 0 };
	char fpr[65];
	imp_err rc;

	if (todo & ST_SETUP_CONFIG) {
		rc = st_load_config(ctx, &l->cfg);
		if (rc != IMP_OK)
			return rc;
		l->station.cfg = &l->cfg;
		l->station.operator_name =
			l->cfg.operator_name ? l->cfg.operator_name : getenv("USER");
	}
	l->opened |= need & NEED_CONFIG;
	if (todo & ST_SETUP_HSM) {
		if (l->journal)
			return IMP_ERR_INTERNAL; /* a read-only journal is already open */
		rc = open_hsm(ctx, l, &jo, fpr, (need & ST_SETUP_BOARDS) != 0);
		if (rc == IMP_OK)
			rc = open_journal(ctx, l, &jo, true);
		if (rc != IMP_OK)
			return rc;
		l->opened |= ST_SETUP_HSM | ST_SETUP_JOURNAL;
	} else if (todo & ST_SETUP_JOURNAL) {
		rc = open_journal(ctx, l, &jo, false);
		if (rc != IMP_OK)
			return rc;
		l->opened |= ST_SETUP_JOURNAL;
	}
	if (todo & ST_SETUP_BOARDS) {
		/* The HSM was opened by an earlier set-up, without boards. */
		rc = (todo & ST_SETUP_HSM) ? IMP_OK
					   : hsm_org_ready(l->hsm, &l->station.org,
							   st_hsm_mode(l->cfg.key_mode));
		if (rc == IMP_OK)
			rc = hsm_org_session_keys(l->journal_session, &l->station.org);
		if (rc == IMP_OK)
			rc = record_header(l);
		if (rc == IMP_OK)
			rc = board_profile_load(l->cfg.target, ctx->data_dir, &l->profile);
		if (rc == IMP_OK) {
			l->station.profile = l->profile;
			rc = load_firmware(l);
		}
		if (rc == IMP_OK)
			rc = prov_matter_open(&l->station, l->journal_session);
		if (rc != IMP_OK)
			return rc;
		l->opened |= ST_SETUP_BOARDS;
	}
	return IMP_OK;
}

void st_run_close(struct st_run *l)
{
	prov_fixtures_stop(); /* the fixtures' kept OpenOCDs, if any */
	if (l->line) {
		/* Feed what this run produced; what cannot go now goes next run
		 * or with 'imprint line sync'. */
		line_stop_feed(l->line);
		line_sync(l->line, NULL);
		line_close(l->line);
	}
	/* Every run ends signed: the audit and `status --verify` require a
	 * checkpoint that covers the head. */
	st_run_checkpoint(l);
	jnl_close(l->journal);
	fmt_jws_header_free(l->station.record_header);
	hsm_org_release(&l->station.org);
	hsm_session_close(l->journal_session);
	hsm_close(l->hsm);
	board_profile_free(l->profile);
	prov_matter_close(&l->station);
	free(l->firmware);
	fmt_config_release(&l->cfg);
	memset(l, 0, sizeof(*l));
}

