/* Matter onboarding codes and the SPAKE2+ verifier (formats/matter.h). */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "formats/matter.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define QR_PREFIX "MT:"
#define QR_BYTES 11u          /* 88 bits */
#define PBKDF_HALF 40u        /* 32 + 8 bytes per half: the reduction mod n stays unbiased */

static const char b38[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-.";

/* --------------------------------------------------------------- passcode */

bool fmt_matter_passcode_valid(uint32_t pc)
{
	static const uint32_t invalid[] = { 11111111u, 22222222u, 33333333u, 44444444u,
					    55555555u, 66666666u, 77777777u, 88888888u,
					    12345678u, 87654321u };

	if (pc < FMT_MATTER_PASSCODE_MIN || pc > FMT_MATTER_PASSCODE_MAX)
		return false; /* 00000000 and 99999999 are outside the range */
	for (size_t i = 0; i < IMP_ARRAY_SIZE(invalid); i++)
		if (pc == invalid[i])
			return false;
	return true;
}

bool fmt_matter_passcode_draw(const uint8_t rnd[4], uint32_t *out)
{
	uint32_t v = (uint32_t)rnd[0] | (uint32_t)rnd[1] << 8 | (uint32_t)rnd[2] << 16 |
		     (uint32_t)rnd[3] << 24;

	v &= (1u << FMT_MATTER_PASSCODE_BITS) - 1u;
	if (!fmt_matter_passcode_valid(v))
		return false;
	*out = v;
	return true;
}

/* --------------------------------------------------------------- verifier */

imp_err fmt_matter_verifier(uint32_t passcode, const uint8_t *salt, size_t salt_len,
			    uint32_t iterations, uint8_t out[FMT_MATTER_VERIFIER_LEN])
{
	uint8_t pw[4], ws[2 * PBKDF_HALF];
	EC_GROUP *g = NULL;
	EC_POINT *L = NULL;
	BN_CTX *bn = NULL;
	BIGNUM *w0 = NULL, *w1 = NULL;
	imp_err rc = IMP_ERR_CRYPTO;

	if (!fmt_matter_passcode_valid(passcode) || !salt || salt_len < FMT_MATTER_SALT_MIN ||
	    salt_len > FMT_MATTER_SALT_MAX || iterations < FMT_MATTER_ITER_MIN ||
	    iterations > FMT_MATTER_ITER_MAX)
		return IMP_ERR_USAGE;
	pw[0] = (uint8_t)passcode;
	pw[1] = (uint8_t)(passcode >> 8);
	pw[2] = (uint8_t)(passcode >> 16);
	pw[3] = (uint8_t)(passcode >> 24);
	if (PKCS5_PBKDF2_HMAC((const char *)pw, sizeof(pw), salt, (int)salt_len,
			      (int)iterations, EVP_sha256(), (int)sizeof(ws), ws) != 1)
		goto cleanup;
	g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	bn = BN_CTX_secure_new();
	w0 = BN_secure_new();
	w1 = BN_secure_new();
	if (!g || !bn || !w0 || !w1)
		goto cleanup;
	L = EC_POINT_new(g);
	if (!L || !BN_bin2bn(ws, PBKDF_HALF, w0) || !BN_bin2bn(ws + PBKDF_HALF, PBKDF_HALF, w1) ||
	    !BN_nnmod(w0, w0, EC_GROUP_get0_order(g), bn) ||
	    !BN_nnmod(w1, w1, EC_GROUP_get0_order(g), bn) ||
	    BN_bn2binpad(w0, out, FMT_MATTER_W0_LEN) != (int)FMT_MATTER_W0_LEN ||
	    !EC_POINT_mul(g, L, w1, NULL, NULL, bn) ||
	    EC_POINT_point2oct(g, L, POINT_CONVERSION_UNCOMPRESSED, out + FMT_MATTER_W0_LEN,
			       FMT_MATTER_L_LEN, bn) != FMT_MATTER_L_LEN)
		goto cleanup;
	rc = IMP_OK;
cleanup:
	if (rc != IMP_OK) {
		IMP_ERROR("matter: computing the spake2+ verifier failed in openssl");
		imp_wipe(out, FMT_MATTER_VERIFIER_LEN);
	}
	imp_wipe(pw, sizeof(pw));
	imp_wipe(ws, sizeof(ws));
	BN_clear_free(w0);
	BN_clear_free(w1);
	EC_POINT_clear_free(L);
	BN_CTX_free(bn);
	EC_GROUP_free(g);
	return rc;
}

/* ----------------------------------------------------------------- base38 */

static size_t chars_for(size_t bytes)
{
	return bytes == 3 ? 5 : bytes == 2 ? 4 : 2;
}

imp_err fmt_base38_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		size_t k = n - i < 3 ? n - i : 3, nc = chars_for(k);
		uint32_t v = 0;

		for (size_t j = 0; j < k; j++)
			v |= (uint32_t)in[i + j] << (8 * j);
		if (o + nc >= cap)
			return IMP_ERR_USAGE;
		for (size_t j = 0; j < nc; j++) {
			out[o++] = b38[v % 38];
			v /= 38;
		}
	}
	if (o >= cap)
		return IMP_ERR_USAGE;
	out[o] = '\0';
	return IMP_OK;
}

