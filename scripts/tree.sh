#!/usr/bin/env bash
# Make build/linux: Debian's linux-source-6.12 as a git tree whose base
# commit is tagged "base", with patches/series applied on top by git am.
#
# Usage: scripts/tree.sh                  (FORCE=1 discards unexported commits)
#        scripts/tree.sh --mark-exported  (export.sh: the tree matches patches/)
#
# The tree remembers which series it was made from (.git/harness-series).
# If patches/ changed since, the tree is reset to the base and the series is
# re-applied; unexported commits or edits in the tree stop that, so work is
# never thrown away silently.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

STAMP=$SRC/.git/harness-series
IDENT=(-c user.name="Debian linux-source" -c user.email="debian-kernel@lists.debian.org")

patches_hash() {
	local f
	{
		cat "$PATCHES/series" 2>/dev/null || true
		while read -r f; do cat "$PATCHES/$f" 2>/dev/null || true; done < <(series_files)
	} | sha1sum | cut -d' ' -f1
}

make_base() {
	[ -f "$DEBIAN_SOURCE" ] || die "$DEBIAN_SOURCE missing: run scripts/deps.sh"
	step "unpacking $(basename "$DEBIAN_SOURCE") into ${SRC#"$TOP"/}"
	rm -rf "$SRC" "$SRC.tmp"
	mkdir -p "$SRC.tmp"
	tar -xf "$DEBIAN_SOURCE" -C "$SRC.tmp" --strip-components=1
	git -C "$SRC.tmp" init -q -b master
	git -C "$SRC.tmp" add -A -f
	local version
	version=$(make -s -C "$SRC.tmp" kernelversion)
	dpkg_version=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo unknown)
	# Fixed dates make the base commit, and so the exported series, reproducible.
	GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" git -C "$SRC.tmp" "${IDENT[@]}" \
		commit -q -m "Linux $version (Debian linux-source-6.12 $dpkg_version)"
	git -C "$SRC.tmp" tag "$BASE_TAG"
	mv "$SRC.tmp" "$SRC"
	info "base: Linux $version, Debian $dpkg_version"
}

apply_series() {
	git -C "$SRC" reset -q --hard "$BASE_TAG"
	git -C "$SRC" clean -q -fdx
	local files=() f
	while read -r f; do
		[ -f "$PATCHES/$f" ] || die "patches/series names $f, which does not exist"
		files+=("$PATCHES/$f")
	done < <(series_files)
	step "applying ${#files[@]} patches from patches/series"
	for f in "${files[@]}"; do
		if ! out=$(git -C "$SRC" am -q --keep-cr "$f" 2>&1); then
			git -C "$SRC" am --abort >/dev/null 2>&1 || true
			printf '%s\n' "$out" >&2
			die "patch $(basename "$f") does not apply (tree left at the patch before it)"
		fi
		info "applied $(basename "$f")"
	done
	mark_applied
}

mark_applied() {
	printf '%s %s\n' "$(git -C "$SRC" rev-parse HEAD)" "$(patches_hash)" > "$STAMP"
}

if [ "${1:-}" = --mark-exported ]; then
	mark_applied
	exit 0
fi

if ! git -C "$SRC" rev-parse -q --verify "$BASE_TAG" >/dev/null 2>&1; then
	make_base
fi

# Identity for commits made in the tree (the edit loop); kept local to it.
git -C "$SRC" config user.name >/dev/null || {
	git -C "$SRC" config user.name "${GIT_AUTHOR_NAME:-$(git -C "$TOP" config user.name || echo 'gmem-uffd developer')}"
	git -C "$SRC" config user.email "${GIT_AUTHOR_EMAIL:-$(git -C "$TOP" config user.email || echo 'gmem-uffd@example.org')}"
}

want=$(patches_hash)
if [ -f "$STAMP" ]; then
	read -r had_head had_hash < "$STAMP"
	head=$(git -C "$SRC" rev-parse HEAD)
	if [ "$had_hash" = "$want" ] && [ "$had_head" = "$head" ]; then
		git -C "$SRC" diff --quiet HEAD || info "tree has uncommitted edits; building them as they are"
		exit 0
	fi
	if [ "${FORCE:-0}" != 1 ]; then
		[ "$had_head" = "$head" ] || die "build/linux has commits not exported to patches/: run 'make export' (or FORCE=1 to discard them)"
		git -C "$SRC" diff --quiet HEAD || die "build/linux has uncommitted edits and patches/ changed: commit and 'make export', or FORCE=1 to discard them"
	fi
fi
apply_series
