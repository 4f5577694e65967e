/*
 * Typed client of the provisioning agent. Every response is parsed with a
 * bounds-checked reader; trailing bytes are an error.
 */
#include <stdlib.h>
#include <string.h>

#include "board/agent.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "wire/factory.h"
#include "wire/payload.h"

static _Thread_local int last_status = -1;

int board_agent_last_status(void)
{
	return last_status;
}

const char *board_agent_cmd_name(unsigned cmd)
{
	switch (cmd) {
	case WIRE_CMD_IDENTIFY: return "IDENTIFY";
	case WIRE_CMD_GENERATE_KEY: return "GENERATE_KEY";
	case WIRE_CMD_GET_CSR: return "GET_CSR";
	case WIRE_CMD_IMPORT_WRAPPED_KEY: return "IMPORT_WRAPPED_KEY";
	case WIRE_CMD_STORE_CERT: return "STORE_CERT";
	case WIRE_CMD_STORE_IDENTITY: return "STORE_IDENTITY";
	case WIRE_CMD_SIGN_CHALLENGE: return "SIGN_CHALLENGE";
	case WIRE_CMD_READ_IDENTITY: return "READ_IDENTITY";
	case WIRE_CMD_LOCK: return "LOCK";
	case WIRE_CMD_ECHO: return "ECHO";
	case WIRE_CMD_STORE_FACTORY_DATA: return "STORE_FACTORY_DATA";
	case WIRE_CMD_READ_FACTORY_DATA: return "READ_FACTORY_DATA";
	default: return "UNKNOWN";
	}
}

const char *board_agent_status_name(unsigned status)
{
	switch (status) {
	case WIRE_ST_OK: return "OK";
	case WIRE_ST_UNKNOWN_CMD: return "UNKNOWN_CMD";
	case WIRE_ST_BAD_REQUEST: return "BAD_REQUEST";
	case WIRE_ST_STATE: return "STATE";
	case WIRE_ST_CRYPTO: return "CRYPTO";
	case WIRE_ST_NO_KEY: return "NO_KEY";
	case WIRE_ST_REFUSED: return "REFUSED";
	case WIRE_ST_STORAGE: return "STORAGE";
	case WIRE_ST_EXISTS: return "EXISTS";
	default: return "UNKNOWN";
	}
}

static const char *status_hint(unsigned status)
{
	switch (status) {
	case WIRE_ST_UNKNOWN_CMD: return "the agent is too old for this command";
	case WIRE_ST_BAD_REQUEST: return "the agent could not parse the request";
	case WIRE_ST_STATE: return "not allowed in the board's current state (slot or board locked?)";
	case WIRE_ST_CRYPTO: return "unwrap, key agreement or signature failed on the board";
	case WIRE_ST_NO_KEY: return "the slot holds no key";
	case WIRE_ST_REFUSED: return "the board refused";
	case WIRE_ST_STORAGE: return "secure storage full or write failed";
	case WIRE_ST_EXISTS: return "the slot already holds a key";
	default: return "unknown status";
	}
}

const char *board_lifecycle_name(unsigned lc)
{
	switch (lc) {
	case WIRE_LC_OPEN: return "open";
	case WIRE_LC_PERSONALISED: return "personalised";
	case WIRE_LC_LOCKED: return "locked";
	default: return "unknown";
	}
}

/* ---- request building and response reading ----------------------------- */

static imp_err bad_payload(unsigned cmd, const char *what)
{
	IMP_ERROR("agent %s: malformed response (%s); is the agent's protocol version %u?",
		  board_agent_cmd_name(cmd), what, WIRE_AGENT_PROTO_VERSION);
	return IMP_ERR_PROTOCOL;
}

/* Finish reading: every byte must have been consumed. */
static imp_err rd_end(struct wire_rd *r, unsigned cmd)
{
	if (r->bad)
		return bad_payload(cmd, "truncated");
	if (r->off != r->n)
		return bad_payload(cmd, "trailing bytes");
	return IMP_OK;
}

/*
 * Send w as command cmd, check the status byte; on success rsp holds the
 * frame and *r reads the fields after the status.
 */
