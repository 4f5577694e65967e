# Shared by the bench scripts that run imprint against imprint-vboard.

# rsp_station_config ENDPOINTS DATA OUT: a station configuration at OUT with
# one fixture per board line of the vboard's ENDPOINTS file (rsp probe and
# UART, named F1, F2, ...) and the demo firmware under DATA.
rsp_station_config() {
	local fixtures
	fixtures=$(sed -n 's/.*"rsp":"\([^"]*\)".*"uart":"\([^"]*\)".*/{"name":"F\1","probe":"\1","uart":"\2"}/p' "$1" |
		awk '{ sub(/"name":"F[^"]*"/, "\"name\":\"F" NR "\""); print }' | paste -sd, -)
	cat >"$3" <<EOC
{"version":1,"station_id":"demo-station","firmware":{"image":"$2/demo/firmware.bin",
 "signature":"$2/demo/firmware.sig"},"fixtures":[$fixtures]}
EOC
}
