#!/usr/bin/python3
"""Field checks of the certificates imprint issues with its Matter and
IEEE 802.1AR profiles, independent of imprint's own code (Debian's
python3-cryptography reads the certificates).

  check_certs.py matter PAA PAI VID PID DAC...
  check_certs.py idevid CA DEVICE UID

Matter rules: Matter Core Specification 1.x, 6.2.2 (Device Attestation
Certificate format, PAA/PAI/DAC), as connectedhomeip checks them in
VerifyAttestationCertificateFormat (src/crypto/CHIPCryptoPALOpenSSL.cpp:
basicConstraints and keyUsage present and critical; DAC cA false without
pathLen and keyUsage exactly digitalSignature; PAI cA true pathLen 0; PAA
cA true pathLen absent or 1; CAs keyCertSign and cRLSign, nothing else but
digitalSignature; SKID and AKID non-critical, 20 bytes) and in
IsCertificateValidAtIssuance (a certificate begins within its issuer's
validity). VID/PID attributes (1.3.6.1.4.1.37244.2.1 / .2.2) are
UTF8String of 4 uppercase hex digits; DAC: VID and PID; PAI: VID, PID
optional; PAA: VID optional; the DAC's VID (and PID, where the PAI has
one) is the PAI's.

802.1AR: hardwareModuleName (RFC 4108 5, otherName 1.3.6.1.5.5.7.8.4,
SEQUENCE { hwType OID, hwSerialNum OCTET STRING }) in subjectAltName
holds the chip UID; notAfter is the GeneralizedTime 99991231235959Z
(RFC 5280 4.1.2.5); the subject's serialNumber is the UID.

Exit 0 when every check holds; each failure is printed.
"""
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

