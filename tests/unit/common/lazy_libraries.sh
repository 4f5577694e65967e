#!/usr/bin/env bash
# station.lazy_libraries IMPRINT CC: the imprint binary does not link libpq,
# libcurl, libmicrohttpd, libqrencode or libpng (they are loaded at their
# first use), and a command that needs none of them maps none of them. A
# libpq.so.5 without libpq's functions (built here with CC, found first
# through LD_LIBRARY_PATH) makes `imprint line status` stop with the reason
# and the package to install, exit 9, before it connects anywhere.
set -euo pipefail
imprint=${1:?usage: lazy_libraries.sh IMPRINT CC}
cc=${2:?usage: lazy_libraries.sh IMPRINT CC}
lazy='libpq\.so|libcurl\.so|libmicrohttpd\.so|libqrencode\.so|libpng16\.so'
needed=$(readelf -d "$imprint" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "lazy_libraries: readelf found no NEEDED entry in $imprint"; exit 1; }
if grep -E "$lazy" <<<"$needed"; then
	echo "lazy_libraries: $imprint links the libraries above; they are loaded on use"
	exit 1
fi
# What the dynamic loader maps for `imprint --version`.
maps=$(LD_DEBUG=files "$imprint" --version 2>&1 >/dev/null | sed -n 's/.*file=\([^ ]*\).*/\1/p' | sort -u)
[ -n "$maps" ] || { echo "lazy_libraries: LD_DEBUG=files printed nothing"; exit 1; }
if grep -E "$lazy" <<<"$maps"; then
	echo "lazy_libraries: imprint --version mapped the libraries above"
	exit 1
fi
echo "lazy_libraries: $(wc -l <<<"$needed") linked, $(wc -l <<<"$maps") mapped at start-up, none of the lazy ones"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo 'int imprint_not_libpq(void) { return 0; }' >"$T/f.c"
"$cc" -shared -fPIC -Wl,-soname,libpq.so.5 -o "$T/libpq.so.5" "$T/f.c"
set +e
LD_LIBRARY_PATH=$T "$imprint" --data-dir "$T/data" line status --line postgresql://127.0.0.1:9/x \
	>"$T/out" 2>"$T/err"
rc=$?
set -e
if [ "$rc" != 9 ] || ! grep -q "libpq.so.5 has no PQ[a-zA-Z]*: .*install the package libpq5" "$T/err"; then
	echo "lazy_libraries: with a libpq.so.5 that lacks libpq, line status gave exit $rc: $(cat "$T/err")"
	exit 1
fi
echo "lazy_libraries: a libpq.so.5 without libpq: exit 9, $(head -1 "$T/err")"
