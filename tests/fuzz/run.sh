#!/bin/sh
# Build the libFuzzer targets with clang in their own build directory and
# run each for a fixed number of executions (default 1,000,000).
# usage: tests/fuzz/run.sh [RUNS]        (env: BUILD_DIR, JOBS; SEED: libFuzzer's
# -seed, for a run that does the same inputs each time)
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$SRC/build-fuzz}
RUNS=${1:-1000000}
TARGETS="fuzz_board_frame fuzz_board_rsp fuzz_board_apdu fuzz_board_memmap fuzz_formats_config fuzz_formats_matter fuzz_wire_factory"

cmake -S "$SRC" -B "$BUILD" -DIMPRINT_FUZZ=ON -DCMAKE_C_COMPILER=clang \
	-DCMAKE_BUILD_TYPE=Debug >/dev/null
if ! make -C "$BUILD" -j"${JOBS:-2}" $TARGETS >"$BUILD/fuzz-build.log" 2>&1; then
	grep -E "error|Error" "$BUILD/fuzz-build.log" | head -20
	echo "fuzz: the targets did not build (log: $BUILD/fuzz-build.log)" >&2
	exit 1
fi

status=0
for t in $TARGETS; do
	seed=$SRC/tests/fuzz/corpus/${t#fuzz_*_}
	work=$(mktemp -d)
	cp "$seed"/* "$work"/ 2>/dev/null || true
	echo "== $t: $RUNS runs"
	if "$BUILD/tests/fuzz/$t" -runs="$RUNS" ${SEED:+-seed="$SEED"} -max_len=9000 -print_final_stats=1 \
		-artifact_prefix="$BUILD/$t-" "$work" 2>"$BUILD/$t.log"; then
		grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)" \
			"$BUILD/$t.log" || true
		echo "== $t: ok (log: $BUILD/$t.log)"
	else
		tail -30 "$BUILD/$t.log"
		echo "== $t: FAILED (crash input under $BUILD/$t-*)"
		status=1
	fi
	rm -rf "$work"
done
exit $status
