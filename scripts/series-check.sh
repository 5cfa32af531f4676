#!/usr/bin/env bash
# Bisectability: apply the series one patch at a time and build the kernel
# after each, in a scratch worktree so build/linux is left alone.
#
# Usage: VARIANT=normal|debug scripts/series-check.sh
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

"$TOP/scripts/tree.sh"
wt=$BUILD/series-check
git -C "$SRC" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
git -C "$SRC" worktree add -q --detach "$wt" "$BASE_TAG"
trap 'git -C "$SRC" worktree remove --force "$wt"' EXIT

i=0
n=$(series_commits | wc -l)
for c in $(series_commits); do
	i=$((i + 1))
	git -C "$wt" checkout -q "$c"
	step "[$i/$n] $(git -C "$wt" log -1 --format=%s)"
	"$TOP/scripts/build-kernel.sh" "$wt" "$BUILD/obj-series-$VARIANT" ||
		die "the series does not build at patch $i: $(git -C "$wt" log -1 --format=%s)"
done
step "all $n prefixes of the series build ($VARIANT)"
