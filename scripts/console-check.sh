#!/usr/bin/env bash
# Print the kernel reports (BUG, WARNING, KASAN, lockdep, RCU, hung task, ...)
# found in a console log, and fail if there is any.
#
# Usage: scripts/console-check.sh CONSOLE.log
# Only kernel lines count (they carry a "[ seconds.micro]" printk time), so a
# test printing "WARNING:" itself is not mistaken for the kernel. Harmless
# boot lines ("RCU lockdep checking is enabled", "vgaarb: bridge control
# possible") do not match.
set -euo pipefail

log=${1:?usage: $0 CONSOLE.log}
report='(BUG:|WARNING:|KASAN:|UBSAN:|Oops|Kernel panic|kernel BUG at|general protection fault|Call Trace:|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|INFO: task .* blocked|rcu: INFO:|self-detected stall|list_(add|del) corruption|unreferenced object)'
if grep -E "^\[ *[0-9]+\.[0-9]+\] .*$report" "$log"; then
	exit 1
fi
exit 0
