#!/usr/bin/env bash
# Self-test of `make vm CMD=...`: the command must reach scripts/vm.sh
# byte for byte ($, $$, $(...), quotes, ';', '#', backslashes, newlines),
# whether CMD is given on make's command line or in the environment, and
# the guest's exit status must come back. No VM boots: the real Makefile
# runs in a scratch copy of the repository whose scripts are stubs (the
# build steps do nothing, vm.sh records its command and exits with a
# status the test chooses).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp "$top/Makefile" "$work/"
mkdir "$work/scripts"
for s in deps tree build-kernel build-selftests; do
	printf '#!/bin/sh\nexit 0\n' > "$work/scripts/$s.sh"
done
# The stub vm.sh: everything after "--" is the command, as vm.sh takes it.
cat > "$work/scripts/vm.sh" <<'EOF'
#!/usr/bin/env bash
while [ "$1" != -- ]; do shift; done
shift
printf '%s' "$*" > "$STUB_OUT"
exit "${STUB_RC:-0}"
EOF
chmod +x "$work/scripts/"*.sh
export STUB_OUT=$work/got
# An outer make (make check) passes its own variables down in MAKEFLAGS.
unset MAKEFLAGS MFLAGS MAKELEVEL

fail=0
# check HOW CMD: HOW is "arg" (make vm CMD=...) or "env" (CMD=... make vm).
check() {
	local how=$1 cmd=$2 got
	rm -f "$STUB_OUT"
	if [ "$how" = arg ]; then
		make -s -C "$work" vm CMD="$cmd" > /dev/null || true
	else
		CMD=$cmd make -s -C "$work" vm > /dev/null || true
	fi
	got=$(cat "$STUB_OUT" 2>/dev/null || echo '<vm.sh not run>')
	if [ "$got" != "$cmd" ]; then
		printf 'make vm (CMD in %s): vm.sh got\n  %s\nexpected\n  %s\n' "$how" "$got" "$cmd"
		fail=1
	fi
}

# shellcheck disable=SC2016 # these strings are the literal commands
cmds=(
	'for i in $(seq 3); do echo "n=$i"; done'
	'echo $$ $$$ $HOME ${PATH%%:*} `date` $((1 + 2)) \$x'
	"echo 'single' \"double \$x\" 'it'\\''s'; echo a\\\\b # not a comment to make"
	'printf "%s\n" a%b 100% *; true && false || :'
	"$(printf 'echo line1\necho "$((2 * 3))"\n')"
)
for c in "${cmds[@]}"; do
	check arg "$c"
	check env "$c"
done

# The guest command's exit status is printed, since make can only exit 2.
out=$(STUB_RC=7 make -s -C "$work" vm CMD=false 2>&1) && fail=1
if [[ $out != *"vm: exit status 7"* ]]; then
	printf 'make vm: a command exiting 7 printed\n%s\n' "$out"
	fail=1
fi
# No CMD: usage, and no VM.
rm -f "$STUB_OUT"
if make -s -C "$work" vm > /dev/null 2>&1 || [ -e "$STUB_OUT" ]; then
	echo "make vm without CMD: expected the usage line and no VM"
	fail=1
fi
exit "$fail"
