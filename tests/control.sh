#!/usr/bin/env bash
# The control plane of mptcp_scramble.ko: load and unload, the per-netns
# sysctl net.mptcp_scramble.enabled, the /proc/net/mptcp_scramble
# counters, the hooks the patch series adds.
source "$(dirname "$0")/lib.sh"

SYSCTL=/proc/sys/net/mptcp_scramble/enabled

scr_require_root
scr_require_cmd ip insmod rmmod
scr_require_module_file

# write_once FILE VALUE [NETNS]: write VALUE to FILE with one write(2).
write_once() {
	local in_ns=()
	[[ -n ${3:-} ]] && in_ns=(ip netns exec "$3")
	# shellcheck disable=SC2016 # the inner shell's $1 and $2
	"${in_ns[@]}" bash -c 'printf "%s" "$2" > "$1"' _ "$1" "$2" 2>/dev/null
}

# read_value FILE [NETNS]: FILE's content, read in NETNS.
read_value() {
	local in_ns=()
	[[ -n ${2:-} ]] && in_ns=(ip netns exec "$2")
	"${in_ns[@]}" cat "$1"
}

test_hooks_in_kallsyms() {
	local hook
	for hook in established tx rx destroy fastopen offer reject; do
		grep -qw "mptcp_scramble_hook_$hook" /proc/kallsyms ||
			scr_fail "hook mptcp_scramble_hook_$hook missing from /proc/kallsyms" || return
	done
}

test_load_unload_20_times() {
	local i
	scr_unload
	for ((i = 1; i <= 20; i++)); do
		insmod "$SCR_MODULE" || scr_fail "insmod #$i failed" || return
		[[ -f $SYSCTL ]] || scr_fail "no $SYSCTL after insmod #$i" || return
		rmmod mptcp_scramble || scr_fail "rmmod #$i failed" || return
		[[ ! -e $SYSCTL && ! -e /proc/net/mptcp_scramble ]] ||
			scr_fail "sysctl or /proc file left after rmmod #$i" || return
	done
}

test_load_logs_a_line() {
	scr_unload
	scr_mark_dmesg
	scr_load || return
	scr_dmesg_since_mark | grep -q '^\[[ 0-9.]*\] mptcp_scramble: scrambling MPTCP connections' ||
		scr_fail "no 'mptcp_scramble: scrambling MPTCP connections' line in the kernel log" || return
	# The known answers (src/hardened_kat.rs) passed on the kernel's own
	# crypto library: a wrong one fails the load.
	scr_dmesg_since_mark | grep -q 'self-tests passed: seed, X25519, ChaCha20, ChaCha20-Poly1305, SHA-256, Noise NN' ||
		scr_fail "the load line does not report the self-tests"
}

test_sysctl_defaults_to_1_in_every_netns() {
	local ns
	scr_load || return
	ns=$(scr_netns_add default)
	[[ $(read_value "$SYSCTL") == 1 ]] || scr_fail "init_net: enabled is $(read_value "$SYSCTL"), want 1" || return
	[[ $(read_value "$SYSCTL" "$ns") == 1 ]] || scr_fail "new netns: enabled is not 1" || return
}

# A fresh load offers the hardened mode, opportunistically, in the initial
# namespace and in a namespace made after it.
test_mode_defaults_to_hardened() {
	local ns where dir=/proc/sys/net/mptcp_scramble
	{ scr_unload && insmod "$SCR_MODULE"; } || scr_fail "cannot reload the module" || return
	ns=$(scr_netns_add mode)
	# "" is the initial namespace
	for where in "" "$ns"; do
		[[ $(read_value "$dir/mode" "$where") == hardened ]] ||
			scr_fail "${where:-init_net}: mode is $(read_value "$dir/mode" "$where"), want hardened" || return
		[[ $(read_value "$dir/policy" "$where") == opportunistic ]] ||
			scr_fail "${where:-init_net}: policy is $(read_value "$dir/policy" "$where"), want opportunistic" || return
	done
}

test_sysctl_is_per_netns() {
	local a b
	scr_load || return
	a=$(scr_netns_add pera)
	b=$(scr_netns_add perb)
	write_once "$SYSCTL" 0 "$a" || scr_fail "writing 0 in $a failed" || return
	[[ $(read_value "$SYSCTL" "$a") == 0 ]] || scr_fail "$a: 0 did not stick" || return
	[[ $(read_value "$SYSCTL" "$b") == 1 ]] || scr_fail "$b changed with $a" || return
	[[ $(read_value "$SYSCTL") == 1 ]] || scr_fail "init_net changed with $a" || return
	write_once "$SYSCTL" 1 "$a" || scr_fail "writing 1 in $a failed" || return
	write_once "$SYSCTL" 0 "$b" || return
	[[ $(read_value "$SYSCTL" "$a") == 1 && $(read_value "$SYSCTL" "$b") == 0 ]] ||
		scr_fail "values crossed between namespaces"
}

