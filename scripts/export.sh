#!/usr/bin/env bash
# Write the commits on top of "base" in build/linux back to patches/: one
# git format-patch file per commit, the cover letter, and patches/series.
#
# Usage: scripts/export.sh
#
# Deterministic: re-exporting an unchanged tree rewrites no byte. The cover
# letter's subject and text are kept from patches/0000-cover-letter.patch
# (edit them there); its shortlog and diffstat are regenerated.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

[ -d "$SRC/.git" ] || die "no tree at ${SRC#"$TOP"/}: run 'make tree' first"
git -C "$SRC" diff --quiet HEAD || die "build/linux has uncommitted edits: commit them first"
cover=$PATCHES/0000-cover-letter.patch
n=$(git -C "$SRC" rev-list --count "$BASE_TAG..HEAD")

# Cover letter text: the Subject after "[PATCH 0/N] ", then the body up to
# the shortlog ("Name (N):").
cover_text() {
	if [ ! -f "$cover" ]; then
		printf 'guest_memfd: userfaultfd support\n\n*** describe the series here ***\n'
		return
	fi
	awk '
		/^Subject: / { sub(/^Subject: (\[[^]]*\] )?/, ""); subj = $0; insubj = 1; next }
		insubj && /^[ \t]/ { sub(/^[ \t]+/, " "); subj = subj $0; next }
		{ insubj = 0 }
		!body && /^$/ { body = 1; print subj; print ""; next }
		body && /^[^ ].* \([0-9]+\):$/ { exit }
		body { print }
	' "$cover" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ "$n" -gt 0 ]; then
	git -C "$SRC" config branch."$(git -C "$SRC" branch --show-current)".description "$(cover_text)"
	git -C "$SRC" format-patch -q --zero-commit --no-signature --cover-letter \
		--cover-from-description=subject --base="$BASE_TAG" -o "$out" "$BASE_TAG..HEAD"
	# The cover letter carries today's date; use the newest commit's instead.
	date=$(git -C "$SRC" log -1 --format=%aD HEAD)
	sed -i "s/^Date: .*/Date: $date/" "$out/0000-cover-letter.patch"
fi

find "$PATCHES" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' -delete
mkdir -p "$PATCHES"
[ "$n" -eq 0 ] || cp "$out"/*.patch "$PATCHES/"
{
	echo "# Applied in this order by scripts/tree.sh; written by scripts/export.sh."
	for f in "$out"/[0-9]*.patch; do
		case ${f##*/} in 0000-* | "[0-9]*.patch") ;; *) echo "${f##*/}" ;; esac
	done
} > "$PATCHES/series"

# The tree now matches patches/: record it so that 'make tree' keeps it.
"$TOP/scripts/tree.sh" --mark-exported
step "exported $n patches to patches/"