static imp_err call(struct board_link *l, unsigned cmd, const struct wire_wr *w, unsigned timeout_ms,
		    struct wire_frame *rsp, struct wire_rd *r)
{
	imp_err rc;

	last_status = -1;
	if (w->overflow) {
		IMP_ERROR("agent %s: request too large for one frame (%u bytes)",
			  board_agent_cmd_name(cmd), WIRE_FRAME_MAX_PAYLOAD);
		return IMP_ERR_USAGE;
	}
	rc = board_link_transact(l, (uint8_t)cmd, w->p, w->n, rsp, timeout_ms);
	if (rc != IMP_OK)
		return rc;
	if (rsp->len < 1)
		return bad_payload(cmd, "no status byte");
	last_status = rsp->payload[0];
	if (rsp->payload[0] != WIRE_ST_OK) {
		IMP_ERROR("agent %s: board answered %s: %s", board_agent_cmd_name(cmd),
			  board_agent_status_name(rsp->payload[0]), status_hint(rsp->payload[0]));
		return IMP_ERR_BOARD;
	}
	wire_rd_init(r, rsp->payload + 1, rsp->len - 1u);
	return IMP_OK;
}

/* A call's buffers: about 8 KiB, on the caller's stack (fixture threads
 * have PROV_FIXTURE_STACK, 512 KiB, and their deep calls into OpenSSL and
 * SQLite have touched those pages already), not 8 KiB from the shared heap
 * for each of a board's ten agent calls. */
struct ctx {
	uint8_t wbuf[WIRE_FRAME_MAX_PAYLOAD];
	struct wire_wr w;
	struct wire_frame rsp;
	struct wire_rd r;
};

static struct ctx *ctx_init(struct ctx *c)
{
	wire_wr_init(&c->w, c->wbuf, sizeof(c->wbuf));
	return c;
}

static void ctx_release(struct ctx *c)
{
	imp_wipe(c, sizeof(*c)); /* requests may carry wrapped keys */
}

imp_err board_agent_identify(struct board_link *l, struct board_agent_info *out)
{
	struct ctx cs, *c = ctx_init(&cs);
	const uint8_t *p;
	imp_err rc;

	rc = call(l, WIRE_CMD_IDENTIFY, &c->w, BOARD_AGENT_TIMEOUT_FAST_MS, &c->rsp, &c->r);
	if (rc != IMP_OK)
		goto cleanup;
	memset(out, 0, sizeof(*out));
	p = wire_rd_bytes(&c->r, WIRE_UID_LEN);
	if (p)
		memcpy(out->uid, p, WIRE_UID_LEN);
	out->lifecycle = wire_rd_u8(&c->r);
	out->proto_version = wire_rd_u8(&c->r);
	out->agent_version = wire_rd_u16(&c->r);
	out->fuses = wire_rd_u8(&c->r);
	out->slots = wire_rd_u8(&c->r);
	p = wire_rd_bytes(&c->r, WIRE_PUB_LEN);
	if (p)
		memcpy(out->transport_pub, p, WIRE_PUB_LEN);
	rc = rd_end(&c->r, WIRE_CMD_IDENTIFY);
	if (rc == IMP_OK && out->transport_pub[0] != 0x04)
		rc = bad_payload(WIRE_CMD_IDENTIFY, "transport key is not an uncompressed point");
	if (rc == IMP_OK && out->proto_version != WIRE_AGENT_PROTO_VERSION) {
		IMP_ERROR("agent speaks protocol %u, the station %u; load the matching agent image",
			  out->proto_version, WIRE_AGENT_PROTO_VERSION);
		rc = IMP_ERR_PROTOCOL;
	}
cleanup:
	ctx_release(c);
	return rc;
}

static imp_err read_pub(struct wire_rd *r, unsigned cmd, uint8_t pub[WIRE_PUB_LEN])
{
	const uint8_t *p = wire_rd_bytes(r, WIRE_PUB_LEN);
	imp_err rc = rd_end(r, cmd);

	if (rc != IMP_OK)
		return rc;
	if (p[0] != 0x04)
		return bad_payload(cmd, "public key is not an uncompressed point");
	memcpy(pub, p, WIRE_PUB_LEN);
	return IMP_OK;
}

