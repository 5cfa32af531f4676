#!/usr/bin/env bash
# make check: host checks, build, then the test plan in the VM; TAP out, one
# plain "N passed, N failed, N skipped" line last, non-zero exit on failure.
#
# Usage: [VARIANT=normal|debug|no-userfaultfd|kvm-module] [PLAN=tests/plan] [SERIES=none]
#        [HOST_CHECKS=no] scripts/check.sh
#   SERIES=none: the same checks and plan on the base kernel (no patches),
#   with the selftests of the series; results in build/check-$VARIANT-base.*
#   HOST_CHECKS=no: leave out shellcheck, the harness's tests and checkpatch,
#   which do not depend on the kernel (.ci/run runs them with its first variant)
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"
rm -f "$BUILD/check-$KNAME.counts"

results=()   # "ok NAME # comment" / "not ok NAME # comment", in order
record() { results+=("$1 $2${3:+ # $3}"); }

finish() {
	local n=0 pass=0 fail=0 skip=0 r
	echo
	echo "TAP version 13"
	echo "1..${#results[@]}"
	for r in "${results[@]}"; do
		n=$((n + 1))
		case $r in
		"not ok "*) fail=$((fail + 1)); echo "not ok $n ${r#not ok }" ;;
		*"# SKIP"*) skip=$((skip + 1)); echo "ok $n ${r#ok }" ;;
		*) pass=$((pass + 1)); echo "ok $n ${r#ok }" ;;
		esac
	done
	echo "$pass passed, $fail failed, $skip skipped"
	mkdir -p "$BUILD"
	echo "$pass $fail $skip" > "$BUILD/check-$KNAME.counts"
	[ "$fail" = 0 ]
	exit
}

# --- host checks -------------------------------------------------------------
# The harness's own tests (tests/harness/): SCRIPT WHAT-IT-PROVES.
harness_test() {
	if out=$("$TOP/tests/harness/$1" 2>&1); then
		record ok "harness: $2"
	else
		printf '%s\n' "$out"; record "not ok" "harness: $2"
	fi
}
host_checks=${HOST_CHECKS:-yes}
if [ "$host_checks" != no ]; then
	step "host checks"
	if out=$(cd "$TOP" && shellcheck -x scripts/*.sh tests/*.sh tests/harness/*.sh restore/test/*.sh guest/* vm/*.conf .ci/run 2>&1); then
		record ok "shellcheck"
	else
		printf '%s\n' "$out"; record "not ok" "shellcheck"
	fi
	harness_test test-console-check.sh "console check catches recorded kernel reports"
	harness_test test-make-vm-cmd.sh "make vm passes CMD to the guest verbatim"
fi

if out=$("$TOP/scripts/tree.sh" 2>&1); then
	printf '%s\n' "$out"; record ok "series applies to $(git -C "$SRC" log -1 --format=%s "$BASE_TAG" | cut -d' ' -f1-2)"
else
	printf '%s\n' "$out"
	record "not ok" "series applies" "$(printf '%s\n' "$out" | grep '^error:' | tail -n 1)"
	finish
fi

while [ "$host_checks" != no ] && read -r p; do
	# The base is one commit made from a tarball, without upstream history:
	# checkpatch cannot look up the ids of Fixes: tags in it, so that one
	# check is left to a tree that has the history.
	if out=$(cd "$SRC" && scripts/checkpatch.pl --strict --quiet --no-summary \
		--ignore UNKNOWN_COMMIT_ID "$PATCHES/$p" 2>&1); then
		record ok "checkpatch --strict $p"
	else
		printf '%s\n' "$out"; record "not ok" "checkpatch --strict $p"
	fi
done < <(series_files)

# --- build ---------------------------------------------------------------------
if "$TOP/scripts/build-kernel.sh"; then record ok "build $KDESC kernel"; else record "not ok" "build $KDESC kernel"; finish; fi

# Core mm and fs must not know KVM: no kvm_* or *gmem* symbol, defined or
# used, in their objects. The pattern is checked to find KVM's own first.
kvm_symbols() { nm "$@" 2>/dev/null | awk 'NF >= 2 { print $NF }' | grep -E 'kvm_|gmem' | sort -u; }
if [ -z "$(kvm_symbols "$OBJ/virt/kvm/"*.o "$OBJ/virt/kvm/"*.ko 2>/dev/null)" ]; then
	record "not ok" "no KVM symbol in mm/ or fs/" "the check finds no KVM symbol in virt/kvm/ either"
elif syms=$(kvm_symbols "$OBJ/mm/built-in.a" "$OBJ/fs/built-in.a") && [ -n "$syms" ]; then
	printf '%s\n' "$syms" | head -20; record "not ok" "no KVM symbol in mm/ or fs/" "$(printf '%s\n' "$syms" | head -n 1)"
else
	record ok "no KVM symbol in mm/ or fs/" "$(nm "$OBJ/mm/built-in.a" "$OBJ/fs/built-in.a" 2>/dev/null | awk 'NF >= 2' | wc -l) symbols checked"
fi
if "$TOP/scripts/build-selftests.sh"; then record ok "build selftests"; else record "not ok" "build selftests"; finish; fi

# --- the plan in the VM ----------------------------------------------------------
scale=$(variant_setting timeout-scale); scale=${scale:-1}
modules=()
for m in $(variant_setting modules); do modules+=(-m "$m"); done
# The plan's test lines (comments and blanks dropped), read once.
mapfile -t plan_tests < <(sed -e 's/#.*//' "$PLAN" | awk 'NF >= 3')
planned=${#plan_tests[@]}
budget=$(printf '%s\n' "${plan_tests[@]}" | awk -v s="$scale" '{ t += $2 * s } END { print t + 120 }')
log=$BUILD/check-$KNAME.log
step "running $planned tests in the $KDESC kernel's VM (console: ${log#"$TOP"/})"
vm_rc=0
"$TOP/scripts/vm.sh" -t "$budget" -l "$log" -p "  | " \
	-a "$KSELFTEST/mm" -a "$KSELFTEST/kvm" -a "$KSELFTEST/examples" -a "$KSELFTEST/restore" -a "$KSELFTEST/tests" -a "$PLAN" -a "$TOP/guest/run-plan.sh" "${modules[@]}" \
	-- ./run-plan.sh "$(basename "$PLAN")" "$scale" || vm_rc=$?

# The guest's TAP lines, renumbered into ours; a test that never reported
# (the guest died or hung) fails.
declare -A seen=()
while read -r status num rest; do
	[ "$status" = ok ] || { status="not ok"; read -r num rest <<< "$rest"; }
	seen[$num]=1
	record "$status" "${rest%% # *}" "$( [[ $rest == *" # "* ]] && echo "${rest#* # }")"
done < <(grep -E '^(ok|not ok) [0-9]+ ' "$log" || true)
for ((i = 1; i <= planned; i++)); do
	if [ -z "${seen[$i]:-}" ]; then
		read -r name _ <<< "${plan_tests[i - 1]}"
		record "not ok" "${name%%[~!]*}" "no result: the VM stopped before it (vm.sh exit $vm_rc)"
	fi
done

# Kernel reports on the console fail the run even if every test passed.
if lines=$("$TOP/scripts/console-check.sh" "$log"); then
	record ok "kernel console clean"
else
	printf 'kernel reports on the console:\n%s\n' "$lines" | head -20
	record "not ok" "kernel console clean" "$(printf '%s\n' "$lines" | head -n 1)"
fi
finish
