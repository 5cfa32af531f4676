#!/usr/bin/env bash
# Install the Debian packages the harness needs, if any is missing.
#
# Usage: scripts/deps.sh
set -euo pipefail

packages=(
	linux-source-6.12                                      # the base tree
	gcc make bc bison flex libelf-dev libssl-dev perl kmod # kernel build
	ccache git xz-utils cpio file rsync python3            # harness
	qemu-system-x86 busybox-static bash-static             # test VM
	shellcheck                                             # host checks
	gnuplot-nox                                            # make bench plot
	liburing-dev                                           # restore/ io_uring handler
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "==> installing Debian packages: ${missing[*]}"
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >/dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