imp_err board_agent_generate_key(struct board_link *l, uint8_t slot, bool reuse,
				 uint8_t pub[WIRE_PUB_LEN])
{
	struct ctx cs, *c = ctx_init(&cs);
	imp_err rc;

	wire_wr_u8(&c->w, slot);
	wire_wr_u8(&c->w, reuse ? 1 : 0);
	rc = call(l, WIRE_CMD_GENERATE_KEY, &c->w, BOARD_AGENT_TIMEOUT_CRYPTO_MS, &c->rsp, &c->r);
	if (rc == IMP_OK)
		rc = read_pub(&c->r, WIRE_CMD_GENERATE_KEY, pub);
	ctx_release(c);
	return rc;
}

imp_err board_agent_get_csr(struct board_link *l, uint8_t slot, const char *subject,
			    uint8_t **csr, size_t *csr_len)
{
	struct ctx cs, *c = ctx_init(&cs);
	const uint8_t *p;
	size_t n = 0;
	imp_err rc;

	*csr = NULL;
	*csr_len = 0;
	wire_wr_u8(&c->w, slot);
	wire_wr_blob(&c->w, subject, strlen(subject));
	rc = call(l, WIRE_CMD_GET_CSR, &c->w, BOARD_AGENT_TIMEOUT_CRYPTO_MS, &c->rsp, &c->r);
	if (rc != IMP_OK)
		goto cleanup;
	p = wire_rd_blob(&c->r, &n);
	rc = rd_end(&c->r, WIRE_CMD_GET_CSR);
	if (rc != IMP_OK)
		goto cleanup;
	if (n < 2 || p[0] != 0x30) {
		rc = bad_payload(WIRE_CMD_GET_CSR, "CSR is not DER");
		goto cleanup;
	}
	*csr = malloc(n);
	if (!*csr) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	memcpy(*csr, p, n);
	*csr_len = n;
cleanup:
	ctx_release(c);
	return rc;
}

imp_err board_agent_import_wrapped_key(struct board_link *l, const struct board_wrapped_key *k,
				       uint8_t *out, size_t cap, size_t *out_len)
{
	struct ctx cs, *c;
	const uint8_t *p;
	size_t want;
	imp_err rc;

	*out_len = 0;
	if (k->kind == WIRE_KEY_EC_P256)
		want = WIRE_PUB_LEN;
	else if (k->kind == WIRE_KEY_PSK)
		want = BOARD_KCV_LEN;
	else {
		IMP_ERROR("agent IMPORT_WRAPPED_KEY: unknown key kind %u", k->kind);
		return IMP_ERR_USAGE;
	}
	if (cap < want)
		return IMP_ERR_USAGE;
	c = ctx_init(&cs);
	wire_wr_u8(&c->w, k->slot);
	wire_wr_u8(&c->w, k->kind);
	wire_wr_u8(&c->w, k->alg);
	wire_wr_bytes(&c->w, k->station_pub, WIRE_PUB_LEN);
	wire_wr_blob(&c->w, k->iv, k->iv_len);
	wire_wr_blob(&c->w, k->wrapped, k->wrapped_len);
	rc = call(l, WIRE_CMD_IMPORT_WRAPPED_KEY, &c->w, BOARD_AGENT_TIMEOUT_CRYPTO_MS, &c->rsp,
		  &c->r);
	if (rc != IMP_OK)
		goto cleanup;
	p = wire_rd_bytes(&c->r, want);
	rc = rd_end(&c->r, WIRE_CMD_IMPORT_WRAPPED_KEY);
	if (rc != IMP_OK)
		goto cleanup;
	if (want == WIRE_PUB_LEN && p[0] != 0x04) {
		rc = bad_payload(WIRE_CMD_IMPORT_WRAPPED_KEY, "public key is not uncompressed");
		goto cleanup;
	}
	memcpy(out, p, want);
	*out_len = want;
cleanup:
	ctx_release(c);
	return rc;
}

static imp_err call_empty(struct board_link *l, unsigned cmd, struct ctx *c, unsigned tmo)
{
	imp_err rc = call(l, cmd, &c->w, tmo, &c->rsp, &c->r);

	if (rc == IMP_OK)
		rc = rd_end(&c->r, cmd);
	return rc;
}

