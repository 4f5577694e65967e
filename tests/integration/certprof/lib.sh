# Shared by the certificate profile tests: the provisioning tests' helpers,
# and the device certificates of the demo's records as PEM files.
. "$(dirname "${BASH_SOURCE[0]}")/../provision/lib.sh"
CHECK=$(dirname "${BASH_SOURCE[0]}")/check_certs.py
PY=/usr/bin/python3 # Debian's, with python3-cryptography

# record_certs DIR: DIR/N.pem and DIR/N.uid for every identity record
record_certs() {
	local dir=$1 n=0 jws p
	mkdir -p "$dir"
	while IFS= read -r jws; do
		n=$((n + 1))
		IFS=. read -r _ p _ <<<"$jws"
		b64url_decode "$p" >"$dir/$n.json"
		sed -n 's/.*"device_certificate":"\([^"]*\)".*/\1/p' "$dir/$n.json" |
			openssl base64 -d -A | openssl x509 -inform DER -out "$dir/$n.pem"
		sed -n 's/.*"chip_uid":"\([^"]*\)".*/\1/p' "$dir/$n.json" >"$dir/$n.uid"
	done < <(sql "select jws from outbox where kind='identity' order by created")
	echo "$n"
}
