#!/usr/bin/env bash
# Configure and build the kernel in build/obj-$VARIANT from build/linux.
#
# Usage: [VARIANT=normal|debug|no-userfaultfd|kvm-module] [SERIES=none] scripts/build-kernel.sh [SRC OBJ]
#   (default build/linux and build/obj-$VARIANT; with SERIES=none the base
#   kernel, build/linux-base into build/obj-$VARIANT-base; series-check
#   passes others)
#
# Config: tinyconfig + config/kernel.config (+ config/$VARIANT.config), merged
# with the kernel's merge_config.sh; every option the fragments ask for must
# survive olddefconfig, or the build stops and names it. Output goes to
# build/obj-$VARIANT/build.log; the terminal gets a progress line now and
# then, and the compiler's errors if it fails.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

# SERIES=none: $KSRC is a copy of the base tag's files. git archive only
# reads objects, so build/linux's checkout, index and HEAD (perhaps with edits
# in progress) are untouched. The copy is made again only if the tag moved;
# extracted with fresh mtimes, so that make rebuilds what a new base changed.
# localversion-base puts "-base" in uname -r and /proc/version.
copy_base() {
	local want
	want=$(git -C "$SRC" rev-parse "$BASE_TAG^{commit}")
	[ "$(cat "$KSRC/.harness-base" 2>/dev/null)" != "$want" ] || return 0
	step "copying $BASE_TAG ($(git -C "$SRC" log -1 --format=%s "$want")) into ${KSRC#"$TOP"/}"
	rm -rf "$KSRC" "$KSRC.tmp"
	mkdir -p "$KSRC.tmp"
	git -C "$SRC" archive "$want" | tar -x -m -C "$KSRC.tmp"
	echo -base > "$KSRC.tmp/localversion-base"
	echo "$want" > "$KSRC.tmp/.harness-base"
	mv "$KSRC.tmp" "$KSRC"
}
[ $# -gt 0 ] || [ "$KSRC" = "$SRC" ] || copy_base

SRC=${1:-$KSRC}
OBJ=${2:-$OBJ}
fragments=("$TOP/config/kernel.config")
if [ "$VARIANT" != normal ]; then
	f=$(variant_fragment)
	if [ ! -f "$f" ]; then
		known=(normal)
		for c in "$TOP"/config/*.config; do
			c=${c##*/}; [ "$c" = kernel.config ] || known+=("${c%.config}")
		done
		die "no config/$VARIANT.config: VARIANT is one of ${known[*]}"
	fi
	fragments+=("$f")
fi

JOBS=${JOBS:-$(nproc)}
KMAKE=(make -C "$SRC" O="$OBJ" -j"$JOBS" CC="ccache gcc" HOSTCC="ccache gcc"
       KBUILD_BUILD_USER=gmem KBUILD_BUILD_HOST=harness)
mkdir -p "$OBJ"
log=$OBJ/build.log

# Options the fragments set (a later fragment overriding an earlier one)
# that the final .config does not have.
missing_options() {
	local line
	sed -n 's/^\(CONFIG_[A-Z0-9_]*=.*\)/\1/p' "${fragments[@]}" |
	awk -F= '{ v[$1] = $0; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
		END { for (i = 0; i < n; i++) print v[order[i]] }' | while read -r line; do
		case $line in
		*=n) grep -qx "# ${line%=n} is not set" "$OBJ/.config" || grep -qx "$line" "$OBJ/.config" ||
			! grep -q "^${line%=n}=" "$OBJ/.config" || echo "$line" ;;
		*) grep -qx "$line" "$OBJ/.config" || echo "$line" ;;
		esac
	done
}

configure() {
	local want
	want=$(cat "${fragments[@]}" | sha1sum | cut -d' ' -f1)
	if [ -f "$OBJ/.config" ] && [ "$(cat "$OBJ/.config-fragments" 2>/dev/null)" = "$want" ]; then
		return
	fi
	step "configuring $KDESC kernel: tinyconfig + ${fragments[*]##*/}"
	{
		"${KMAKE[@]}" tinyconfig
		"$SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "${fragments[@]}"
		"${KMAKE[@]}" olddefconfig
	} > "$OBJ/config.log" 2>&1 || { tail -30 "$OBJ/config.log"; die "kernel configuration failed"; }
	local lost
	lost=$(missing_options)
	[ -z "$lost" ] || die "options requested by the fragments but not in .config (unmet dependencies?):
$lost"
	echo "$want" > "$OBJ/.config-fragments"
}

build() {
	step "building $KDESC kernel in ${OBJ#"$TOP"/} (log: ${log#"$TOP"/})"
	local start=$SECONDS last=$SECONDS pid rc
	"${KMAKE[@]}" all > "$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 2
		if (( SECONDS - last >= 60 )); then
			last=$SECONDS
			info "$((SECONDS - start)) s: $(grep -c '^ *CC' "$log") files compiled so far"
		fi
	done
	rc=0; wait "$pid" || rc=$?
	if [ "$rc" != 0 ]; then
		echo "---- compiler and make errors ----" >&2
		grep -E -B2 -A6 '(error|Error|undefined reference|ERROR):' "$log" | head -80 >&2 || tail -40 "$log" >&2
		die "$KDESC kernel build failed (full log: $log)"
	fi
	info "done in $((SECONDS - start)) s: $(grep -c '^ *CC' "$log") files compiled, $(grep -c 'warning:' "$log") compiler warnings"
}

configure
build
