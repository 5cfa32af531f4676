# shellcheck shell=bash
# Paths and helpers shared by the harness scripts. Sourced, never run.
# shellcheck disable=SC2034 # the variables are used by the scripts sourcing this

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
PATCHES=$TOP/patches
SRC=$BUILD/linux            # git tree: pristine source tagged $BASE_TAG + series
BASE_TAG=base
VARIANT=${VARIANT:-normal}  # kernel variant: normal, or config/$VARIANT.config on top
# SERIES=none: build and boot the base kernel ($BASE_TAG, no patches) with the
# same config, for A/B runs of the same tests; the selftests still come from
# $SRC, since the point is to run the new tests on the old kernel. Its source
# is a plain copy of the tag ($KSRC), made from $SRC's objects by
# build-kernel.sh: no worktree, so nothing in $SRC changes and tools that look
# for kernel trees in build/*/.git do not take it for an unexported series.
# $KSUFFIX keeps its build, logs and results apart from the patched kernel's.
case ${SERIES:-} in
"") KSRC=$SRC KREV=HEAD KSUFFIX='' KDESC=$VARIANT ;;
none) KSRC=$BUILD/linux-base KREV=$BASE_TAG KSUFFIX=-base KDESC="$VARIANT base (no series)" ;;
*) printf 'error: SERIES=%s: leave it unset for the series, or none for the base kernel\n' "$SERIES" >&2; exit 1 ;;
esac
KNAME=$VARIANT$KSUFFIX
OBJ=$BUILD/obj-$KNAME       # out-of-tree kernel build
HDR=$BUILD/headers          # headers_install output of the patched tree
KSELFTEST=$BUILD/selftests  # static selftest binaries

# The variant's config fragment, added to config/kernel.config (none for
# normal), and the "# harness-KEY: VALUE" settings it carries for the VM.
variant_fragment() {
	[ "$VARIANT" = normal ] || echo "$TOP/config/$VARIANT.config"
}
variant_setting() {
	local f
	f=$(variant_fragment)
	[ -z "$f" ] || [ ! -f "$f" ] || sed -n "s/^# harness-$1:[[:space:]]*//p" "$f"
}

# What make check runs in the VM: $PLAN, else the variant's plan, else tests/plan.
variant_plan=$(variant_setting plan)
PLAN=$(realpath "${PLAN:-$TOP/${variant_plan:-tests/plan}}")
DEBIAN_SOURCE=/usr/src/linux-source-6.12.tar.xz

export CCACHE_BASEDIR=$TOP
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}

step() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Commits on top of the base in $SRC, oldest first.
series_commits() { git -C "$SRC" rev-list --reverse "$BASE_TAG..HEAD"; }

# Patch files listed in patches/series, in order (comments and blanks skipped).
series_files() {
	[ -f "$PATCHES/series" ] || return 0
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$PATCHES/series"
}
