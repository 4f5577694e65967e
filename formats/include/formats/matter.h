/*
 * Matter onboarding: the setup passcode, the discriminator, the SPAKE2+
 * verifier a device keeps instead of its passcode, the onboarding payload
 * as the "MT:" QR string and the manual pairing code (Matter Core
 * Specification, section 5.1 "Onboarding Payload", and section 3.10,
 * SPAKE2+ with the PBKDF2 parameters of the PASE session). docs/MATTER.md.
 *
 * Pure functions: no I/O, no random source (the station draws the random
 * bytes from its HSM and hands them in), so the same code is checked
 * against the specification's and the reference implementation's vectors.
 */
#ifndef FORMATS_MATTER_H
#define FORMATS_MATTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

#define FMT_MATTER_PASSCODE_MIN 1u          /* 5.1.7 */
#define FMT_MATTER_PASSCODE_MAX 99999998u   /* 5.1.7 */
#define FMT_MATTER_PASSCODE_BITS 27u
#define FMT_MATTER_DISCRIMINATOR_MAX 0xFFFu /* 12 bits */
#define FMT_MATTER_SALT_MIN 16u             /* 3.10: 16..32 bytes */
#define FMT_MATTER_SALT_MAX 32u
#define FMT_MATTER_ITER_MIN 1000u           /* 3.10: 1000..100000 */
#define FMT_MATTER_ITER_MAX 100000u
/* Serialized verifier: W0 (32 bytes, big-endian) || L (65, uncompressed). */
#define FMT_MATTER_W0_LEN 32u
#define FMT_MATTER_L_LEN 65u
#define FMT_MATTER_VERIFIER_LEN (FMT_MATTER_W0_LEN + FMT_MATTER_L_LEN)
/* "MT:" and 19 Base38 characters (88 bits = 11 bytes), and a NUL. */
#define FMT_MATTER_QR_MAX 23u
/* The 11-digit code, or the 21-digit one with VID/PID, and a NUL. */
#define FMT_MATTER_MANUAL_MAX 22u

/* Commissioning flow (5.1.3.1, 2 bits). */
enum fmt_matter_flow {
	FMT_MATTER_FLOW_STANDARD = 0,
	FMT_MATTER_FLOW_USER_INTENT = 1,
	FMT_MATTER_FLOW_CUSTOM = 2,
};

/* Discovery capabilities bitmask (5.1.3.1 "Rendezvous Information"). */
#define FMT_MATTER_DISC_SOFTAP 0x01u
#define FMT_MATTER_DISC_BLE 0x02u
#define FMT_MATTER_DISC_ON_NETWORK 0x04u
#define FMT_MATTER_DISC_WIFI_PAF 0x08u
#define FMT_MATTER_DISC_NFC 0x10u
#define FMT_MATTER_DISC_ALL 0x1Fu

/* What the onboarding payload carries (version 0 only). */
struct fmt_matter_payload {
	uint16_t vendor_id;
	uint16_t product_id;
	enum fmt_matter_flow flow;
	uint8_t discovery;       /* FMT_MATTER_DISC_* bits */
	uint16_t discriminator;  /* 12 bits */
	uint32_t passcode;       /* a valid passcode (fmt_matter_passcode_valid) */
};

/*
 * A passcode the specification allows: 1..99999998 and none of 00000000,
 * 11111111, 22222222, ..., 99999999, 12345678, 87654321 (5.1.7.1).
 */
bool fmt_matter_passcode_valid(uint32_t passcode);

/*
 * One draw of rejection sampling: the low 27 bits of rnd (little-endian)
 * are a candidate; true and *out set if it is a valid passcode, false if
 * the caller must draw four new bytes (about one draw in four). Uniform
 * over the valid passcodes; never yields an invalid one.
 */
bool fmt_matter_passcode_draw(const uint8_t rnd[4], uint32_t *out);

/*
 * The SPAKE2+ verifier of a passcode (3.10): PBKDF2-HMAC-SHA256 over the
 * passcode as 4 bytes little-endian with salt and iterations, 80 bytes ->
 * w0s || w1s (40 each); w0 = w0s mod n, w1 = w1s mod n (n the order of
 * P-256); L = w1 * G. out = w0 (32, big-endian) || L (65, uncompressed).
 * IMP_ERR_USAGE for an invalid passcode, a salt outside 16..32 bytes or an
 * iteration count outside 1000..100000; IMP_ERR_CRYPTO if OpenSSL fails.
 * Intermediate secrets are wiped.
 */
imp_err fmt_matter_verifier(uint32_t passcode, const uint8_t *salt, size_t salt_len,
			    uint32_t iterations, uint8_t out[FMT_MATTER_VERIFIER_LEN]);

/*
 * Base38 (5.1.3.2) of n bytes into out (cap bytes with the NUL): each
 * 3-byte chunk little-endian as 5 characters, a last 2-byte chunk as 4, a
 * last byte as 2, least significant character first. IMP_ERR_USAGE if cap
 * is too small.
 */
imp_err fmt_base38_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* Its inverse; *out_len bytes into out (cap). IMP_ERR_USAGE for a
 * character outside the alphabet, a bad length or an out-of-range chunk. */
imp_err fmt_base38_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len);

/*
 * The QR code payload "MT:" + Base38 of the 88-bit packing (5.1.3.1),
 * least significant bit first: version (3) = 0, vendor ID (16), product
 * ID (16), commissioning flow (2), discovery capabilities (8),
 * discriminator (12), passcode (27), padding (4) = 0.
 * IMP_ERR_USAGE for a field out of range, a discovery flag outside
 * FMT_MATTER_DISC_ALL or an invalid passcode.
 */
imp_err fmt_matter_qr(const struct fmt_matter_payload *p, char out[FMT_MATTER_QR_MAX]);
/* The same packing with only the field widths checked (a 27-bit passcode
 * the specification forbids, unknown discovery flags are encoded too): for test vectors and for
 * reading what other tools wrote. Never for a code the station issues. */
imp_err fmt_matter_qr_raw(const struct fmt_matter_payload *p, char out[FMT_MATTER_QR_MAX]);

/* Parse a "MT:" payload without TLV extension back into *p (version 0,
 * padding zero, fields in range; the passcode and unknown discovery flags
 * are not judged, as a reader of other tools' payloads must not).
 * IMP_ERR_USAGE otherwise. */
imp_err fmt_matter_qr_parse(const char *qr, struct fmt_matter_payload *p);

/*
 * The manual pairing code (5.1.4): for the standard flow 11 digits
 * (1 digit: VID/PID flag and discriminator bits 11..10; 5 digits:
 * discriminator bits 9..8 and passcode bits 13..0; 4 digits: passcode
 * bits 26..14), otherwise 21 digits with the vendor and product ID in 5
 * digits each; then the Verhoeff check digit. IMP_ERR_USAGE for fields
 * out of range or an invalid passcode.
 */
imp_err fmt_matter_manual_code(const struct fmt_matter_payload *p,
			       char out[FMT_MATTER_MANUAL_MAX]);
/* The same with only the field widths checked (as fmt_matter_qr_raw). */
imp_err fmt_matter_manual_code_raw(const struct fmt_matter_payload *p,
				   char out[FMT_MATTER_MANUAL_MAX]);

/* The Verhoeff check digit ('0'..'9') of a string of decimal digits, or
 * 0 if it holds anything else. */
char fmt_verhoeff_check(const char *digits);

#endif