imp_err fmt_base38_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t n = strlen(in), o = 0;

	*out_len = 0;
	for (size_t i = 0; i < n;) {
		size_t left = n - i, nc = left >= 5 ? 5 : left, k;
		uint32_t v = 0;

		if (nc == 3 || nc == 1)
			return IMP_ERR_USAGE; /* no chunk has 1 or 3 characters */
		k = nc == 5 ? 3 : nc == 4 ? 2 : 1;
		for (size_t j = nc; j-- > 0;) {
			const char *c = in[i + j] ? strchr(b38, in[i + j]) : NULL;

			if (!c)
				return IMP_ERR_USAGE;
			v = v * 38 + (uint32_t)(c - b38);
		}
		if (v >> (8 * k))
			return IMP_ERR_USAGE; /* more than the chunk's bytes hold */
		if (o + k > cap)
			return IMP_ERR_USAGE;
		for (size_t j = 0; j < k; j++)
			out[o++] = (uint8_t)(v >> (8 * j));
		i += nc;
	}
	*out_len = o;
	return IMP_OK;
}

/* ------------------------------------------------------------ the QR code */

/* Every field fits its width (the 8 discovery bits may hold flags this
 * code does not know: a reader accepts them, 5.1.3.1). */
static bool payload_fits(const struct fmt_matter_payload *p)
{
	return p->flow <= FMT_MATTER_FLOW_CUSTOM &&
	       p->discriminator <= FMT_MATTER_DISCRIMINATOR_MAX &&
	       p->passcode < (1u << FMT_MATTER_PASSCODE_BITS);
}

/* What the station may issue: a valid passcode and known discovery flags. */
static bool payload_issuable(const struct fmt_matter_payload *p)
{
	return fmt_matter_passcode_valid(p->passcode) && !(p->discovery & ~FMT_MATTER_DISC_ALL);
}

/* Append the low `bits` bits of v at bit offset *off, least significant first. */
static void put_bits(uint8_t *buf, size_t *off, uint32_t v, unsigned bits)
{
	for (unsigned i = 0; i < bits; i++, (*off)++)
		if (v >> i & 1u)
			buf[*off / 8] |= (uint8_t)(1u << (*off % 8));
}

static uint32_t get_bits(const uint8_t *buf, size_t *off, unsigned bits)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < bits; i++, (*off)++)
		if (buf[*off / 8] >> (*off % 8) & 1u)
			v |= 1u << i;
	return v;
}

imp_err fmt_matter_qr_raw(const struct fmt_matter_payload *p, char out[FMT_MATTER_QR_MAX])
{
	uint8_t buf[QR_BYTES] = { 0 };
	size_t off = 0;
	imp_err rc;

	if (!payload_fits(p))
		return IMP_ERR_USAGE;
	put_bits(buf, &off, 0, 3); /* version */
	put_bits(buf, &off, p->vendor_id, 16);
	put_bits(buf, &off, p->product_id, 16);
	put_bits(buf, &off, (uint32_t)p->flow, 2);
	put_bits(buf, &off, p->discovery, 8);
	put_bits(buf, &off, p->discriminator, 12);
	put_bits(buf, &off, p->passcode, FMT_MATTER_PASSCODE_BITS);
	put_bits(buf, &off, 0, 4); /* padding */
	memcpy(out, QR_PREFIX, sizeof(QR_PREFIX) - 1);
	rc = fmt_base38_encode(buf, sizeof(buf), out + sizeof(QR_PREFIX) - 1,
			       FMT_MATTER_QR_MAX - (sizeof(QR_PREFIX) - 1));
	imp_wipe(buf, sizeof(buf));
	return rc;
}

imp_err fmt_matter_qr(const struct fmt_matter_payload *p, char out[FMT_MATTER_QR_MAX])
{
	if (!payload_issuable(p))
		return IMP_ERR_USAGE;
	return fmt_matter_qr_raw(p, out);
}

