#!/usr/bin/env bash
# The layering test: every #include of the product code is an edge between
# modules, and every edge must be one docs/ARCHITECTURE.md allows (the
# "allowed" table below is that drawing, kept in step with it). Foreign
# libraries are owned too: libpq only in line/, PKCS#11 only in hsm/, SQLite
# only in journal/, the registry's own store and the audit's own temporary
# database (it reads the journal and the registry only through their
# readers), PC/SC only in board/.
# It also checks that only journal/ has SQL on the journal's tables.
# Usage: check.sh SOURCE_DIR. Exit 0 when every edge is allowed.
set -euo pipefail
src=${1:?usage: check.sh SOURCE_DIR}
cd "$src"

# module -> modules it may include (besides itself)
declare -A allowed=(
	[common]=""
	[formats]="common"
	[hsm]="formats common"
	[wire]="common"
	[board]="wire formats common sim_chip"
	[sim]="wire board_pcsc common"
	[journal]="common"
	[line]="journal formats common"
	[provisioner]="journal line board wire hsm formats common"
	[backend-export]="journal formats common"
	[audit]="backend-export journal formats common"
	[station]="audit backend-export provisioner line journal board wire hsm formats common"
)
# include prefix -> module that owns it
declare -A owner=(
	[imprint]=common [formats]=formats [hsm]=hsm [wire]=wire [board]=board [sim]=sim
	[journal]=journal [line]=line [provisioner]=provisioner [exp]=backend-export
	[registry]=backend-export [audit]=audit
)
# foreign header -> the only modules that may include it
declare -A foreign=(
	[libpq-fe.h]="line"
	[p11-kit/pkcs11.h]="hsm" [p11-kit/p11-kit.h]="hsm" [p11-kit/uri.h]="hsm"
	[sqlite3.h]="journal backend-export/registry audit"  # audit: its own temporary database
	[winscard.h]="board" [PCSC/winscard.h]="board"
	[curl/curl.h]="backend-export"
	[microhttpd.h]="backend-export/registry station/cmd_serve.c station/mhd_dyn.c"
	[qrencode.h]="station/label.c station/label_dyn.c" [png.h]="station/label.c station/label_dyn.c"
)

bad=0
fail() { echo "layering: $*"; bad=1; }

for mod in "${!allowed[@]}"; do
	[ -d "$mod" ] || { fail "module $mod is missing"; continue; }
	while IFS=: read -r file _ line; do
		hdr=$(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/p' <<<"$line")
		[ -n "$hdr" ] || continue
		# foreign headers with an owner
		if [ -n "${foreign[$hdr]+x}" ]; then
			ok=0
			for m in ${foreign[$hdr]}; do
				case "$file" in "$m" | "$m"/*) ok=1 ;; esac
			done
			[ $ok = 1 ] || fail "$file includes <$hdr>, which only ${foreign[$hdr]} may use"
			continue
		fi
		prefix=${hdr%%/*}
		[ "$prefix" != "$hdr" ] || continue   # a local or system header without a folder
		target=${owner[$prefix]:-}
		[ -n "$target" ] || continue          # a system or foreign folder (openssl/, sys/)
		[ "$target" = "$mod" ] && continue
		# finer grants: board may use only the sim chip, sim only board's PC/SC codecs
		case "$target:$hdr" in
		sim:sim/chip.h|sim:sim/vb1_map.h) target=sim_chip ;;
		board:board/pcsc.h) [ "$mod" = sim ] && target=board_pcsc ;;
		esac
		case " ${allowed[$mod]} " in
		*" $target "*) ;;
		*) fail "$file includes $hdr: $mod -> $target is not an allowed edge (docs/ARCHITECTURE.md)" ;;
		esac
	done < <(grep -rn --include='*.c' --include='*.h' -E '^[[:space:]]*#[[:space:]]*include' "$mod" | sed 's/^\([^:]*\):\([0-9]*\):/\1:\2:/')
done

# SQL on the journal's tables only in journal/: statements naming them in
# product code elsewhere (the registry and the line have tables of their own).
journal_sql='(FROM|INTO|UPDATE|JOIN)[[:space:]]+(boards|events|outbox|leases|checkpoints|settings)\b'
while IFS= read -r hit; do
	fail "SQL on a journal table outside journal/: $hit"
done < <(grep -rnE --include='*.c' "$journal_sql" common formats hsm wire board sim line provisioner backend-export audit station |
	grep -v '^backend-export/registry/' | grep -v '^line/' || true)

# Link edges: delivery and the registry stand without the station's board,
# HSM, state machine or PostgreSQL.
while IFS= read -r hit; do
	fail "backend-export links what it must not: $hit"
done < <(grep -nE 'imp_(provisioner|board|hsm|line|sim)|LIBPQ' backend-export/CMakeLists.txt \
	backend-export/registry/CMakeLists.txt || true)

# One record member table: struct fmt_member arrays are defined in
# formats/record_members.c only.
while IFS= read -r hit; do
	fail "a record member table outside formats/record_members.c: $hit"
done < <(grep -rnE --include='*.c' 'struct fmt_member(_table)?[[:space:]]+[a-z_]+(\[\])?[[:space:]]*=' \
	common formats hsm wire board sim journal line provisioner backend-export audit station |
	grep -v '^formats/record_members.c:' || true)

if [ $bad = 0 ]; then
	echo "layering: every include edge is allowed"
fi
exit $bad
