/*
 * A device certificate read in place (fmt_cert_view_leaf, formats/x509.h):
 * a strict DER walker over exactly the shape fmt_cert_issue writes for
 * FMT_CERT_DEVICE, and the shipped device profiles' (Matter VID/PID
 * attributes, subjectAltName with hardwareModuleName, DNS and URI names).
 * It decides nothing about trust; it only says "this is our profile, and
 * here are its parts", so that a verifier can check the issuer's signature
 * without d2i.
 */
#include <string.h>
#include <time.h>

#include "der_int.h"
#include "formats/x509.h"
#include "imprint/util.h"

/* UTCTime YYMMDDHHMMSSZ / GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 4.1.2.5). */
static int der_time(struct fmt_der *in, time_t *out)
{
	struct fmt_der v;
	struct tm tm = { 0 };
	int f[7] = { 0 }, nf, year;
	const uint8_t *p;

	if (fmt_der_take(in, 0x17, &v, NULL) && v.n == 13) {
		nf = 6;
	} else if (fmt_der_take(in, 0x18, &v, NULL) && v.n == 15) {
		nf = 7;
	} else {
		return 0;
	}
	if (v.p[v.n - 1] != 'Z')
		return 0;
	p = v.p;
	for (int i = 0; i < nf; i++, p += 2) {
		if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
			return 0;
		f[i] = (p[0] - '0') * 10 + (p[1] - '0');
	}
	if (nf == 6) {
		year = f[0] < 50 ? 2000 + f[0] : 1900 + f[0];
	} else {
		year = f[0] * 100 + f[1];
		memmove(f + 1, f + 2, 5 * sizeof(int));
	}
	if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[3] > 23 || f[4] > 59 || f[5] > 59)
		return 0;
	{
		static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
		int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

		if (f[2] > mdays[f[1] - 1] || (f[1] == 2 && f[2] == 29 && !leap))
			return 0;
	}
	tm.tm_year = year - 1900;
	tm.tm_mon = f[1] - 1;
	tm.tm_mday = f[2];
	tm.tm_hour = f[3];
	tm.tm_min = f[4];
	tm.tm_sec = f[5];
	*out = timegm(&tm);
	return 1;
}

/* An OBJECT IDENTIFIER's contents: minimal base-128 subidentifiers. */
static int oid_ok(struct fmt_der oid)
{
	if (oid.n == 0 || (oid.p[oid.n - 1] & 0x80))
		return 0;
	for (size_t i = 0; i < oid.n; i++)
		if (oid.p[i] == 0x80 && (i == 0 || !(oid.p[i - 1] & 0x80)))
			return 0;
	return 1;
}

static int printable_ok(struct fmt_der v, int printable_string)
{
	for (size_t i = 0; i < v.n; i++) {
		uint8_t c = v.p[i];

		if (c < 0x20 || c > 0x7e)
			return 0;
		if (printable_string && !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
					  (c >= '0' && c <= '9') || strchr(" '()+,-./:=?", c)))
			return 0;
	}
	return 1;
}

/* Matter's vendor and product ID attributes, 1.3.6.1.4.1.37244.2.1 / .2.2. */
static const uint8_t OID_MATTER_ID[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xa2, 0x7c, 0x02 };

static int matter_id(struct fmt_der oid)
{
	return oid.n == sizeof(OID_MATTER_ID) + 1 &&
	       memcmp(oid.p, OID_MATTER_ID, sizeof(OID_MATTER_ID)) == 0 &&
	       (oid.p[oid.n - 1] == 1 || oid.p[oid.n - 1] == 2);
}

/*
 * A Name as fmt_name_build writes it: RDNs of one id-at-* attribute each,
 * with a UTF8String or PrintableString value of printable ASCII, or a
 * Matter VID/PID as a UTF8String of 4 uppercase hex digits (Matter 6.2.2)
 * (anything else, though maybe valid, is left to the reference).
 */