imp_err board_agent_store_cert(struct board_link *l, uint8_t slot, const uint8_t *der,
			       size_t der_len)
{
	struct ctx cs, *c = ctx_init(&cs);
	imp_err rc;

	wire_wr_u8(&c->w, slot);
	wire_wr_blob(&c->w, der, der_len);
	rc = call_empty(l, WIRE_CMD_STORE_CERT, c, BOARD_AGENT_TIMEOUT_STORE_MS);
	ctx_release(c);
	return rc;
}

imp_err board_agent_store_identity(struct board_link *l, const char *serial,
				   const uint8_t *identity, size_t identity_len)
{
	struct ctx cs, *c = ctx_init(&cs);
	imp_err rc;

	wire_wr_blob(&c->w, serial, strlen(serial));
	wire_wr_blob(&c->w, identity, identity_len);
	rc = call_empty(l, WIRE_CMD_STORE_IDENTITY, c, BOARD_AGENT_TIMEOUT_STORE_MS);
	ctx_release(c);
	return rc;
}

imp_err board_agent_sign_challenge(struct board_link *l, uint8_t slot,
				   const uint8_t nonce[WIRE_NONCE_LEN], uint8_t *sig, size_t cap,
				   size_t *sig_len)
{
	struct ctx cs, *c = ctx_init(&cs);
	const uint8_t *p;
	size_t n = 0;
	imp_err rc;

	*sig_len = 0;
	wire_wr_u8(&c->w, slot);
	wire_wr_bytes(&c->w, nonce, WIRE_NONCE_LEN);
	rc = call(l, WIRE_CMD_SIGN_CHALLENGE, &c->w, BOARD_AGENT_TIMEOUT_CRYPTO_MS, &c->rsp,
		  &c->r);
	if (rc != IMP_OK)
		goto cleanup;
	p = wire_rd_blob(&c->r, &n);
	rc = rd_end(&c->r, WIRE_CMD_SIGN_CHALLENGE);
	if (rc != IMP_OK)
		goto cleanup;
	if (n == 0 || n > cap) {
		rc = bad_payload(WIRE_CMD_SIGN_CHALLENGE, "signature empty or too long");
		goto cleanup;
	}
	memcpy(sig, p, n);
	*sig_len = n;
cleanup:
	ctx_release(c);
	return rc;
}

void board_identity_release(struct board_identity *id)
{
	if (!id)
		return;
	free(id->serial);
	free(id->identity);
	free(id->cert);
	memset(id, 0, sizeof(*id));
}

static void *dup_bytes(const uint8_t *p, size_t n, bool nul)
{
	uint8_t *d = malloc(n + (nul ? 1 : 0) + 1);

	if (!d)
		return NULL;
	if (n)
		memcpy(d, p, n);
	d[n] = 0;
	return d;
}

imp_err board_agent_read_identity(struct board_link *l, uint8_t slot, struct board_identity *out)
{
	struct ctx cs, *c = ctx_init(&cs);
	const uint8_t *serial, *ident, *cert, *pub;
	size_t sn = 0, in = 0, cn = 0, pn = 0;
	imp_err rc;

	memset(out, 0, sizeof(*out));
	wire_wr_u8(&c->w, slot);
	rc = call(l, WIRE_CMD_READ_IDENTITY, &c->w, BOARD_AGENT_TIMEOUT_FAST_MS, &c->rsp, &c->r);
	if (rc != IMP_OK)
		goto cleanup;
	serial = wire_rd_blob(&c->r, &sn);
	ident = wire_rd_blob(&c->r, &in);
	cert = wire_rd_blob(&c->r, &cn);
	pub = wire_rd_blob(&c->r, &pn);
	out->lifecycle = wire_rd_u8(&c->r);
	rc = rd_end(&c->r, WIRE_CMD_READ_IDENTITY);
	if (rc != IMP_OK)
		goto cleanup;
	if (pn != 0 && (pn != WIRE_PUB_LEN || pub[0] != 0x04)) {
		rc = bad_payload(WIRE_CMD_READ_IDENTITY, "public key neither empty nor 65 bytes");
		goto cleanup;
	}
	if (memchr(serial, 0, sn)) {
		rc = bad_payload(WIRE_CMD_READ_IDENTITY, "serial holds a NUL byte");
		goto cleanup;
	}
	out->serial = dup_bytes(serial, sn, true);
	out->identity = in ? dup_bytes(ident, in, false) : NULL;
	out->cert = cn ? dup_bytes(cert, cn, false) : NULL;
	if (!out->serial || (in && !out->identity) || (cn && !out->cert)) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	out->identity_len = in;
	out->cert_len = cn;
	if (pn) {
		memcpy(out->pub, pub, WIRE_PUB_LEN);
		out->has_pub = true;
	}
cleanup:
	if (rc != IMP_OK)
		board_identity_release(out);
	ctx_release(c);
	return rc;
}

