/*
 * Matter factory data per board (docs/MATTER.md), when the configuration
 * has a "matter" object:
 *
 *   CERTIFY  makes it: a setup passcode from the HSM's RNG (rejection
 *            sampled to the valid codes), a discriminator (configured or
 *            random, 12 bits), a random salt; the SPAKE2+ verifier is
 *            computed on the station. The journal gets the step data below,
 *            written with the move to INJECT before anything reaches the
 *            board; the passcode only sealed under the HSM's sealing key.
 *   INJECT   delivers it: the passcode is unsealed, the verifier computed
 *            again and held to the journaled digest, the record (verifier,
 *            salt, iterations, discriminator, VID/PID, certification
 *            declaration) stored through the agent and read back.
 *   RECORD   carries VID, PID, discriminator and the verifier's SHA-256.
 *   label    unseals the passcode to print the onboarding codes
 *            (`imprint label`).
 *
 * Step data "matter" (a JSON object in the board's journal row):
 *   vendor_id, product_id, discriminator, flow, discovery, iterations:
 *   integers; salt: hex; verifier_sha256: hex (32 bytes); passcode_sealed:
 *   hex, IV[12] || AES-256-GCM(passcode as 4 bytes little-endian) ||
 *   tag[16] with AAD "imprint-matter-passcode-v1|UID|SERIAL"; cd_sha256:
 *   hex, only when a certification declaration is configured.
 *
 * The passcode is never written anywhere in clear: not in the journal, the
 * record, a log line or the board (which gets only the verifier); buffers
 * that held it are wiped.
 */
#ifndef PROVISIONER_MATTER_H
#define PROVISIONER_MATTER_H

#include <jansson.h>

#include "board/link.h"
#include "formats/matter.h"
#include "formats/record.h"
#include "hsm/hsm.h"
#include "imprint/err.h"

#define PROV_MATTER_SEAL_LABEL "imprint-matter-seal" /* persisted: the token key's label */

struct prov_station;

/*
 * Station set-up (main thread, before any worker): the sealing key (made
 * in the token if absent) and the certification declaration file, read
 * once. Does nothing when the configuration has no "matter". Release with
 * prov_matter_close. IMP_ERR_CONFIG for a declaration file that cannot be
 * read or is larger than FMT_MATTER_CD_MAX (message names the file).
 */
imp_err prov_matter_open(struct prov_station *st, struct hsm_session *s);
void prov_matter_close(struct prov_station *st);

/* CERTIFY: the board's factory data into add["matter"]. */
imp_err prov_matter_make(const struct prov_station *st, struct hsm_session *s,
			 const char *uid, const char *serial, json_t *add);

/* INJECT: deliver what data["matter"] describes and check the read-back
 * (IMP_ERR_VERIFY if the board holds another record afterwards). */
imp_err prov_matter_deliver(const struct prov_station *st, struct hsm_session *s,
			    struct board_link *link, const char *uid, const char *serial,
			    const json_t *matter);

/* RECORD: the record's matter member from data["matter"]; *out points into
 * digest (32 bytes, the caller's). IMP_ERR_JOURNAL if it is malformed. */
imp_err prov_matter_record(const json_t *matter, struct fmt_record_matter *out,
			   uint8_t digest[32]);

/*
 * The board's onboarding payload, its passcode unsealed with the token's
 * sealing key `seal` (hsm_seal_key with PROV_MATTER_SEAL_LABEL). The
 * caller wipes *out after use (imp_wipe). IMP_ERR_VERIFY if the sealed
 * passcode does not open for this UID and serial, or does not give the
 * journaled verifier for its salt and iterations.
 */
imp_err prov_matter_payload(struct hsm_session *s, hsm_obj seal, const char *uid,
			    const char *serial, const json_t *matter,
			    struct fmt_matter_payload *out);

#endif
