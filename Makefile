# SPDX-License-Identifier: GPL-2.0
#
# mptcp-scramble: the one build entry point.
#
#   make demo        build everything missing, run the demonstrations in a VM
#                    (MPTCP scrambling, then stack virtualization)
#   make test        build everything missing, run all tests
#   make bench       throughput benchmarks, plain vs scrambled, in a VM
#   make security    what a one-path eavesdropper recovers, in a VM
#   make interop     the patched kernel with the module against a stock
#                    kernel (two VMs), also part of make test
#   make module      the kernel (cached) and src/mptcp_scramble.ko
#   make check       checkpatch --strict on patches/, clippy on the tools
#
# DEBUG=1 uses the debug kernel (KASAN, lockdep, DEBUG_ATOMIC_SLEEP);
# KVM=1 runs guests with KVM instead of TCG.

LLVM ?= -19
DEBUG ?= 0
export DEBUG KVM
KERNEL_FLAGS := $(if $(filter 1,$(DEBUG)),--debug)
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all setup kernel module selftests tools demo test test-long bench security interop check clean

all: module tools

setup:
	@scripts/setup

kernel: setup
	@scripts/build-kernel $(KERNEL_FLAGS) >/dev/null

# Kbuild (see ./Kbuild) builds the module against the cached kernel tree.
# An objtool warning fails the build (6.12 has no CONFIG_OBJTOOL_WERROR):
# it means code objtool cannot follow, such as a panic call it does not
# know as noreturn.
module: kernel
	@out=$$($(MAKE) -C "$$(scripts/build-kernel $(KERNEL_FLAGS) 2>/dev/null)" M=$(CURDIR) LLVM=$(LLVM) modules 2>&1); \
	rc=$$?; printf '%s\n' "$$out"; [ $$rc -eq 0 ] || exit $$rc; \
	if printf '%s\n' "$$out" | grep -q 'warning: objtool:'; then \
		echo "module: objtool warnings are errors" >&2; exit 1; fi

# The kernel's own MPTCP selftest programs, for tests/upstream.sh.
selftests: kernel
	@scripts/build-selftests $(KERNEL_FLAGS)

tools: setup
	@$(CARGO) build --release --workspace --bins

demo: module tools
	@scripts/vm -- bash -c "scripts/demo && scripts/demo-stackvirt"

test: tools
	@scripts/run-tests

# What does not fit CI's 90 minutes: all of stackvirt.sh and
# negotiate.sh and the upstream selftests in the hardened mode on the
# debug kernel; on the normal kernel the upstream selftests in the
# paper's mode and datapath.sh in the hardened mode (make test runs the
# former in the hardened mode there, the latter on the debug kernel).
test-long: tools
	@DEBUG=1 $(MAKE) --no-print-directory module selftests
	@scripts/vm --debug --timeout 3600 -- tests/run stackvirt.sh negotiate.sh@paper upstream.sh@hardened
	@DEBUG=0 $(MAKE) --no-print-directory module selftests
	@scripts/vm --timeout 3600 -- tests/run upstream.sh@paper datapath.sh@hardened

# The guest does not inherit the host's environment: pass the knobs on.
bench: module tools
	@scripts/vm --timeout 3600 --rwdir results -- \
		env RUNS="$${RUNS:-}" SECTIONS="$${SECTIONS:-}" scripts/bench results

security: module tools
	@scripts/vm --rwdir results -- scripts/security results

interop: module tools
	@scripts/build-kernel --stock >/dev/null
	@scripts/vm-pair -- tests/run interop.sh

check: setup
	@scripts/check

clean:
	@$(MAKE) -C "$$(scripts/build-kernel $(KERNEL_FLAGS) 2>/dev/null)" M=$(CURDIR) LLVM=$(LLVM) clean 2>/dev/null || true
	@$(CARGO) clean
