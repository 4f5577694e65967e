#!/usr/bin/env bash
# station.lazy_libraries IMPRINT: the imprint binary does not link libpq,
# libcurl, libmicrohttpd, libqrencode or libpng (they are loaded at their
# first use), and a command that needs none of them maps none of them.
set -euo pipefail
imprint=${1:?usage: lazy_libraries.sh IMPRINT}
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
