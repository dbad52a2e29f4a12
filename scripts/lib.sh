# shellcheck shell=bash
# Shared settings of the build and VM scripts.  Sourced, never run.

MS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MS_CACHE=${MPTCP_SCRAMBLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mptcp-scramble}
MS_LLVM=${LLVM:--19}
MS_KSRC_TARBALL=/usr/src/linux-source-6.12.tar.xz
MS_JOBS=${JOBS:-$(nproc)}
# Bump when scripts/build-kernel changes how a tree is configured or built.
MS_BUILD_SCHEME=1

ms_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
ms_die() { ms_log "error: $*"; exit 1; }

# ms_variant [--debug]: "default" or "debug", from the flag or DEBUG=1.
ms_variant() {
	if [[ ${1:-} == --debug || ${DEBUG:-0} == 1 ]]; then
		echo debug
	else
		echo default
	fi
}

ms_hash() { sha256sum | cut -c1-16; }

# Everything that changes the kernel's configuration or code generation,
# except the patch series: kernel source, config fragments, toolchain and
# this build logic.  Selects the build tree.
ms_base_key() {
	local variant=$1
	{
		echo "variant=$variant"
		dpkg-query -W -f='${Package} ${Version}\n' linux-source-6.12
		stat -c '%s %Y' "$MS_KSRC_TARBALL"
		cat "$MS_ROOT/scripts/kconfig/base.config" "$MS_ROOT/tests/config"
		[[ $variant == debug ]] && cat "$MS_ROOT/scripts/kconfig/debug.config"
		rustc -vV
		"clang$MS_LLVM" --version
		"ld.lld$MS_LLVM" --version
		bindgen --version
		echo "scheme=$MS_BUILD_SCHEME"
	} 2>&1 | ms_hash
}

# The base key plus the patch series: a build tree stamped with this key
# is up to date.
ms_full_key() {
	{
		ms_base_key "$1"
		cat "$MS_ROOT"/patches/*.patch
	} | ms_hash
}

ms_kernel_dir() { echo "$MS_CACHE/kernel-$1-$(ms_base_key "$1")"; }

# What a kernel log line looks like when something went wrong: BUG and
# WARNING (which also open KASAN and lockdep reports), oopses, sleeping in
# atomic context, UBSAN, RCU stalls, hung tasks.
MS_SPLAT_RE='BUG:|WARNING:|Oops|general protection fault|kernel BUG|UBSAN:|KASAN|INFO: (possible|task .* blocked|rcu)|sleeping function called from invalid context|refcount_t:|list_(add|del) corruption'

# ms_splats < LOG: print each splat of LOG with the 30 lines after it;
# succeed if there was one.
ms_splats() {
	grep -E -A30 "$MS_SPLAT_RE"
}