test_sysctl_rejects_bad_writes() {
	local ns before value garbage
	scr_load || return
	ns=$(scr_netns_add reject)
	garbage=$(head -c 4096 /dev/zero | tr '\0' 'z')
	for before in 0 1; do
		write_once "$SYSCTL" "$before" "$ns" || return
		for value in 2 -1 abc $'\n' "$garbage" "1x" "0 1"; do
			if write_once "$SYSCTL" "$value" "$ns"; then
				scr_fail "write of '${value:0:16}' (${#value} bytes) accepted" || return
			fi
			[[ $(read_value "$SYSCTL" "$ns") == "$before" ]] ||
				scr_fail "write of '${value:0:16}' changed $before to $(read_value "$SYSCTL" "$ns")" || return
		done
		# A write(2) of zero bytes is refused too.
		if ip netns exec "$ns" python3 -c 'import os, sys; os.write(os.open(sys.argv[1], os.O_WRONLY), b"")' "$SYSCTL" 2>/dev/null; then
			scr_fail "zero-byte write accepted" || return
		fi
		[[ $(read_value "$SYSCTL" "$ns") == "$before" ]] || scr_fail "zero-byte write changed the value" || return
	done
}

test_proc_lists_every_counter() {
	local ns name lines
	scr_load || return
	ns=$(scr_netns_add proc)
	for name in "${SCR_COUNTERS[@]}"; do
		[[ $(scr_counter "$name") =~ ^[0-9]+$ ]] || scr_fail "init_net: counter $name missing or not a number" || return
		[[ $(scr_counter "$ns" "$name") == 0 ]] || scr_fail "new netns: counter $name is not 0" || return
	done
	lines=$(wc -l < /proc/net/mptcp_scramble)
	scr_diag "$(tr '\n' ' ' < /proc/net/mptcp_scramble)"
	((lines == ${#SCR_COUNTERS[@]})) || scr_fail "/proc/net/mptcp_scramble has $lines lines, want ${#SCR_COUNTERS[@]}"
}

test_bench_sysctl_logs_throughput() {
	local line lines
	scr_load || return
	if write_once /proc/sys/net/mptcp_scramble/bench 2; then
		scr_fail "bench accepted 2"
		return
	fi
	scr_mark_dmesg
	write_once /proc/sys/net/mptcp_scramble/bench 1 || scr_fail "bench run failed" || return
	lines=$(scr_dmesg_since_mark | grep 'mptcp_scramble: bench:') || scr_fail "no bench line logged" || return
	while IFS= read -r line; do scr_diag "${line#*] }"; done <<< "$lines"
	# The hardened mode's keypair pool was filled at load (nothing takes
	# from it here).
	[[ $lines == *"keypairs ready 64/64, taken valid"* ]] ||
		scr_fail "the keypair pool is not full, or its keypair is wrong" || return
	[[ $lines =~ "two passes paper "[0-9]+" hardened "[0-9]+", one pass ("[0-9]+" KiB blocks) paper "[0-9]+" hardened "[0-9]+ ]] ||
		scr_fail "no rx copy figures" || return
	# The kprobe timing: its handler ran for every timed call, and the
	# test kernels put an entry kprobe on ftrace, as distro kernels do.
	[[ $lines == *"every call hit"* ]] || scr_fail "the benchmark's kprobe missed calls" || return
	[[ $lines =~ "ns added per call: ftrace "-?[0-9]+", int3 trap "(-?[0-9]+|n/a)", optimized "(-?[0-9]+|n/a) ]] ||
		scr_fail "no kprobe figures, or no ftrace-based kprobe"
}

scr_ktap_header
scr_ktap_plan 9
scr_run hooks_in_kallsyms test_hooks_in_kallsyms
scr_run load_unload_20_times test_load_unload_20_times
scr_run load_logs_a_line test_load_logs_a_line
scr_run sysctl_defaults_to_1_in_every_netns test_sysctl_defaults_to_1_in_every_netns
scr_run mode_defaults_to_hardened test_mode_defaults_to_hardened
scr_run sysctl_is_per_netns test_sysctl_is_per_netns
scr_run sysctl_rejects_bad_writes test_sysctl_rejects_bad_writes
scr_run proc_lists_every_counter test_proc_lists_every_counter
scr_run bench_sysctl_logs_throughput test_bench_sysctl_logs_throughput
scr_unload
scr_finish