static int name_ok(struct fmt_der name)
{
	if (name.n == 0)
		return 0;
	while (name.n) {
		struct fmt_der rdn, atv, oid, val;

		if (!fmt_der_take(&name, 0x31, &rdn, NULL) || !fmt_der_take(&rdn, 0x30, &atv, NULL) ||
		    rdn.n || !fmt_der_take(&atv, 0x06, &oid, NULL))
			return 0;
		if (matter_id(oid)) {
			if (!fmt_der_take(&atv, 0x0c, &val, NULL) || atv.n || val.n != 4)
				return 0;
			for (size_t i = 0; i < 4; i++)
				if (!strchr("0123456789ABCDEF", val.p[i]) || !val.p[i])
					return 0;
			continue;
		}
		if (oid.n != 3 || oid.p[0] != 0x55 || oid.p[1] != 0x04 || !oid_ok(oid))
			return 0;
		if (fmt_der_take(&atv, 0x0c, &val, NULL)) {
			if (!printable_ok(val, 0))
				return 0;
		} else if (!fmt_der_take(&atv, 0x13, &val, NULL) || !printable_ok(val, 1)) {
			return 0;
		}
		if (atv.n || val.n == 0)
			return 0;
	}
	return 1;
}

/* AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758 3.2: no parameters). */
static const uint8_t ALG_ES256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
				     0xce, 0x3d, 0x04, 0x03, 0x02 };
/* SubjectPublicKeyInfo of a P-256 key up to the uncompressed point's 0x04. */
static const uint8_t SPKI_P256[] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
				     0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
				     0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04 };

enum { X_BC = 1, X_KU = 2, X_EKU = 4, X_SKI = 8, X_AKI = 16, X_SAN = 32 };

/* id-on-hardwareModuleName, 1.3.6.1.5.5.7.8.4 (RFC 4108 5) */
static const uint8_t OID_HW_MODULE[] = { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04 };

/*
 * subjectAltName GeneralNames of the kinds the certificate profiles write:
 * dNSName and URI of printable ASCII without spaces, and otherName
 * hardwareModuleName ::= SEQUENCE { hwType OID, hwSerialNum OCTET STRING }
 * (RFC 4108 5). Any other name is left to the reference.
 */
static int alt_names_ok(struct fmt_der val)
{
	struct fmt_der seq;

	if (!fmt_der_take(&val, 0x30, &seq, NULL) || val.n || seq.n == 0)
		return 0;
	while (seq.n) {
		struct fmt_der gn, oid, wrap, hw, t, sn;

		if (fmt_der_take(&seq, 0x82, &gn, NULL) || fmt_der_take(&seq, 0x86, &gn, NULL)) {
			if (gn.n == 0)
				return 0;
			for (size_t i = 0; i < gn.n; i++)
				if (gn.p[i] <= 0x20 || gn.p[i] >= 0x7f)
					return 0;
			continue;
		}
		if (!fmt_der_take(&seq, 0xa0, &gn, NULL) || !fmt_der_take(&gn, 0x06, &oid, NULL) ||
		    oid.n != sizeof(OID_HW_MODULE) || memcmp(oid.p, OID_HW_MODULE, oid.n) != 0 ||
		    !fmt_der_take(&gn, 0xa0, &wrap, NULL) || gn.n || !fmt_der_take(&wrap, 0x30, &hw, NULL) ||
		    wrap.n || !fmt_der_take(&hw, 0x06, &t, NULL) || !oid_ok(t) ||
		    !fmt_der_take(&hw, 0x04, &sn, NULL) || hw.n || sn.n == 0)
			return 0;
	}
	return 1;
}

