#!/usr/bin/env bash
# Build, statically, the selftests that tests/plan (and the demo) run, from
# build/linux with its own uAPI headers (headers_install), never the host's.
#
# Usage: scripts/build-selftests.sh
# Output: build/selftests/{mm,kvm,examples,bench,restore,tests}/..., the layout the
# plan's commands use; examples/*.c, bench/*.c, restore/test/*.c and
# tests/stress/*.c (with common/ and restore/) are built there too.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

# Selftest binaries named by the plan's and the demo's commands.
wanted() {
	{
		sed -e 's/#.*//' "$TOP/tests/plan" "$PLAN" | awk 'NF >= 3 { print $3 }'
		grep -o '\(mm\|kvm\)/[A-Za-z0-9_/-]*' "$TOP/tests/demo.sh"
	} | grep -E '^(mm|kvm)/' | sort -u
}

step "installing uAPI headers of build/linux into ${HDR#"$TOP"/}"
make -s -C "$SRC" O="$BUILD/obj-headers" INSTALL_HDR_PATH="$HDR" headers_install > /dev/null

obj=$BUILD/selftests-obj
# The selftests' makefiles do not rebuild a test's object when a header of
# their library changes (seen: memslot_modification_stress_test.o kept the
# old struct memstress_args while lib/memstress.o got the new one, and the
# test hung). Start over whenever the selftest sources or the uAPI headers
# differ from the last build's; ccache makes that cheap.
stamp=$( { git -C "$SRC" rev-parse HEAD; git -C "$SRC" diff HEAD -- tools include/uapi; } | sha1sum)
if [ "$(cat "$obj/.harness-sources" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$obj"
	mkdir -p "$obj"
	echo "$stamp" > "$obj/.harness-sources"
fi
mm_targets=() kvm_targets=()
while read -r t; do
	case $t in
	mm/*) mm_targets+=("$obj/$t") ;;
	kvm/*) kvm_targets+=("$obj/$t") ;;
	esac
done < <(wanted)

ksmake() {
	local dir=$1; shift
	local log=$obj/$dir.log
	mkdir -p "$obj/$dir"
	if ! make -C "$SRC/tools/testing/selftests/$dir" -j"$(nproc)" OUTPUT="$obj/$dir" \
		CC="ccache gcc" EXTRA_CFLAGS=-static \
		KHDR_INCLUDES="-isystem $HDR/include" INSTALL_HDR_PATH="$HDR" \
		"$@" > "$log" 2>&1; then
		grep -E -A5 'error|Error' "$log" | head -60 >&2
		die "building $dir selftests failed (log: $log)"
	fi
}

step "building ${#mm_targets[@]} mm and ${#kvm_targets[@]} KVM selftests (static)"
[ ${#mm_targets[@]} -eq 0 ] || ksmake mm "${mm_targets[@]}"
[ ${#kvm_targets[@]} -eq 0 ] || ksmake kvm "${kvm_targets[@]}"

# Our own programs (examples/*.c, bench/*.c, restore/test/*.c, tests/stress/*.c):
# one file each, same headers, linked with the helpers they share (common/),
# the reference handler library (restore/) and liburing.
step "building examples, benchmarks, the restore library's tests and the stress tests"
for dir in examples bench restore/test tests/stress; do
	mkdir -p "$obj/$dir"
	for c in "$TOP/$dir"/*.c; do
		ccache gcc -static -O2 -Wall -Werror -pthread -isystem "$HDR/include" \
			-I "$TOP/common" -I "$TOP/restore" -o "$obj/$dir/$(basename "$c" .c)" \
			"$c" "$TOP"/common/*.c "$TOP"/restore/*.c -luring ||
			die "building ${c#"$TOP"/} failed"
	done
done

rm -rf "$KSELFTEST"
while read -r t; do
	file "$obj/$t" | grep -q 'statically linked' || die "$t is not a static binary"
	mkdir -p "$(dirname "$KSELFTEST/$t")"
	cp "$obj/$t" "$KSELFTEST/$t"
done < <(wanted)
cp -r "$obj/examples" "$obj/bench" "$obj/restore" "$obj/tests" "$KSELFTEST/"
info "$(wanted | wc -l) selftests, $(find "$KSELFTEST/examples" "$KSELFTEST/bench" "$KSELFTEST/restore" "$KSELFTEST/tests" -type f | wc -l) examples, benchmarks and tests of ours in ${KSELFTEST#"$TOP"/}"
