#!/usr/bin/env bash
# The station's own files under faults: the data directory's mode, a
# read-only data directory, a full disk.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"
prepare || exit 1

# 1. A world-writable data directory is refused with the fix; group-writable
#    is warned about.
chmod 0777 "$DATA"
"$IMPRINT" --data-dir "$DATA" status >"$T/m1.out" 2>"$T/m1.err"
check test $? = 13
check grep -q "is mode 0777: every user of this host could replace.*chmod 700" "$T/m1.err"
chmod 0770 "$DATA"
"$IMPRINT" --data-dir "$DATA" status >"$T/m2.out" 2>"$T/m2.err"
check test $? = 0
check grep -q "group-writable (mode 0770)" "$T/m2.err"
chmod 0700 "$DATA"

finish
