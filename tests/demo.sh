#!/bin/bash
# The `make run` demo, run inside the VM from /extra: KVM demand paging
# through userfaultfd, anonymous memory (MISSING, UFFDIO_COPY) beside shmem
# (MINOR, UFFDIO_CONTINUE), with the paging rate of each.
set -euo pipefail

rate() {
	local out
	out=$("$@" 2>&1) || { printf '%s\n' "$out"; echo "demo: '$*' failed" >&2; return 1; }
	printf '%s\n' "$out" | sed -n 's/.*Overall demand paging rate:[[:space:]]*\(.*\)/\1/p' | tail -n 1
}

size=${DEMO_SIZE:-64M}
anon=$(rate kvm/demand_paging_test -b "$size" -u MISSING -s anonymous)
shmem=$(rate kvm/demand_paging_test -b "$size" -u MINOR -s shmem)
echo
echo "KVM demand paging, 1 vCPU, $size of guest memory (TCG: emulated, compare ratios)"
printf '  %-34s %s\n' "backing / userfaultfd mode" "rate"
printf '  %-34s %s\n' "anonymous / MISSING (UFFDIO_COPY)" "$anon"
printf '  %-34s %s\n' "shmem / MINOR (UFFDIO_CONTINUE)" "$shmem"
