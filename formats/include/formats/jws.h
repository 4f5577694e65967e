/*
 * JWS (RFC 7515) compact serialization, ES256 only (RFC 7518 3.4), and JWK
 * (RFC 7517) of EC P-256 public keys with RFC 7638 thumbprints.
 *
 * The protected header is {"alg":"ES256","typ":TYP,"kid":KID,"x5c":[...]}
 * ("kid" and "x5c" optional), serialised compact with sorted keys.
 * Verification is strict: three base64url segments, no padding, a header
 * that is a JSON object without duplicate keys, "alg" exactly "ES256" (so
 * "none" and everything else are refused), no "crit", a 64-byte signature.
 */
#ifndef FORMATS_JWS_H
#define FORMATS_JWS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "imprint/err.h"
#include "formats/signer.h"

/*
 * Sign payload with s. typ and kid may be NULL (then omitted). x5c is the
 * certificate chain to embed, leaf (the signer's certificate) first;
 * x5c_count 0 omits the member. On success *out is the malloc'ed,
 * NUL-terminated compact serialization (free).
 */
imp_err fmt_jws_sign(const struct fmt_signer *s, const char *typ, const char *kid,
		     X509 *const *x5c, size_t x5c_count,
		     const void *payload, size_t payload_len, char **out);

/*
 * The protected header of many signatures (same typ, kid and x5c: a run's
 * records) made once: its base64url text and the SHA-256 state over it, so
 * that each signature encodes and hashes only its payload. pub (may be
 * NULL) is the key whose kid the header names, kept (a reference) for
 * fmt_jws_header_pub. The output of fmt_jws_sign_with is byte for byte
 * that of fmt_jws_sign with the same arguments, which is built on it.
 * Read-only once made: threads may sign with one header at once.
 */
struct fmt_jws_header;
imp_err fmt_jws_header_new(const char *typ, const char *kid, EVP_PKEY *pub,
			   X509 *const *x5c, size_t x5c_count,
			   struct fmt_jws_header **out);
void fmt_jws_header_free(struct fmt_jws_header *h);
/* The header's typ (NULL: none) and key (NULL: none given); borrowed. */
const char *fmt_jws_header_typ(const struct fmt_jws_header *h);
EVP_PKEY *fmt_jws_header_pub(const struct fmt_jws_header *h);
/* Sign payload with s under header h; *out as for fmt_jws_sign. */
imp_err fmt_jws_sign_with(const struct fmt_jws_header *h, const struct fmt_signer *s,
			  const void *payload, size_t payload_len, char **out);

/* Longest compact JWS taken at all (longer input is refused before decoding). */
#define FMT_JWS_MAX_LEN (4u << 20)

/*
 * The three segments of a compact JWS, as spans into the string (nothing
 * decoded, nothing verified): HEADER.PAYLOAD.SIGNATURE.
 */
struct fmt_jws_parts {
	const char *header;
	size_t header_len;
	const char *payload;
	size_t payload_len;
	const char *sig;
	size_t sig_len;
	size_t input_len; /* of "HEADER.PAYLOAD", the signing input */
	size_t len;       /* of the whole string */
};

/*
 * Split compact into its segments: exactly two dots, header and signature
 * not empty, at most FMT_JWS_MAX_LEN characters. The one splitter of JWS
 * strings: every reader of a JWS goes through it. IMP_ERR_PROTOCOL
 * (IMP_ERR_USAGE for NULL); *out is zeroed on failure.
 */
imp_err fmt_jws_split(const char *compact, struct fmt_jws_parts *out);

/*
 * The protected header / the payload of compact as a JSON object, decoded
 * WITHOUT verifying anything (to route a record, or to read one the station
 * itself wrote; verification is fmt_jws_verify_*). Duplicate keys are
 * refused. *out is a new reference. IMP_ERR_PROTOCOL, IMP_ERR_NOMEM.
 */
imp_err fmt_jws_peek_header(const char *compact, json_t **out);
imp_err fmt_jws_peek_payload(const char *compact, json_t **out);

/* What a successful verification hands back. Release with fmt_jws_release. */
struct fmt_jws {
	json_t *header;       /* the protected header (owned reference) */
	uint8_t *payload;     /* decoded payload, malloc'ed, NUL after the end */
	size_t payload_len;
	X509 *leaf;           /* x5c[0] when verified through x5c, else NULL (owned) */
};

/* Free the contents of j and zero it; safe on a zeroed struct. */
void fmt_jws_release(struct fmt_jws *j);

/*
 * Verify compact against the public key pub. If typ is not NULL the header
 * "typ" must equal it. On success *out is filled (release it); on failure it
 * is left zeroed. IMP_ERR_PROTOCOL for malformed input or a refused header,
 * IMP_ERR_VERIFY for a wrong signature.
 */
imp_err fmt_jws_verify_key(const char *compact, EVP_PKEY *pub, const char *typ,
			   struct fmt_jws *out);

/*
 * Verify compact against the chain in its "x5c" header: x5c[0] is the leaf,
 * the rest untrusted intermediates; the chain must verify against trust
 * (fmt_cert_verify_chain), the leaf must carry the keyUsage bits in
 * required_ku (FMT_KU_*), and the signature must verify with the leaf key.
 * out->leaf is the verified leaf certificate. Errors as above.
 */
imp_err fmt_jws_verify_x5c(const char *compact, X509_STORE *trust, unsigned required_ku,
			   const char *typ, struct fmt_jws *out);

/*
 * JWK of an EC P-256 public key: {"kty":"EC","crv":"P-256","x":..,"y":..}.
 * Returns a new reference, or NULL if key is not P-256 or out of memory.
 */
json_t *fmt_jwk_from_pkey(EVP_PKEY *key);
/* The same of an uncompressed P-256 point 04||X||Y (NULL if it is not one). */
json_t *fmt_jwk_from_point(const uint8_t point[65]);

/*
 * Public key from a JWK object; strict: kty "EC", crv "P-256", x and y
 * base64url of exactly 32 bytes, the point on the curve; "d" (a private key)
 * refused. *out is new. IMP_ERR_PROTOCOL / IMP_ERR_CRYPTO.
 */
imp_err fmt_jwk_to_pkey(const json_t *jwk, EVP_PKEY **out);

/*
 * RFC 7638 thumbprint: base64url(SHA-256({"crv":..,"kty":"EC","x":..,"y":..}))
 * (43 characters + NUL).
 */
imp_err fmt_jwk_thumbprint(EVP_PKEY *key, char out[44]);

#endif