/* One extension; 0 if unknown, duplicated or not in the expected form. */
static int extension(struct fmt_der ext, unsigned *seen, unsigned *ku, struct fmt_der *aki)
{
	static const struct {
		uint8_t last;
		unsigned bit;
	} known[] = { { 0x13, X_BC }, { 0x0f, X_KU }, { 0x25, X_EKU }, { 0x0e, X_SKI },
		      { 0x23, X_AKI }, { 0x11, X_SAN } };
	struct fmt_der oid, crit, val;
	unsigned bit = 0;

	if (!fmt_der_take(&ext, 0x06, &oid, NULL) || oid.n != 3 || oid.p[0] != 0x55 ||
	    oid.p[1] != 0x1d)
		return 0;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(known); i++)
		if (oid.p[2] == known[i].last)
			bit = known[i].bit;
	if (!bit || (*seen & bit))
		return 0;
	*seen |= bit;
	/* critical (DER: only ever TRUE) on basicConstraints and keyUsage only */
	if (ext.n && ext.p[0] == 0x01 &&
	    (!fmt_der_take(&ext, 0x01, &crit, NULL) || crit.n != 1 || crit.p[0] != 0xff ||
	     (bit != X_BC && bit != X_KU)))
		return 0;
	if (!fmt_der_take(&ext, 0x04, &val, NULL) || ext.n)
		return 0;
	if (bit == X_BC)
		return val.n == 2 && val.p[0] == 0x30 && val.p[1] == 0x00; /* cA FALSE */
	if (bit == X_SAN)
		return alt_names_ok(val);
	if (bit == X_KU) {
		struct fmt_der bits;

		if (!fmt_der_take(&val, 0x03, &bits, NULL) || val.n || bits.n < 2 || bits.n > 3 ||
		    bits.p[0] > 7)
			return 0;
		/* the unused bits of the last byte do not count (as OpenSSL reads it) */
		if (bits.n == 2)
			*ku = bits.p[1] & (0xffu << bits.p[0]) & 0xffu;
		else
			*ku = bits.p[1] | ((unsigned)(bits.p[2] & (0xffu << bits.p[0]) & 0xffu) << 8);
		return 1;
	}
	if (bit == X_SKI) {
		struct fmt_der kid;

		return fmt_der_take(&val, 0x04, &kid, NULL) && !val.n && kid.n > 0;
	}
	if (bit == X_EKU) {
		struct fmt_der seq, oid;

		if (!fmt_der_take(&val, 0x30, &seq, NULL) || val.n || seq.n == 0)
			return 0;
		while (seq.n)
			if (!fmt_der_take(&seq, 0x06, &oid, NULL) || !oid_ok(oid))
				return 0;
		return 1;
	}
	if (bit == X_AKI) {
		struct fmt_der seq, kid;

		if (!fmt_der_take(&val, 0x30, &seq, NULL) || val.n ||
		    !fmt_der_take(&seq, 0x80, &kid, NULL) || seq.n || kid.n == 0)
			return 0;
		*aki = kid;
	}
	return 1;
}

