#!/usr/bin/env bash
# The install test: what 'cmake --install' puts in place works on its own.
#
#   1. install the build tree into a temporary prefix; its files are the
#      install manifest's; the systemd unit verifies (systemd-analyze) and
#      the man page is what the installed binary prints from the template;
#   2. move the prefix elsewhere (nothing may depend on where it was);
#   3. in a private mount namespace with empty tmpfs over the source and the
#      build tree, run the demo from the moved prefix (its virtual boards
#      and registry, profiles and HSM set-up all from there), check the
#      profile and OpenOCD search paths name the prefix, render the man
#      page with man -l and find every command and sub-command of
#      'imprint help' in it, and drive the bash completion;
#   4. build the .deb with CPack and check it holds the same files, starts
#      the unit from /usr/bin and that apt-get would install it here.
# Before all that: no product code but common/paths.c names the source tree.
#
# usage: run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

src=$(cd "$1" && pwd -P)
build=$(cd "$2" && pwd -P)
work=$(mktemp -d /tmp/imprint-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

fail() {
	echo "install test: FAIL: $*" >&2
	exit 1
}

case "$work/" in
"$src"/* | "$build"/*) fail "the temporary directory $work is inside the source or build tree" ;;
esac
for tool in cpack dpkg-deb apt-get man col systemd-analyze unshare; do
	command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/setup"
done

# ---- 0. no product code looks in the source tree but common/paths.c ------
src_users=$(cd "$src" && grep -rl --include='*.c' --include='*.h' IMPRINT_SOURCE_DIR \
	audit backend-export board common formats hsm journal line provisioner sim station wire |
	grep -vxE 'common/paths\.c|common/include/imprint/paths\.h' || true)
[ -z "$src_users" ] ||
	fail "product code uses the source path (find shipped data with imp_data_dir, imprint/paths.h): $src_users"

# ---- 1. install ----------------------------------------------------------
p1=$work/prefix-a
cmake --install "$build" --prefix "$p1" >"$work/install.log" || fail "cmake --install failed"
(cd "$p1" && find . \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort) >"$work/installed"
sed "s|^$p1/||" "$build/install_manifest.txt" | LC_ALL=C sort >"$work/manifest"
cmp -s "$work/installed" "$work/manifest" ||
	fail "the prefix holds other files than the install manifest: $(diff "$work/manifest" "$work/installed" | head -5)"
for f in bin/imprint bin/imprint-vboard bin/imprint-registry share/man/man1/imprint.1 \
	share/bash-completion/completions/imprint lib/systemd/system/imprint-export.service \
	share/imprint/profiles/imprint-vb1.json; do
	grep -qxF "$f" "$work/installed" || fail "$f is not installed"
done
for f in "$src"/board/profiles/*.json "$src"/board/openocd/*.cfg; do
	rel=share/imprint/$(basename "$(dirname "$f")")/$(basename "$f")
	cmp -s "$f" "$p1/$rel" || fail "$rel is not the source's $(basename "$f")"
done
if [ -d "$src/certprofiles" ]; then
	for f in "$src"/certprofiles/*.json; do
		cmp -s "$f" "$p1/share/imprint/certprofiles/$(basename "$f")" ||
			fail "certificate profile $(basename "$f") is not installed"
	done
fi
unit=$p1/lib/systemd/system/imprint-export.service
grep -qxF "ExecStart=$p1/bin/imprint export --follow" "$unit" ||
	fail "the unit does not start the installed binary: $(grep ExecStart "$unit")"
MANPATH=$p1/share/man systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 ||
	fail "systemd-analyze verify: $(cat "$work/verify.log")"
"$p1/bin/imprint" help --man "$src/man/imprint.1.in" >"$work/man.expected" ||
	fail "imprint help --man failed"
cmp -s "$work/man.expected" "$p1/share/man/man1/imprint.1" ||
	fail "the installed man page is not what the installed binary prints"
"$p1/bin/imprint" help --completion bash | cmp -s - "$p1/share/bash-completion/completions/imprint" ||
	fail "the installed completion is not what the installed binary prints"

# ---- 2. move the prefix ----------------------------------------------------
p=$work/moved/prefix
mkdir -p "$work/moved"
mv "$p1" "$p"

# ---- 3. run it with the source and build trees out of reach --------------
# A private mount namespace: as root directly, else (or where root lacks
# CAP_SYS_ADMIN, as in some containers) inside a user namespace mapping us
# to root.
ns=()
for try in "unshare -m" "unshare -r -m"; do
	if [ "$try" = "unshare -m" ] && [ "$(id -u)" -ne 0 ]; then continue; fi
	read -ra cand <<<"$try"
	if "${cand[@]}" mount -t tmpfs none "$work" 2>/dev/null; then
		ns=("${cand[@]}")
		break
	fi
done
[ ${#ns[@]} -gt 0 ] || fail "cannot make a private mount namespace (unshare -m, unshare -r -m)"

cat >"$work/inside.sh" <<'EOF'
set -euo pipefail
src=$1 build=$2 p=$3 work=$4
fail() { echo "install test: FAIL (isolated): $*" >&2; exit 1; }
mount --make-rprivate / 2>/dev/null || true
mount -t tmpfs none "$src"
[ "$build" = "${build#"$src"/}" ] && mount -t tmpfs none "$build"
[ -z "$(ls -A "$src")" ] || fail "the source tree is still visible"
[ -z "$(ls -A "$build")" ] || fail "the build tree is still visible"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=$work/home
unset IMPRINT_PROFILE_PATH IMPRINT_OPENOCD_PATH IMPRINT_DATA_DIR
mkdir -p "$HOME"
cd "$work"

# The demo: boards, HSM, firmware, provisioning, local registry, audit.
"$p/bin/imprint" --data-dir "$work/data" demo --boards 2 --latency 0 >"$work/demo.out" 2>"$work/demo.err" ||
	fail "the demo from the installed prefix failed: $(tail -5 "$work/demo.err")"
grep -q '^boards: 2 done, 0 already done, 0 failed' "$work/demo.out" ||
	fail "the demo did not provision 2 boards: $(grep '^boards' "$work/demo.out")"
grep -q '^export (https): 2 accepted' "$work/demo.out" || fail "the demo's export did not deliver 2 records"
grep -q '^OK: 0 findings' "$work/demo.out" || fail "the demo's audit did not pass"
"$p/bin/imprint" --data-dir "$work/data" status --verify >/dev/null ||
	fail "status --verify after the demo failed"

# A certificate profile other than the default, from the prefix too.
if [ -d "$p/share/imprint/certprofiles" ]; then
	"$p/bin/imprint" --data-dir "$work/data-dac" demo --boards 1 --latency 0 --cert-profile matter-dac \
		>"$work/dac.out" 2>"$work/dac.err" ||
		fail "the demo with --cert-profile matter-dac failed: $(tail -5 "$work/dac.err")"
	grep -q '^boards: 1 done' "$work/dac.out" || fail "the matter-dac demo did not provision its board"
fi

# The search paths are the prefix's, and name it.
set +e
"$p/bin/imprint" --data-dir "$work/data" board info --profile no-such-profile --uart /dev/null >/dev/null 2>"$work/profile.err"
rc=$?
"$p/bin/imprint" --data-dir "$work/data" board info --probe openocd://no-such.cfg >/dev/null 2>"$work/openocd.err"
rc2=$?
set -e
[ $rc -eq 9 ] || fail "an unknown profile exits $rc, not 9"
grep -qF "$p/bin/../share/imprint/profiles" "$work/profile.err" ||
	fail "the profile search path does not name the prefix: $(cat "$work/profile.err")"
[ $rc2 -eq 3 ] || fail "an unknown OpenOCD configuration exits $rc2, not 3"
grep -qF "$p/bin/../share/imprint/openocd" "$work/openocd.err" ||
	fail "the OpenOCD search path does not name the prefix: $(cat "$work/openocd.err")"

# Every command and sub-command of 'imprint help' has its section in man -l.
MANWIDTH=200 man --warnings -l "$p/share/man/man1/imprint.1" 2>"$work/man.err" | col -b >"$work/man.txt"
[ -s "$work/man.txt" ] || fail "man -l rendered nothing: $(cat "$work/man.err")"
[ ! -s "$work/man.err" ] || fail "groff warns about the man page: $(head -5 "$work/man.err")"
"$p/bin/imprint" help | awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }' >"$work/verbs"
[ "$(wc -l <"$work/verbs")" -ge 10 ] || fail "'imprint help' lists $(wc -l <"$work/verbs") commands"
n=0
while read -r verb; do
	grep -qE "^ +imprint $verb\$" "$work/man.txt" || fail "man -l has no section for '$verb'"
	grep -qE "^ +imprint $verb( |\$)" <(sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' "$work/man.txt") ||
		fail "the synopsis has no line for '$verb'"
	n=$((n + 1))
	"$p/bin/imprint" help "$verb" | awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }' >"$work/subs"
	while read -r sub; do
		grep -qE "^ +imprint $verb $sub\$" "$work/man.txt" || fail "man -l has no section for '$verb $sub'"
		n=$((n + 1))
	done <"$work/subs"
done <"$work/verbs"
echo "install test: man -l lists all $n commands and sub-commands"

# The completion completes the same commands.
comp=$p/share/bash-completion/completions/imprint
complete_line() {
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _imprint; printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$@"
}
[ "$(complete_line imprint "" | LC_ALL=C sort)" = "$(LC_ALL=C sort "$work/verbs")" ] ||
	fail "'imprint <TAB>' does not complete every command: $(complete_line imprint "" | tr '\n' ' ')"
[ "$(complete_line imprint --json hsm "" | LC_ALL=C sort | tr '\n' ' ')" = \
	"$("$p/bin/imprint" help hsm | awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }' | LC_ALL=C sort | tr '\n' ' ')" ] ||
	fail "'imprint hsm <TAB>' does not complete hsm's sub-commands"
complete_line imprint status --ver | grep -x -- --verify >/dev/null || fail "'imprint status --ver<TAB>' does not offer --verify"
complete_line imprint --data-dir "$work/da" | grep -x "$work/data" >/dev/null || fail "'--data-dir <TAB>' does not complete directories"
EOF
"${ns[@]}" bash "$work/inside.sh" "$src" "$build" "$p" "$work"

# ---- 4. the .deb holds the same files -------------------------------------
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log" 2>&1 ||
	fail "cpack -G DEB failed: $(tail -5 "$work/cpack.log")"
deb=$(ls "$work"/pkg/imprint_*.deb)
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./usr/||' | LC_ALL=C sort >"$work/deb"
[ -s "$work/deb" ] || fail "the .deb holds no files"
cmp -s "$work/installed" "$work/deb" ||
	fail "the .deb holds other files than cmake --install: $(diff "$work/installed" "$work/deb" | head -5)"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/imprint-export.service |
	grep -xF "ExecStart=/usr/bin/imprint export --follow" >/dev/null ||
	fail "the .deb's unit does not start /usr/bin/imprint"
depends=$(dpkg-deb -f "$deb" Depends)
for d in softhsm2 libssl3 libsqlite3-0 libjansson4 libp11-kit0 libpq5 libcurl4 libmicrohttpd12 \
	libqrencode4 libpng16-16; do
	grep -qE "(^|, )$d( |,|$)" <<<"$depends" || fail "the .deb does not depend on $d: $depends"
done
# Its dependencies resolve on this Debian (simulated: nothing is installed).
apt-get install -s -o Debug::NoLocking=1 "$deb" >"$work/apt.log" 2>&1 ||
	fail "apt-get cannot install the .deb: $(tail -5 "$work/apt.log")"
grep -q '^Inst imprint ' "$work/apt.log" || fail "apt-get would not install imprint: $(tail -5 "$work/apt.log")"
echo "install test: the .deb holds the $(wc -l <"$work/deb") installed files; Depends: $depends"
echo "install test: OK"
