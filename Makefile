# guest_memfd userfaultfd: the patch series and the harness that proves it.
# The pipeline: source -> series -> config -> build -> initramfs -> VM -> results.
#
#   make run            build, boot the patched kernel, run the demo
#   make bench          every userfaultfd backend, timed: build/bench/results.md
#   make check          host checks, build, run tests/plan in the VM (TAP)
#   make vm CMD='...' [ADD='file ...']   run your own command in the VM
#   make mutants        the restore library's tests against broken copies of it
#   make tree / export  the edit loop: patches/ <-> build/linux (git)
#   make kernel selftests series-check clean
#
# VARIANT=debug selects the KASAN/lockdep/DEBUG_VM kernel. SERIES=none runs
# any of run, check, bench, vm on the base kernel (no patches, same config)
# with the same selftests: an A/B of the series.

VARIANT ?= normal
export VARIANT
VM_TIMEOUT ?= 600

.PHONY: all run check bench vm tree export kernel selftests series-check deps clean mutants
all: run

deps:
	@scripts/deps.sh

tree: deps
	@scripts/tree.sh

export:
	@scripts/export.sh

kernel: tree
	@scripts/build-kernel.sh

selftests: tree
	@scripts/build-selftests.sh

run: kernel selftests
	@scripts/vm.sh -t $(VM_TIMEOUT) -a build/selftests/mm -a build/selftests/kvm \
		-a build/selftests/examples -a tests/demo.sh -- ./demo.sh

check: deps
	@scripts/check.sh

bench: kernel selftests
	@scripts/bench.sh

# The selftest and example binaries are always in the guest (mm/, kvm/,
# examples/), ADD files too.
# CMD reaches the script verbatim, through the environment as VM_CMD: make
# exports CMD itself expanded, so "$(seq 3)" or "$i" would arrive empty and
# "$$" as "$". $(value CMD) is the text as given, on the command line or in
# the environment, and a := variable is not expanded again when exported.
# tests/harness/test-make-vm-cmd.sh checks this.
vm: export VM_CMD := $(value CMD)
vm: kernel selftests
	@test -n "$$VM_CMD" || { echo "usage: make vm CMD='command' [ADD='file ...']"; exit 2; }
	@scripts/vm.sh -t $(VM_TIMEOUT) -a build/selftests/mm -a build/selftests/kvm \
		-a build/selftests/examples $(foreach f,$(ADD),-a $(f)) -- "$$VM_CMD" || \
		{ rc=$$?; echo "vm: exit status $$rc (make itself can only exit 2)"; exit $$rc; }

series-check: deps
	@scripts/series-check.sh

# Opt-in, not part of check: every mutant of restore/ must fail the tests.
mutants: kernel selftests
	@restore/test/mutants.sh -r

clean:
	rm -rf build