imp_err fmt_matter_qr_parse(const char *qr, struct fmt_matter_payload *p)
{
	uint8_t buf[QR_BYTES + 3];
	size_t n = 0, off = 0;
	uint32_t version, flow, pad;

	if (strncmp(qr, QR_PREFIX, sizeof(QR_PREFIX) - 1) != 0 ||
	    fmt_base38_decode(qr + sizeof(QR_PREFIX) - 1, buf, sizeof(buf), &n) != IMP_OK ||
	    n != QR_BYTES)
		return IMP_ERR_USAGE;
	memset(p, 0, sizeof(*p));
	version = get_bits(buf, &off, 3);
	p->vendor_id = (uint16_t)get_bits(buf, &off, 16);
	p->product_id = (uint16_t)get_bits(buf, &off, 16);
	flow = get_bits(buf, &off, 2);
	p->discovery = (uint8_t)get_bits(buf, &off, 8);
	p->discriminator = (uint16_t)get_bits(buf, &off, 12);
	p->passcode = get_bits(buf, &off, FMT_MATTER_PASSCODE_BITS);
	pad = get_bits(buf, &off, 4);
	if (version != 0 || pad != 0 || flow > FMT_MATTER_FLOW_CUSTOM)
		return IMP_ERR_USAGE;
	p->flow = (enum fmt_matter_flow)flow;
	return IMP_OK;
}

/* ------------------------------------------------------- the manual code */

/* Verhoeff's tables: the dihedral group D5, the position permutation and
 * the inverse (J. Verhoeff, "Error Detecting Decimal Codes", 1969). */
static const uint8_t vh_d[10][10] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, { 1, 2, 3, 4, 0, 6, 7, 8, 9, 5 },
	{ 2, 3, 4, 0, 1, 7, 8, 9, 5, 6 }, { 3, 4, 0, 1, 2, 8, 9, 5, 6, 7 },
	{ 4, 0, 1, 2, 3, 9, 5, 6, 7, 8 }, { 5, 9, 8, 7, 6, 0, 4, 3, 2, 1 },
	{ 6, 5, 9, 8, 7, 1, 0, 4, 3, 2 }, { 7, 6, 5, 9, 8, 2, 1, 0, 4, 3 },
	{ 8, 7, 6, 5, 9, 3, 2, 1, 0, 4 }, { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 },
};
static const uint8_t vh_p[8][10] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, { 1, 5, 7, 6, 2, 8, 3, 0, 9, 4 },
	{ 5, 8, 0, 3, 7, 9, 6, 1, 4, 2 }, { 8, 9, 1, 6, 0, 4, 3, 5, 2, 7 },
	{ 9, 4, 5, 3, 1, 2, 6, 8, 7, 0 }, { 4, 2, 8, 6, 5, 7, 3, 9, 0, 1 },
	{ 2, 7, 9, 3, 8, 0, 6, 4, 1, 5 }, { 7, 0, 4, 6, 9, 1, 3, 2, 5, 8 },
};
static const uint8_t vh_inv[10] = { 0, 4, 3, 2, 1, 5, 6, 7, 8, 9 };

char fmt_verhoeff_check(const char *digits)
{
	size_t n = strlen(digits);
	unsigned c = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = digits[n - 1 - i];

		if (ch < '0' || ch > '9')
			return 0;
		/* position i + 1: the check digit will take position 0 */
		c = vh_d[c][vh_p[(i + 1) % 8][ch - '0']];
	}
	return (char)('0' + vh_inv[c]);
}

imp_err fmt_matter_manual_code_raw(const struct fmt_matter_payload *p,
				   char out[FMT_MATTER_MANUAL_MAX])
{
	bool long_code = p->flow != FMT_MATTER_FLOW_STANDARD;
	unsigned c1, c2, c3;
	int n;

	if (!payload_fits(p))
		return IMP_ERR_USAGE;
	c1 = (long_code ? 1u << 2 : 0u) | (p->discriminator >> 10);
	c2 = ((p->discriminator >> 8) & 3u) << 14 | (p->passcode & 0x3FFFu);
	c3 = p->passcode >> 14;
	if (long_code)
		n = snprintf(out, FMT_MATTER_MANUAL_MAX, "%01u%05u%04u%05u%05u", c1, c2, c3,
			     (unsigned)p->vendor_id, (unsigned)p->product_id);
	else
		n = snprintf(out, FMT_MATTER_MANUAL_MAX, "%01u%05u%04u", c1, c2, c3);
	if (n < 0 || (size_t)n + 1 >= FMT_MATTER_MANUAL_MAX)
		return IMP_ERR_INTERNAL;
	out[n] = fmt_verhoeff_check(out);
	out[n + 1] = '\0';
	return IMP_OK;
}

imp_err fmt_matter_manual_code(const struct fmt_matter_payload *p,
			       char out[FMT_MATTER_MANUAL_MAX])
{
	if (!payload_issuable(p))
		return IMP_ERR_USAGE;
	return fmt_matter_manual_code_raw(p, out);
}