imp_err fmt_cert_view_leaf(const uint8_t *der, size_t n, struct fmt_cert_view *out)
{
	struct fmt_der in = { der, n }, cert, tbs, tbs_whole, alg, sig, x, ver, serial, name, validity,
		   spki, exts_wrap, exts, ext;
	struct fmt_der aki = { NULL, 0 };
	unsigned seen = 0, ku = 0;
	static const uint8_t v3[] = { 0x02, 0x01, 0x02 };

	memset(out, 0, sizeof(*out));
	if (!der || !fmt_der_take(&in, 0x30, &cert, NULL) || in.n)
		return IMP_ERR_PROTOCOL;
	if (!fmt_der_take(&cert, 0x30, &tbs, &tbs_whole) || !fmt_der_take(&cert, 0x30, NULL, &alg) ||
	    !fmt_der_eq(alg, ALG_ES256, sizeof(ALG_ES256)) || !fmt_der_take(&cert, 0x03, &sig, NULL) ||
	    cert.n || sig.n < 2 || sig.p[0] != 0)
		return IMP_ERR_PROTOCOL;
	if (!fmt_der_take(&tbs, 0xa0, &ver, NULL) || !fmt_der_eq(ver, v3, sizeof(v3)))
		return IMP_ERR_PROTOCOL;
	/* serial: positive (not 0), minimal, 1..20 bytes */
	if (!fmt_der_take(&tbs, 0x02, &serial, NULL) || serial.n < 1 || serial.n > 21 ||
	    (serial.n == 1 && serial.p[0] == 0) || (serial.p[0] & 0x80) ||
	    (serial.n > 1 && serial.p[0] == 0 && !(serial.p[1] & 0x80)) ||
	    (serial.n == 21 && serial.p[0] != 0))
		return IMP_ERR_PROTOCOL;
	if (!fmt_der_take(&tbs, 0x30, NULL, &x) || !fmt_der_eq(x, ALG_ES256, sizeof(ALG_ES256)))
		return IMP_ERR_PROTOCOL;
	if (!fmt_der_take(&tbs, 0x30, NULL, &name))
		return IMP_ERR_PROTOCOL;
	if (!fmt_der_take(&tbs, 0x30, &validity, NULL) || !der_time(&validity, &out->not_before) ||
	    !der_time(&validity, &out->not_after) || validity.n)
		return IMP_ERR_PROTOCOL;
	if (!fmt_der_take(&tbs, 0x30, &x, NULL) || !name_ok(x)) /* subject */
		return IMP_ERR_PROTOCOL;
	if (!fmt_der_take(&tbs, 0x30, NULL, &spki) || spki.n != sizeof(SPKI_P256) + 64 ||
	    memcmp(spki.p, SPKI_P256, sizeof(SPKI_P256)) != 0)
		return IMP_ERR_PROTOCOL;
	memcpy(out->point, spki.p + sizeof(SPKI_P256) - 1, 65);
	if (!fmt_der_take(&tbs, 0xa3, &exts_wrap, NULL) || tbs.n ||
	    !fmt_der_take(&exts_wrap, 0x30, &exts, NULL) || exts_wrap.n || exts.n == 0)
		return IMP_ERR_PROTOCOL;
	while (exts.n) {
		if (!fmt_der_take(&exts, 0x30, &ext, NULL) || !extension(ext, &seen, &ku, &aki))
			return IMP_ERR_PROTOCOL;
	}
	if (!(seen & X_KU) || !(seen & X_AKI) || !(seen & X_SKI))
		return IMP_ERR_PROTOCOL;
	out->tbs = tbs_whole.p;
	out->tbs_len = tbs_whole.n;
	out->sig = sig.p + 1;
	out->sig_len = sig.n - 1;
	out->serial = serial.p;
	out->serial_len = serial.n;
	out->issuer = name.p;
	out->issuer_len = name.n;
	out->key_usage = ku;
	out->aki = aki.p;
	out->aki_len = aki.n;
	return IMP_OK;
}

imp_err fmt_cert_der_point(const uint8_t *der, size_t n, uint8_t point[65])
{
	struct fmt_der in = { der, n }, cert, tbs, spki;

	if (!der || !fmt_der_take(&in, 0x30, &cert, NULL) || in.n ||
	    !fmt_der_take(&cert, 0x30, &tbs, NULL))
		return IMP_ERR_PROTOCOL;
	(void)fmt_der_take(&tbs, 0xa0, NULL, NULL); /* version, if not v1 */
	if (!fmt_der_take(&tbs, 0x02, NULL, NULL) || /* serialNumber */
	    !fmt_der_take(&tbs, 0x30, NULL, NULL) || /* signature */
	    !fmt_der_take(&tbs, 0x30, NULL, NULL) || /* issuer */
	    !fmt_der_take(&tbs, 0x30, NULL, NULL) || /* validity */
	    !fmt_der_take(&tbs, 0x30, NULL, NULL) || /* subject */
	    !fmt_der_take(&tbs, 0x30, NULL, &spki) || spki.n != sizeof(SPKI_P256) + 64 ||
	    memcmp(spki.p, SPKI_P256, sizeof(SPKI_P256)) != 0)
		return IMP_ERR_PROTOCOL;
	memcpy(point, spki.p + sizeof(SPKI_P256) - 1, 65);
	return IMP_OK;
}