imp_err board_agent_lock(struct board_link *l, uint8_t what)
{
	struct ctx cs, *c = ctx_init(&cs);
	imp_err rc;

	wire_wr_u8(&c->w, what);
	rc = call_empty(l, WIRE_CMD_LOCK, c, BOARD_AGENT_TIMEOUT_STORE_MS);
	ctx_release(c);
	return rc;
}

imp_err board_agent_echo(struct board_link *l, const uint8_t *data, size_t n)
{
	struct ctx cs, *c = ctx_init(&cs);
	const uint8_t *p;
	imp_err rc;

	wire_wr_bytes(&c->w, data, n);
	if (c->w.overflow || n + 1 > WIRE_FRAME_MAX_PAYLOAD) {
		IMP_ERROR("agent ECHO: at most %u bytes", WIRE_FRAME_MAX_PAYLOAD - 1);
		ctx_release(c);
		return IMP_ERR_USAGE;
	}
	rc = call(l, WIRE_CMD_ECHO, &c->w, BOARD_AGENT_TIMEOUT_FAST_MS, &c->rsp, &c->r);
	if (rc != IMP_OK)
		goto cleanup;
	p = wire_rd_bytes(&c->r, n);
	rc = rd_end(&c->r, WIRE_CMD_ECHO);
	if (rc == IMP_OK && n && memcmp(p, data, n) != 0) {
		IMP_ERROR("agent ECHO: the board echoed different bytes; the link corrupts data");
		rc = IMP_ERR_PROTOCOL;
	}
cleanup:
	ctx_release(c);
	return rc;
}

imp_err board_agent_store_factory_data(struct board_link *l, const struct wire_factory *f)
{
	struct ctx cs, *c;
	imp_err rc;

	if (!wire_factory_valid(f)) {
		IMP_ERROR("agent STORE_FACTORY_DATA: a field is out of bounds (salt 16..32 bytes, "
			  "1000..100000 iterations, certification declaration up to %u bytes)",
			  WIRE_FACTORY_CD_MAX);
		return IMP_ERR_USAGE;
	}
	c = ctx_init(&cs);
	wire_factory_write(&c->w, f);
	rc = call_empty(l, WIRE_CMD_STORE_FACTORY_DATA, c, BOARD_AGENT_TIMEOUT_STORE_MS);
	ctx_release(c);
	return rc;
}

imp_err board_agent_read_factory_data(struct board_link *l, uint8_t **rec, size_t *rec_len)
{
	struct ctx cs, *c = ctx_init(&cs);
	const uint8_t *p;
	size_t n = 0;
	imp_err rc;

	*rec = NULL;
	*rec_len = 0;
	rc = call(l, WIRE_CMD_READ_FACTORY_DATA, &c->w, BOARD_AGENT_TIMEOUT_FAST_MS, &c->rsp,
		  &c->r);
	if (rc != IMP_OK)
		goto cleanup;
	p = wire_rd_blob(&c->r, &n);
	rc = rd_end(&c->r, WIRE_CMD_READ_FACTORY_DATA);
	if (rc != IMP_OK || n == 0)
		goto cleanup;
	*rec = dup_bytes(p, n, false);
	if (!*rec) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	*rec_len = n;
cleanup:
	ctx_release(c);
	return rc;
}
