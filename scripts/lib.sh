# shellcheck shell=bash
# The project's base library: paths, build settings, logging, what a kernel
# splat looks like.  Sourced, never run, by the build and VM scripts of
# scripts/ and by the test library tests/lib.sh; it sources nothing.  Its
# names are prefixed scr_ and SCR_, like the test library's.
#
# The environment that scripts/vm-guest passes to the command it runs in the
# VM: SCR_MODULE (the module to load), SCR_KDIR and SCR_KSRC (the kernel's
# build and source trees), SCR_IN_VM=1.

# shellcheck disable=SC2034 # settings for the scripts that source this file
{
	SCR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	SCR_CACHE=${MPTCP_SCRAMBLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mptcp-scramble}
	SCR_LLVM=${LLVM:--19}
	SCR_KSRC_TARBALL=/usr/src/linux-source-6.12.tar.xz
	SCR_JOBS=${JOBS:-$(nproc)}
	# Bump when scripts/build-kernel changes how a tree is configured or built.
	SCR_BUILD_SCHEME=1
}

scr_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
scr_die() { scr_log "error: $*"; exit 1; }

# scr_variant [--debug|--stock]: "default" or "debug", from the flag or
# DEBUG=1; "stock" (the same kernel and configuration as default, without
# the patch series: the interoperability test's unpatched peer) from
# --stock only.
scr_variant() {
	if [[ ${1:-} == --stock ]]; then
		echo stock
	elif [[ ${1:-} == --debug || ${DEBUG:-0} == 1 ]]; then
		echo debug
	else
		echo default
	fi
}

scr_hash() { sha256sum | cut -c1-16; }

# Everything that changes the kernel's configuration or code generation,
# except the patch series: kernel source, config fragments, toolchain and
# this build logic.  Selects the build tree.
scr_base_key() {
	local variant=$1
	{
		echo "variant=$variant"
		dpkg-query -W -f='${Package} ${Version}\n' linux-source-6.12
		stat -c '%s %Y' "$SCR_KSRC_TARBALL"
		cat "$SCR_ROOT/scripts/kconfig/base.config" "$SCR_ROOT/tests/config"
		[[ $variant == debug ]] && cat "$SCR_ROOT/scripts/kconfig/debug.config"
		rustc -vV
		"clang$SCR_LLVM" --version
		"ld.lld$SCR_LLVM" --version
		bindgen --version
		echo "scheme=$SCR_BUILD_SCHEME"
	} 2>&1 | scr_hash
}

# The base key plus the patch series: a build tree stamped with this key
# is up to date.  The stock variant applies no patch, so its key is the
# base key alone.
scr_full_key() {
	if [[ $1 == stock ]]; then
		scr_base_key "$1"
		return
	fi
	{
		scr_base_key "$1"
		cat "$SCR_ROOT"/patches/*.patch
	} | scr_hash
}

scr_kernel_dir() { echo "$SCR_CACHE/kernel-$1-$(scr_base_key "$1")"; }

# Kernel options for a guest emulated by TCG, where the CPU runs 10 to 50
# times slower than native and is descheduled whenever the host is busy:
# RCU's stall detector (the test kernels' only lockup detector) then
# would report a stall after its default 21 s on work that takes well
# under a second on hardware.  Its timeout is raised
# to the 100 s syzbot uses for its KVM guests (its TCG guests use 300):
# a CPU that really stops passing quiescent states is still reported,
# and a hung test also ends by its timeout.
#
# And no5lvl: TCG's CPU offers 5-level paging (LA57), and on 6.12 a KASAN
# kernel using it can report a "wild-memory-access" while it boots.
# identify_cpu() clears boot_cpu_data.x86_capability before reading CPUID
# again; until the alternatives are applied, pgtable_l5_enabled() tests
# that bit, so an interrupt inside that window computes KASAN's shadow
# bounds for 4-level paging and takes the irq descriptor's direct-map
# address (0xff11...) for a wild one (seen in 2 of 5 debug-kernel boots
# here, in identify_cpu() and get_cpu_vendor() under handle_edge_irq()).
# A boot-time race in the kernel, not in anything this project tests; on
# 4-level paging, as on most hardware, it cannot happen.
SCR_TCG_APPEND='rcupdate.rcu_cpu_stall_timeout=100 no5lvl'

# What a kernel log line looks like when something went wrong: BUG and
# WARNING (which also open KASAN and lockdep reports), oopses, sleeping in
# atomic context, UBSAN, RCU stalls, hung tasks.
SCR_SPLAT_RE='BUG:|WARNING:|Oops|general protection fault|kernel BUG|UBSAN:|KASAN|INFO: (possible|task .* blocked|rcu)|sleeping function called from invalid context|refcount_t:|list_(add|del) corruption'

# scr_splats < LOG: print each splat of LOG with the 30 lines after it;
# succeed if there was one.
scr_splats() {
	grep -E -A30 "$SCR_SPLAT_RE"
}
