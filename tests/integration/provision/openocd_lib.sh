# Shared by the provisioning tests through real OpenOCD (openocd://
# fixtures: the station starts one OpenOCD per fixture against the virtual
# board's remote_bitbang port). Builds on lib.sh.
#
# The caller sets IMPRINT, VBOARD and OOCD_CFG (a configuration in
# board/openocd/, e.g. vboard-nrf52840.cfg), then sources this file; it
# prepares the data directory (lib.sh prepare) and sets:
#   OPENOCD  the openocd binary ($OPENOCD, else the one on PATH)
#   SRC      the source tree
#   CFG      a copy of OOCD_CFG under this run's directory: its path names
#            this run's OpenOCDs (our_openocds)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OPENOCD=${OPENOCD:-$(command -v openocd)}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
CFG=$T/$OOCD_CFG
cp "$SRC/board/openocd/$OOCD_CFG" "$CFG"
if [ -z "$OPENOCD" ]; then
	echo "FAIL: openocd not installed (scripts/setup installs it)"
	exit 1
fi
prepare || exit 1

# The board's remote_bitbang port (a line of $T/endpoints).
bitbang_port() { printf '%s' "$1" | sed -n 's/.*"bitbang":"127.0.0.1:\([0-9]*\)".*/\1/p'; }

# The openocd:// probe of a board: this run's OpenOCD configuration on its port.
oocd_probe() {
	local bb
	bb=$(bitbang_port "$1")
	[ -n "$bb" ] && printf 'openocd://%s?set.VBOARD_PORT=%s&exe=%s' "$CFG" "$bb" "$OPENOCD"
}

# write_oocd_config FILE KEY_MODE TARGET [EXTRA_JSON_MEMBERS]: openocd://
# fixtures from $T/endpoints; the product and serial prefix from OOCD_SKU
# and OOCD_PREFIX (default TEST-S1, TST).
write_oocd_config() {
	local file=$1 mode=$2 target=$3 extra=${4:-} fixtures
	fixtures=$(fixtures_json oocd_probe)
	cat >"$file" <<EOC
{"version": 1, "station_id": "demo-station", "key_mode": "$mode", "target": "$target",
 "product": {"sku": "${OOCD_SKU:-TEST-S1}"}, "serial": {"prefix": "${OOCD_PREFIX:-TST}", "width": 6},
 "firmware": {"image": "$DATA/demo/firmware.bin", "signature": "$DATA/demo/firmware.sig"},
 "fixtures": [$fixtures]${extra:+, $extra}}
EOC
}

# PIDs of the OpenOCDs started with this run's configuration file.
our_openocds() { pgrep -f -- "-f $CFG" || true; }
