#!/usr/bin/env bash
# Write the test VM's base initramfs: busybox, bash and guest/init, all
# static, so nothing from the host's shared libraries is needed in the guest.
#
# Usage: scripts/mkinitramfs.sh OUT.cpio.gz
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

out=${1:?usage: $0 OUT.cpio.gz}
busybox=/bin/busybox
bash_static=/bin/bash-static
for f in "$busybox" "$bash_static"; do
	[ -x "$f" ] || die "$f missing: run scripts/deps.sh"
	file -L "$f" | grep -q 'statically linked' || die "$f is not statically linked"
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,extra,root,lib/modules}
cp "$busybox" "$stage/bin/busybox"
cp "$bash_static" "$stage/bin/bash"
install -m 755 "$TOP/guest/init" "$stage/init"
(cd "$stage" && find . -print0 | sort -z | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9n > "$out.tmp"
mv "$out.tmp" "$out"
