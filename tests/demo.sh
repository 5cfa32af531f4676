#!/bin/bash
# The `make run` demo, run inside the VM from /extra: a KVM guest demand-paged
# through userfaultfd, with the paging rate of each backing: anonymous memory
# (MISSING, UFFDIO_COPY), shmem (MINOR, UFFDIO_CONTINUE) and guest_memfd
# (MISSING answered by pwrite() + UFFDIO_CONTINUE; MINOR by UFFDIO_CONTINUE),
# and a gmem-only memslot with KVM Userfault (each vCPU exit answered by the
# vCPU thread with pwrite()). Then the README's minimal handler
# (examples/gmem-uffd-handler.c) runs, and a guest is restored lazily from a
# snapshot file by the reference handler (restore/, examples/lazy-restore.c)
# and hashes all of its memory: through userfaultfd, then on a gmem-only
# memslot with KVM Userfault.
set -euo pipefail

rate() {
	local out
	out=$("$@" 2>&1) || { printf '%s\n' "$out"; echo "demo: '$*' failed" >&2; return 1; }
	printf '%s\n' "$out" | sed -n 's/.*Overall demand paging rate:[[:space:]]*\(.*\)/\1/p' | tail -n 1
}

size=${DEMO_SIZE:-64M}
anon=$(rate kvm/demand_paging_test -b "$size" -u MISSING -s anonymous)
shmem=$(rate kvm/demand_paging_test -b "$size" -u MINOR -s shmem)
gmem_missing=$(rate kvm/demand_paging_test -b "$size" -u MISSING -w -s guest_memfd)
gmem_copy=$(rate kvm/demand_paging_test -b "$size" -u MISSING -s guest_memfd)
gmem_minor=$(rate kvm/demand_paging_test -b "$size" -u MINOR -s guest_memfd)
gmem_only=$(rate kvm/demand_paging_test -b "$size" -k -g -s guest_memfd)
echo
echo "KVM demand paging, 1 vCPU, $size of guest memory (TCG: emulated, compare ratios)"
printf '  %-48s %s\n' "backing / userfaultfd mode (answer)" "rate"
printf '  %-48s %s\n' "anonymous / MISSING (UFFDIO_COPY)" "$anon"
printf '  %-48s %s\n' "shmem / MINOR (UFFDIO_CONTINUE)" "$shmem"
printf '  %-48s %s\n' "guest_memfd / MISSING (pwrite + UFFDIO_CONTINUE)" "$gmem_missing"
printf '  %-48s %s\n' "guest_memfd / MISSING (UFFDIO_COPY)" "$gmem_copy"
printf '  %-48s %s\n' "guest_memfd / MINOR (UFFDIO_CONTINUE)" "$gmem_minor"
printf '  %-48s %s\n' "guest_memfd gmem-only / KVM Userfault (pwrite)" "$gmem_only"
echo
echo "examples/gmem-uffd-handler: a userspace reader of 4096 guest_memfd pages"
examples/gmem-uffd-handler 4096
echo
echo "examples/lazy-restore: a KVM guest restored lazily from a snapshot file;"
echo "the guest hashes all of its memory, which must match the snapshot's hash"
examples/lazy-restore save /tmp/guest.snap "${DEMO_SNAPSHOT_MIB:-64}"
examples/lazy-restore restore /tmp/guest.snap -m sync -w 1
examples/lazy-restore restore /tmp/guest.snap -m sync -w 16 -a 32 -H 2
examples/lazy-restore restore /tmp/guest.snap -m uring -w 16 -a 32
examples/lazy-restore restore /tmp/guest.snap -m uring -w 16 -a 32 -A copy
echo "the same guest on a gmem-only memslot with KVM Userfault: the vCPU thread"
echo "restores each page it exits on; userfaultfd serves only the VMM's accesses"
examples/lazy-restore restore /tmp/guest.snap -G -m sync -w 1
examples/lazy-restore restore /tmp/guest.snap -G -m uring -w 16 -a 32
echo "and with a page of the snapshot overwritten (this must fail):"
dd if=/dev/zero of=/tmp/guest.snap bs=4096 seek=1000 count=1 conv=notrunc 2> /dev/null
if examples/lazy-restore restore /tmp/guest.snap -m uring -w 16 -a 32; then
	echo "demo: a corrupted snapshot was not detected" >&2
	exit 1
fi
