#!/bin/bash
# Run a test plan inside the VM and print TAP: one result per plan line.
#
# Usage: run-plan.sh PLAN [TIMEOUT_SCALE]
# Test output is printed with a "# " prefix (TAP diagnostics). Exit status 4
# is kselftest's "skip": reported as SKIP with the test's last words, never
# as a pass; for a test whose plan name ends in "!" a skip is a failure, and
# so is a pass whose summary counts skipped subtests. A
# test that outlives its timeout is killed and fails. A test whose name ends
# in "~" is known to be flaky: a failure is run once more, and a pass on the
# second run is reported with the first failure in its TAP comment.
set -u
plan=${1:?usage: run-plan.sh PLAN [TIMEOUT_SCALE]}
scale=${2:-1}

# Huge pages for the hugetlb userfaultfd tests (uffd-stress wants 2 * size).
echo 128 > /proc/sys/vm/nr_hugepages

# The uffd tests map shmem at fixed addresses from 1 GiB up (BASE_PMD_ADDR in
# uffd-common.c). Our selftests are static non-PIE binaries, whose brk heap
# x86_64 starts anywhere in the GiB above the program (arch_randomize_brk):
# about 1 run in 20 it starts within 64 MiB of 1 GiB, and now and then the
# heap is where the test wants its memory ("mmap of memfd failed at
# 0x40000000"). Keep brk unrandomized; mmap, stack and vDSO still are.
echo 1 > /proc/sys/kernel/randomize_va_space

mapfile -t tests < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$plan")
echo "TAP version 13"
echo "1..${#tests[@]}"
i=0
failed=0
for line in "${tests[@]}"; do
	i=$((i + 1))
	read -r name limit cmd <<< "$line"
	must_run=false retries=0
	while :; do
		case $name in
		*!) must_run=true name=${name%!} ;;
		*~) retries=1 name=${name%\~} ;;
		*) break ;;
		esac
	done
	limit=$((limit * scale))
	echo "# ---- $name: $cmd (limit ${limit} s)"
	start=$(date +%s)
	first_failure=
	while :; do
		timeout -s KILL "$limit" bash -c "$cmd" 2>&1 | tee /tmp/test.out | sed 's/^/# /'
		rc=${PIPESTATUS[0]}
		# A test killed mid-line (timeout) leaves no newline: end the
		# line, or our TAP line is glued to it and check.sh misses it.
		[ -z "$(tail -c 1 /tmp/test.out)" ] || echo
		# Subtests skipped, from the summary (uffd-unit-tests "skip=N",
		# kselftest "skip:N"): a must-run test passes only with none.
		skipped=$(grep -o -E '(skip=|skip:)[0-9]+' /tmp/test.out | tail -n 1 | tr -dc 0-9)
		skipped=${skipped:-0}
		if $must_run && [ "$rc" = 0 ] && [ "$skipped" != 0 ]; then
			rc=4
		fi
		if [ "$rc" = 0 ] || [ "$rc" = 4 ] || [ "$retries" = 0 ]; then
			break
		fi
		retries=$((retries - 1))
		first_failure="exit status $rc: $(grep -m 1 -E 'ERROR|FAIL|fail' /tmp/test.out)"
		echo "# ---- $name failed ($first_failure); known flaky, running it once more"
	done
	secs=$(($(date +%s) - start))
	if [ "$rc" = 0 ] && [ -n "$first_failure" ]; then
		echo "ok $i $name # passed on the second run; first run: $first_failure"
	elif [ "$rc" = 0 ] && [ "$skipped" != 0 ]; then
		echo "ok $i $name # ${secs} s, $skipped subtests skipped"
	elif [ "$rc" = 0 ]; then
		echo "ok $i $name # ${secs} s"
	elif [ "$rc" = 4 ]; then
		why=$(grep -i 'skip' /tmp/test.out | grep -v -E '(skip=|skip:)0' | tail -n 1)
		why=${why:-$(tail -n 1 /tmp/test.out)}
		if $must_run; then
			echo "not ok $i $name # skipped, but this kernel must run it: $why"
			failed=$((failed + 1))
		else
			echo "ok $i $name # SKIP $why"
		fi
	elif [ "$secs" -ge "$limit" ]; then
		echo "not ok $i $name # TIMEOUT after ${limit} s"
		failed=$((failed + 1))
	else
		echo "not ok $i $name # exit status $rc after ${secs} s"
		failed=$((failed + 1))
	fi
done
[ "$failed" = 0 ]
