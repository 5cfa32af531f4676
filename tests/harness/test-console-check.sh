#!/usr/bin/env bash
# Self-test of scripts/console-check.sh on recorded console logs: clean.log
# must pass, every other log must be caught.
set -euo pipefail
cd "$(dirname "$0")"
fail=0
for log in console/*.log; do
	if ../../scripts/console-check.sh "$log" > /dev/null; then got=clean; else got=report; fi
	want=report; [ "$(basename "$log")" = clean.log ] && want=clean
	if [ "$got" != "$want" ]; then
		echo "console-check: $log: expected $want, got $got"
		fail=1
	fi
done
exit "$fail"