VID_OID = "1.3.6.1.4.1.37244.2.1"
PID_OID = "1.3.6.1.4.1.37244.2.2"
HW_MODULE_NAME = "1.3.6.1.5.5.7.8.4"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der_oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        enc = [a & 0x7F]
        a >>= 7
        while a:
            enc.insert(0, 0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(enc)
    return b"\x06" + der_len(len(body)) + body


def attr_der(oid, value):
    """AttributeTypeAndValue with a UTF8String value, as Matter fixes it."""
    v = value.encode()
    inner = der_oid(oid) + b"\x0c" + der_len(len(v)) + v
    return b"\x30" + der_len(len(inner)) + inner


def ext(cert, oid):
    try:
        return cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


def hex4(s):
    return len(s) == 4 and all(c in "0123456789ABCDEF" for c in s)


def common(cert, name):
    check(cert.version == x509.Version.v3, f"{name}: not X.509 v3")
    check(cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256,
          f"{name}: signature is not ecdsa-with-SHA256")
    pub = cert.public_key()
    check(isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1",
          f"{name}: key is not EC P-256")
    serial = cert.serial_number
    check(serial > 0, f"{name}: serial number not positive")
    check((serial.bit_length() + 8) // 8 <= 20, f"{name}: serial number longer than 20 octets")
    ski = ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    check(ski is not None and not ski.critical and len(ski.value.digest) == 20,
          f"{name}: subjectKeyIdentifier missing, critical or not 20 bytes")
    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    check(bc is not None and bc.critical, f"{name}: basicConstraints missing or not critical")
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    check(ku is not None and ku.critical, f"{name}: keyUsage missing or not critical")
    return bc, ku


def aki_is(cert, issuer, name):
    aki = ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    iski = ext(issuer, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    check(aki is not None and not aki.critical and aki.value.key_identifier is not None
          and len(aki.value.key_identifier) == 20,
          f"{name}: authorityKeyIdentifier missing, critical or not 20 bytes")
    if aki is not None and iski is not None:
        check(aki.value.key_identifier == iski.value.digest,
              f"{name}: authorityKeyIdentifier is not the issuer's subjectKeyIdentifier")


def within(cert, issuer, name):
    check(cert.not_valid_after <= issuer.not_valid_after, f"{name}: ends after its issuer")
    check(cert.not_valid_before >= issuer.not_valid_before,
          f"{name}: begins before its issuer")
    check(cert.issuer == issuer.subject, f"{name}: issuer name is not the issuer's subject")
    try:
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                   ec.ECDSA(hashes.SHA256()))
    except Exception:
        failures.append(f"{name}: signature does not verify with the issuer's key")


def ca_usage(ku, name):
    if ku is None:
        return
    v = ku.value
    check(v.key_cert_sign and v.crl_sign, f"{name}: keyUsage lacks keyCertSign or cRLSign")
    check(not (v.content_commitment or v.key_encipherment or v.data_encipherment
               or v.key_agreement), f"{name}: keyUsage has bits beyond the CA's")


def values(cert, oid):
    return [a.value for a in cert.subject.get_attributes_for_oid(x509.ObjectIdentifier(oid))]


def matter(paa_path, pai_path, vid, pid, dacs):
    paa, pai = load(paa_path), load(pai_path)
    # PAA
    bc, ku = common(paa, "PAA")
    if bc is not None:
        check(bc.value.ca and bc.value.path_length in (None, 1),
              "PAA: not cA or pathLen not absent/1")
    ca_usage(ku, "PAA")
    for v in values(paa, VID_OID):
        check(v == vid and attr_der(VID_OID, v) in paa.tbs_certificate_bytes,
              "PAA: VID attribute is not the configured VID as UTF8String")
    # PAI
    bc, ku = common(pai, "PAI")
    if bc is not None:
        check(bc.value.ca and bc.value.path_length == 0, "PAI: not cA with pathLen 0")
    ca_usage(ku, "PAI")
    aki_is(pai, paa, "PAI")
    within(pai, paa, "PAI")
    pai_vid, pai_pid = values(pai, VID_OID), values(pai, PID_OID)
    check(pai_vid == [vid], f"PAI: VID attribute {pai_vid} is not [{vid}]")
    check(len(pai_pid) <= 1, "PAI: more than one PID attribute")
    for v in pai_vid:
        check(hex4(v) and attr_der(VID_OID, v) in pai.tbs_certificate_bytes,
              "PAI: VID is not 4 uppercase hex digits in a UTF8String")
    # DACs
    for i, path in enumerate(dacs):
        name = f"DAC {i + 1}"
        dac = load(path)
        bc, ku = common(dac, name)
        if bc is not None:
            check(not bc.value.ca and bc.value.path_length is None,
                  f"{name}: cA true or pathLen present")
        if ku is not None:
            v = ku.value
            check(v.digital_signature and not (
                v.content_commitment or v.key_encipherment or v.data_encipherment
                or v.key_agreement or v.key_cert_sign or v.crl_sign),
                f"{name}: keyUsage is not exactly digitalSignature")
        aki_is(dac, pai, name)
        within(dac, pai, name)
        dvid, dpid = values(dac, VID_OID), values(dac, PID_OID)
        check(dvid == [vid], f"{name}: VID {dvid} is not [{vid}]")
        check(dpid == [pid], f"{name}: PID {dpid} is not [{pid}]")
        for oid, v in ((VID_OID, vid), (PID_OID, pid)):
            check(attr_der(oid, v) in dac.tbs_certificate_bytes,
                  f"{name}: {oid} is not a UTF8String of 4 uppercase hex digits")
        if pai_pid:
            check(dpid == pai_pid, f"{name}: PID is not the PAI's")


def der_take(buf, tag):
    if not buf or buf[0] != tag:
        raise ValueError(f"expected tag {tag:#x}")
    n = buf[1]
    off = 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[2:2 + k], "big")
        off = 2 + k
    return buf[off:off + n], buf[off + n:]


def idevid(ca_path, dev_path, uid):
    ca, dev = load(ca_path), load(dev_path)
    bc, ku = common(dev, "IDevID")
    if bc is not None:
        check(not bc.value.ca, "IDevID: cA true")
    if ku is not None:
        check(ku.value.digital_signature, "IDevID: keyUsage lacks digitalSignature")
    aki_is(dev, ca, "IDevID")
    within(dev, ca, "IDevID")
    check(b"\x18\x0f99991231235959Z" in dev.tbs_certificate_bytes,
          "IDevID: notAfter is not the GeneralizedTime 99991231235959Z")
    check(values(dev, NameOID.SERIAL_NUMBER.dotted_string) == [uid],
          "IDevID: subject serialNumber is not the chip UID")
    san = ext(dev, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    check(san is not None, "IDevID: no subjectAltName")
    if san is None:
        return
    others = [n for n in san.value if isinstance(n, x509.OtherName)
              and n.type_id.dotted_string == HW_MODULE_NAME]
    check(len(others) == 1, "IDevID: not exactly one hardwareModuleName")
    for o in others:
        try:
            seq, rest = der_take(o.value, 0x30)
            check(rest == b"", "hardwareModuleName: trailing bytes")
            hw_type, seq = der_take(seq, 0x06)
            serial, seq = der_take(seq, 0x04)
            check(seq == b"", "hardwareModuleName: more than hwType and hwSerialNum")
            check(len(hw_type) > 0, "hardwareModuleName: empty hwType")
            check(serial == bytes.fromhex(uid),
                  f"hardwareModuleName: hwSerialNum {serial.hex()} is not the UID {uid}")
        except ValueError as e:
            failures.append(f"hardwareModuleName: not SEQUENCE {{OID, OCTET STRING}}: {e}")


def main():
    if len(sys.argv) >= 7 and sys.argv[1] == "matter":
        matter(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    elif len(sys.argv) == 5 and sys.argv[1] == "idevid":
        idevid(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
