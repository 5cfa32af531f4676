#!/usr/bin/env bash
# Boot build/obj-$VARIANT's kernel in QEMU and run one command in the guest
# (SERIES=none: build/obj-$VARIANT-base's, the kernel without the series).
#
# Usage: scripts/vm.sh [-t SECONDS] [-i SECONDS] [-a PATH]... [-m MODULE]... [-l LOG] [-p PREFIX] -- COMMAND
#   -a PATH    copy a file or directory into /extra/ in the guest (repeatable)
#   -m MODULE  modprobe MODULE before the command (CONFIG_KVM=m builds)
#   -t SECONDS kill the guest after this long (default 600) and fail
#   -i SECONDS kill the guest and fail if its console is silent this long
#   -l LOG     keep the console log there (default build/vm-$VARIANT.log, -base.log for SERIES=none)
#   -p PREFIX  print each console line behind PREFIX
#
# COMMAND runs as root under bash with /extra as its working directory. The
# console is printed as it comes; the exit status is COMMAND's. A guest that
# hangs or dies without reporting a status fails with its last console lines.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=vm/qemu-x86_64.conf
. "$TOP/vm/qemu-x86_64.conf"

timeout_s=600
log=$BUILD/vm-$KNAME.log
adds=()
modules=()
prefix=
idle_s=0
usage="usage: $0 [-t SECONDS] [-i SECONDS] [-a PATH]... [-m MODULE]... [-l LOG] [-p PREFIX] -- COMMAND"
while getopts "t:i:a:m:l:p:" opt; do
	case $opt in
	t) timeout_s=$OPTARG ;;
	i) idle_s=$OPTARG ;;
	a) adds+=("$OPTARG") ;;
	m) modules+=("$OPTARG") ;;
	l) log=$OPTARG ;;
	p) prefix=$OPTARG ;;
	*) die "$usage" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || die "$usage"

kernel=${KERNEL:-$OBJ/arch/x86/boot/bzImage}  # KERNEL=...: boot another bzImage
[ -f "$kernel" ] || die "$kernel missing: build it with 'make kernel VARIANT=$VARIANT${SERIES:+ SERIES=$SERIES}'"
base_initrd=$BUILD/initramfs-base.cpio.gz
if [ ! -f "$base_initrd" ] || [ "$TOP/guest/init" -nt "$base_initrd" ]; then
	"$TOP/scripts/mkinitramfs.sh" "$base_initrd"
fi

# The extra archive is appended to the base one: the kernel unpacks both.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/extra"
for p in ${adds[@]+"${adds[@]}"}; do
	[ -e "$p" ] || die "ADD: $p does not exist"
	cp -a "$p" "$work/root/extra/"
done
printf '%s\n' "$*" > "$work/root/extra/.cmd"
if [ ${#modules[@]} -gt 0 ]; then
	printf '%s\n' "${modules[@]}" > "$work/root/extra/.modules"
	make -s -C "$KSRC" O="$OBJ" INSTALL_MOD_PATH="$work/root" modules_install >/dev/null
fi
(cd "$work/root" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 > "$work/extra.cpio.gz"
cat "$base_initrd" "$work/extra.cpio.gz" > "$work/initrd.gz"

# Console lines go to the log and, behind the prefix, to the terminal, as they
# come (awk implementations such as mawk would hold them back in a buffer).
# With -i, a console silent for that long means a wedged guest: stop QEMU.
show_console() {
	local line rc
	while :; do
		rc=0
		if [ "$idle_s" -gt 0 ]; then
			IFS= read -r -t "$idle_s" line || rc=$?
		else
			IFS= read -r line || rc=$?
		fi
		if [ "$rc" -gt 128 ]; then
			: > "$work/idle"
			kill "$(cat "$work/qemu.pid")" 2> /dev/null
			continue
		fi
		[ "$rc" = 0 ] || [ -n "$line" ] || break
		line=${line%$'\r'}
		printf '%s\n' "$line" >&3
		printf '%s%s\n' "$prefix" "$line"
	done
}

accel=$(qemu_accel)
cpu=max; [ "$accel" = kvm ] && cpu=host
mkdir -p "$(dirname "$log")"
set +e
(
	echo "$BASHPID" > "$work/qemu.pid"
	exec timeout -k 5 "$timeout_s" \
		"$QEMU" "${QEMU_ARGS[@]}" -accel "$accel" -cpu "$cpu" \
		-kernel "$kernel" -initrd "$work/initrd.gz" -append "$KERNEL_CMDLINE" \
		</dev/null 2>&1
) | show_console 3> "$log"
rc=${PIPESTATUS[0]}
set -e

status=$(sed -n 's/^@@VM-EXIT-STATUS=\([0-9]*\)@@$/\1/p' "$log" | tail -n 1)
if [ -z "$status" ]; then
	if [ -f "$work/idle" ]; then
		echo "vm: guest killed: its console was silent for ${idle_s} s (hung?); last console lines:" >&2
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "vm: guest killed after ${timeout_s} s (hung?); last console lines:" >&2
	else
		echo "vm: guest stopped without reporting an exit status (QEMU exit $rc); last console lines:" >&2
	fi
	tail -n 25 "$log" | sed 's/^/vm:   /' >&2
	exit 125
fi
exit "$status"
