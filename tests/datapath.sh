#!/usr/bin/env bash
# The scrambled MPTCP data path, end to end: real MPTCP connections over
# several subflows between two namespaces, with the module loaded and
# enabled at both ends.  Every transfer is checked byte for byte by
# mptcp-traffic (SHA-256 and the expected pattern at both ends); the wire
# is checked by capturing path 2; the counters and the module's use count
# are checked against what was moved.
source "$(dirname "$0")/lib.sh"

MB=$((1024 * 1024))

scr_require_root
scr_require_cmd ip tc tcpdump nstat insmod rmmod python3 mptcp-traffic mptcp-eavesdrop
scr_require_module_file

# expect_multipath NAME JOINS_BEFORE: the transfer used more than one
# subflow.
expect_multipath() {
	local now
	now=$(scr_joins)
	((now > $2)) || scr_fail "$1: no MP_JOIN subflow was established"
}

refcount_is_zero() {
	(($(scr_refcount) == 0))
}

# established_on PORT: the server has an established connection on PORT.
established_on() {
	[[ -n $(ip netns exec "$SCR_SRV" ss -Htn state established "( sport = :$1 )") ]]
}

# pattern_on_wire PCAP: whether the plaintext pattern shows in the capture.
pattern_on_wire() {
	grep -aqc 0123456789012345678901234567890123456789 "$1"
}

test_ipv4_two_paths_intact_and_counted() {
	local joins c0 s0 c1 s1 copies bytes=$((4 * MB))
	joins=$(scr_joins)
	c0=$(scr_counter "$SCR_CLI" bytes_scrambled)
	s0=$(scr_counter "$SCR_SRV" bytes_descrambled)
	copies=$(scr_counter "$SCR_SRV" rx_copies)
	scr_shape 200mbit
	scr_transfer v4 10.0.1.2:4000 --bytes "$bytes" --pattern digits || return
	scr_shape off
	expect_multipath v4 "$joins" || return
	c1=$(scr_counter "$SCR_CLI" bytes_scrambled)
	s1=$(scr_counter "$SCR_SRV" bytes_descrambled)
	((c1 - c0 == bytes)) || scr_fail "client scrambled $((c1 - c0)) bytes, sent $bytes" || return
	((s1 - s0 == bytes)) || scr_fail "server descrambled $((s1 - s0)) bytes, received $bytes" || return
	# over veth the server's skbs hold the client's send-queue pages: the
	# rx hook must have copied them as it descrambled them
	(($(scr_counter "$SCR_SRV" rx_copies) > copies)) || scr_fail "server copied no received skb" || return
}

test_ipv6_two_paths_intact() {
	local joins
	joins=$(scr_joins)
	scr_shape 200mbit
	scr_transfer v6 '[dead:1::2]:4000' --bytes $((4 * MB)) --pattern random || return
	scr_shape off
	expect_multipath v6 "$joins"
}

test_both_directions_intact_and_counted() {
	local c0 s0 bytes=$((1 * MB))
	c0=$(scr_counter "$SCR_CLI" bytes_descrambled)
	s0=$(scr_counter "$SCR_SRV" bytes_scrambled)
	scr_transfer both 10.0.1.2:4000 --bytes "$bytes" --direction both --pattern text || return
	(($(scr_counter "$SCR_CLI" bytes_descrambled) - c0 == bytes)) || scr_fail "client descrambled a wrong count" || return
	(($(scr_counter "$SCR_SRV" bytes_scrambled) - s0 == bytes)) || scr_fail "server scrambled a wrong count" || return
}

test_send_modes_intact() {
	local mode
	for mode in blocking nonblocking small large mmap-ro mmap-shared sendfile splice; do
		scr_transfer "send-$mode" 10.0.1.2:4000 --bytes $((2 * MB)) --send-mode "$mode" --pattern random ||
			scr_fail "send mode $mode" || return
	done
}

test_recv_modes_intact() {
	local mode
	for mode in read peek trunc waitall; do
		scr_transfer "recv-$mode" 10.0.1.2:4000 --recv-mode "$mode" --bytes $((2 * MB)) --pattern random ||
			scr_fail "receive mode $mode" || return
	done
}

test_four_subflows_intact() {
	local joins
	scr_cleanup
	scr_topology 4
	joins=$(scr_joins)
	scr_shape 200mbit
	scr_transfer four 10.0.1.2:4000 --bytes $((8 * MB)) --pattern random || return
	(($(scr_joins) - joins >= 3)) || scr_fail "want 3 MP_JOIN subflows, got $(($(scr_joins) - joins))" || return
	scr_cleanup
	scr_topology 2
}

test_netem_delay_loss_reorder_intact() {
	ip netns exec "$SCR_CLI" tc qdisc add dev c2 root netem delay 5ms 2ms loss 2% reorder 25% 50%
	ip netns exec "$SCR_SRV" tc qdisc add dev s2 root netem delay 5ms loss 1%
	scr_transfer netem 10.0.1.2:4000 --bytes $((4 * MB)) --direction both --pattern random
	local rc=$?
	ip netns exec "$SCR_CLI" tc qdisc del dev c2 root
	ip netns exec "$SCR_SRV" tc qdisc del dev s2 root
	return "$rc"
}

# mid_transfer JOINS BYTES: a subflow joined since the server's join
# count was JOINS, and the server has descrambled BYTES.
mid_transfer() {
	(($(scr_joins) > $1)) && scr_counter_ge "$SCR_SRV" bytes_descrambled "$2"
}

test_path_down_mid_transfer_reinjects_intact() {
	local rc=0 joins r0 down
	joins=$(scr_joins)
	r0=$(scr_counter "$SCR_SRV" bytes_descrambled)
	# Slow both paths so the transfer is still running when path 2 fails:
	# once its subflow is up and a quarter of the stream is in.
	ip netns exec "$SCR_CLI" tc qdisc add dev c1 root netem rate 40mbit
	ip netns exec "$SCR_CLI" tc qdisc add dev c2 root netem rate 40mbit
	(
		scr_wait_for mid_transfer "$joins" $((r0 + 3 * MB))
		ip -n "$SCR_CLI" link set c2 down
		ip -n "$SCR_SRV" link set s2 down
	) &
	down=$!
	scr_transfer pathdown 10.0.1.2:4000 --bytes $((12 * MB)) --pattern random || rc=$?
	wait "$down"
	ip -n "$SCR_CLI" link set c2 up
	ip -n "$SCR_SRV" link set s2 up
	ip netns exec "$SCR_CLI" tc qdisc del dev c1 root
	ip netns exec "$SCR_CLI" tc qdisc del dev c2 root
	# IPv6 addresses go with the link; put them back.
	ip -n "$SCR_CLI" addr add dead:2::1/64 dev c2 nodad 2>/dev/null
	ip -n "$SCR_SRV" addr add dead:2::2/64 dev s2 nodad 2>/dev/null
	return "$rc"
}

# In the hardened mode the fifty handshakes take up to a hundred ephemeral
# keypairs at once, more than the pool holds: the handlers make the rest
# themselves (keypool_inline) and none may find the pool empty.
test_fifty_concurrent_connections_intact() {
	local s0 ns empty=() inline=()
	s0=$(scr_counter "$SCR_SRV" connections_scrambled)
	for ns in "$SCR_CLI" "$SCR_SRV"; do
		empty+=("$(scr_counter "$ns" keypool_empty)")
		inline+=("$(scr_counter "$ns" keypool_inline)")
	done
	scr_transfer fifty 10.0.1.2:4000 --bytes $((256 * 1024)) --pattern random ::server --count 50 ::client --parallel 50 || return
	(($(scr_counter "$SCR_SRV" connections_scrambled) - s0 == 50)) ||
		scr_fail "server latched $(($(scr_counter "$SCR_SRV" connections_scrambled) - s0)) of 50 connections scrambled" || return
	[[ ${SCR_MODE:-} == hardened ]] || return 0
	scr_diag "keypairs made inline: client $(($(scr_counter "$SCR_CLI" keypool_inline) - inline[0])), server $(($(scr_counter "$SCR_SRV" keypool_inline) - inline[1]))"
	(($(scr_counter "$SCR_CLI" keypool_empty) == empty[0] && $(scr_counter "$SCR_SRV" keypool_empty) == empty[1])) ||
		scr_fail "a handshake found the key pool empty"
}

# The paths are slow enough (5 Mbit/s) that the sender fills both even
# when the CPU is slow: under TCG on the debug kernel the hardened mode's
# keystream runs at about 12 MB/s, and the second path carried 0.1% of
# the stream with paths of 50 Mbit/s (the first was never full, so the
# scheduler left the second idle) and 1.9% with 10 Mbit/s.
test_wire_shows_pattern_only_when_off() {
	local cov
	scr_shape 5mbit
	scr_capture "$SCR_CLI" c2 wire-on
	scr_transfer wire-on 10.0.1.2:4000 --bytes $((4 * MB)) --pattern digits ::client --wait-subflows 1
	scr_capture_stop
	scr_set_enabled 0
	scr_capture "$SCR_CLI" c2 wire-off
	scr_transfer wire-off 10.0.1.2:4000 --bytes $((4 * MB)) --pattern digits ::client --wait-subflows 1
	scr_capture_stop
	scr_set_enabled 1
	scr_shape off
	for run in wire-on wire-off; do
		cov=$(mptcp-eavesdrop analyze "$SCR_TMP/$run.pcap" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["coverage_fraction"])') ||
			scr_fail "$run: cannot analyse the capture" || return
		scr_diag "$run: path 2 carried $(python3 -c "print(round(100 * $cov, 1))")% of the stream"
		# Enough to find a 40-byte pattern run: 0.5% of 4 MiB is 21 KB.  The
		# client sends the bulk only once the join is up (--wait-subflows).
		python3 -c "import sys; sys.exit(not $cov > 0.005)" || scr_fail "$run: path 2 carried no data" || return
	done
	pattern_on_wire "$SCR_TMP/wire-off.pcap" || scr_fail "plain run: the pattern is not on the wire (the check is blind)" || return
	if pattern_on_wire "$SCR_TMP/wire-on.pcap"; then
		scr_fail "scrambled run: plaintext pattern found on path 2"
	fi
}

test_toggle_affects_only_new_connections() {
	local s0 p0 a rc=0
	s0=$(scr_counter "$SCR_SRV" connections_scrambled)
	p0=$(scr_counter "$SCR_SRV" connections_plain)
	# A: latched scrambled, a request/response exchange for 8 s while
	# the sysctl flips.
	scr_transfer toggle-a 10.0.1.2:4001 --rr 64 --duration 8 --pattern random &
	a=$!
	scr_wait_for scr_counter_ge "$SCR_SRV" connections_live 1 || { scr_fail "A never went live"; rc=1; }
	scr_set_enabled 0
	# B: established after the flip, plain.
	scr_transfer toggle-b 10.0.1.2:4002 --bytes $((1 * MB)) --pattern random || rc=$?
	wait "$a" || rc=$?
	scr_set_enabled 1
	((rc == 0)) || scr_fail "a transfer broke across the toggle" || return
	(($(scr_counter "$SCR_SRV" connections_scrambled) - s0 == 1)) || scr_fail "want exactly A scrambled" || return
	(($(scr_counter "$SCR_SRV" connections_plain) - p0 == 1)) || scr_fail "want exactly B plain" || return
}

test_connection_from_before_insmod_stays_plain() {
	local rc=0 t
	scr_unload || return
	scr_transfer preload 10.0.1.2:4003 --rr 64 --duration 8 --pattern random &
	t=$!
	scr_wait_for established_on 4003 || rc=1
	scr_load || rc=1
	wait "$t" || rc=$?
	((rc == 0)) || scr_fail "exchange across insmod broken" || return
	(($(scr_counter "$SCR_SRV" connections_scrambled) == 0)) || scr_fail "pre-insmod connection was latched scrambled" || return
	(($(scr_counter "$SCR_SRV" bytes_descrambled) == 0)) || scr_fail "bytes of a pre-insmod connection were descrambled"
}

test_rmmod_refused_while_scrambled_connection_lives() {
	local rc=0 t refcnt
	scr_transfer pinned 10.0.1.2:4004 --rr 64 --duration 8 --pattern random &
	t=$!
	scr_wait_for scr_counter_ge "$SCR_SRV" connections_live 1 || { scr_fail "no live scrambled connection"; rc=1; }
	refcnt=$(scr_refcount)
	if rmmod mptcp_scramble 2>/dev/null; then
		scr_fail "rmmod succeeded with a scrambled connection alive"
		wait "$t"
		scr_load
		return 1
	fi
	((refcnt == 2)) || { scr_fail "refcnt $refcnt, want 2 (one per end)"; rc=1; }
	wait "$t" || { scr_fail "exchange broken"; rc=1; }
	scr_wait_for refcount_is_zero || { scr_fail "refcnt stuck at $(scr_refcount) after close"; rc=1; }
	rmmod mptcp_scramble || { scr_fail "rmmod refused after the connection closed"; rc=1; }
	scr_load
	return "$rc"
}

test_plain_tcp_untouched() {
	local c0 s0
	c0=$(scr_counter "$SCR_CLI" connections_scrambled)
	s0=$(scr_counter "$SCR_CLI" bytes_scrambled)
	scr_capture "$SCR_CLI" c1 tcp
	scr_transfer tcp 10.0.1.2:4000 --tcp --bytes $((1 * MB)) --pattern digits || return
	scr_capture_stop
	(($(scr_counter "$SCR_CLI" connections_scrambled) == c0 && $(scr_counter "$SCR_CLI" bytes_scrambled) == s0)) ||
		scr_fail "plain TCP touched the counters" || return
	pattern_on_wire "$SCR_TMP/tcp.pcap" || scr_fail "plain TCP payload not plain on the wire"
}

test_fallback_to_tcp_untouched() {
	local s0 c0
	c0=$(scr_counter "$SCR_CLI" connections_scrambled)
	s0=$(scr_counter "$SCR_SRV" connections_scrambled)
	# An MPTCP client to a TCP server, a TCP client to an MPTCP server.
	scr_transfer fallback1 10.0.1.2:4000 --bytes $((1 * MB)) --pattern random ::server --tcp || return
	scr_transfer fallback2 10.0.1.2:4000 --bytes $((1 * MB)) --pattern random ::client --tcp || return
	(($(scr_counter "$SCR_CLI" connections_scrambled) == c0 && $(scr_counter "$SCR_SRV" connections_scrambled) == s0)) ||
		scr_fail "a fallback connection was latched scrambled"
}

# pcap_syn_with_data PCAP: count SYNs that carry payload.
pcap_syn_with_data() {
	tcpdump -nn -r "$1" 'tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0' 2>/dev/null |
		grep -c 'length [1-9]'
}

test_fastopen_keeps_data_out_of_syn() {
	local t0 run
	ip netns exec "$SCR_CLI" sysctl -qw net.ipv4.tcp_fastopen=3
	ip netns exec "$SCR_SRV" sysctl -qw net.ipv4.tcp_fastopen=3
	# Warm up with scrambling off: the client caches a TFO cookie, so
	# every later MSG_FASTOPEN could put data in its SYN.
	scr_set_enabled 0
	scr_transfer tfo-warmup 10.0.1.2:4005 --bytes 4096 --pattern digits --fastopen || return
	t0=$(scr_counter "$SCR_CLI" tfo_syn_data_refused)
	for run in tfo-on tfo-off; do
		scr_set_enabled "$([[ $run == tfo-on ]] && echo 1 || echo 0)"
		scr_capture "$SCR_CLI" c1 "$run"
		scr_transfer "$run-1" 10.0.1.2:4005 --bytes 4096 --pattern digits --fastopen || return
		scr_transfer "$run-2" 10.0.1.2:4005 --bytes 4096 --pattern digits --fastopen || return
		scr_capture_stop
	done
	scr_set_enabled 1
	(($(pcap_syn_with_data "$SCR_TMP/tfo-off.pcap") > 0)) ||
		scr_fail "plain run: no SYN carried data (TFO not exercised, the check is blind)" || return
	(($(pcap_syn_with_data "$SCR_TMP/tfo-on.pcap") == 0)) || scr_fail "scrambled run: a SYN carried data" || return
	(($(scr_counter "$SCR_CLI" tfo_syn_data_refused) - t0 == 2)) ||
		scr_fail "tfo_syn_data_refused counted $(($(scr_counter "$SCR_CLI" tfo_syn_data_refused) - t0)), want 2"
}

# reported NAME: both ends of the running transfer NAME have printed their
# connection's report, whole.
reported() {
	local end
	for end in server client; do
		grep -q '"type":"connection"' "$SCR_TMP/$1.$end.json" || return
		scr_conn_json "$SCR_TMP/$1.$end.json" type > /dev/null || return
	done
}

# ended_with NAME.END ERRNO...: the connection of that end of transfer NAME
# ended with one of the errors ERRNO (their errno.h names).
ended_with() {
	local got e
	got=$(scr_conn_errno "$SCR_TMP/$1.json")
	for e in "${@:2}"; do
		[[ $got == "$e" ]] && return 0
	done
	scr_fail "${1#*.} error $got, want ${*:2}"
}

# unhandled: MPTcpExtScrambleUnhandled, both ends together.
unhandled() {
	echo $(($(scr_mib "$SCR_CLI" MPTcpExtScrambleUnhandled) + $(scr_mib "$SCR_SRV" MPTcpExtScrambleUnhandled)))
}

# kprobes_intact NAME PORT PARAM OPTIMIZE KIND: reload the module with
# kprobes_on_ftrace=PARAM and kprobe optimization OPTIMIZE (0 or 1), wait
# until every hook's kprobe is of KIND, then a scrambled transfer in both
# directions must arrive intact, with no warning in the log (scr_run
# checks it).  The module is reloaded as before at the end.
kprobes_intact() {
	local opt=/proc/sys/debug/kprobes-optimization rc=0 c0
	[[ -w $opt ]] || { scr_fail "$opt missing (CONFIG_OPTPROBES)"; return 1; }
	scr_wait_for refcount_is_zero || { scr_fail "a scrambled connection still lives"; return 1; }
	scr_unload || return
	echo "$4" > "$opt"
	scr_load kprobes_on_ftrace="$3" || { scr_fail "cannot load with kprobes_on_ftrace=$3"; rc=1; }
	if ((rc == 0)) && ! scr_wait_for -t 30 scr_kprobes_all "$5"; then
		scr_fail "want every hook's kprobe $5, have: $(scr_kprobe_kinds | tr '\n' ' ')"
		rc=1
	fi
	((rc == 0)) && scr_diag "$1: kprobes_on_ftrace=$3, optimization $4: $(grep -c 'mptcp_scramble_hook_.*+0x[1-9a-f]' /sys/kernel/debug/kprobes/list) hooks probed past the call site, all $5"
	c0=$(scr_counter "$SCR_CLI" connections_scrambled)
	((rc == 0)) && { scr_transfer "$1" "10.0.1.2:$2" --bytes $((2 * MB)) --direction both --pattern random || rc=1; }
	((rc == 0)) && { (($(scr_counter "$SCR_CLI" connections_scrambled) > c0)) || { scr_fail "the connection was not scrambled"; rc=1; }; }
	echo 1 > "$opt"
	scr_wait_for refcount_is_zero
	scr_unload && scr_load || { scr_fail "cannot reload the module"; rc=1; }
	return "$rc"
}

# The test kernels place kprobes as a distro kernel does: a kprobe on a
# function's entry runs from its ftrace call site.  Every other case of
# this file runs on those.
test_kprobes_on_ftrace_by_default() {
	local param=/sys/module/mptcp_scramble/parameters/kprobes_on_ftrace
	[[ $(cat "$param" 2>/dev/null) == Y ]] || scr_fail "$param: $(cat "$param" 2>&1)" || return
	scr_kprobes_all ftrace || scr_fail "want every hook's kprobe on ftrace, have: $(scr_kprobe_kinds | tr '\n' ' ')"
}

# With kprobes_on_ftrace=0 and kprobe optimization off, every hook's
# kprobe is an int3 trap and its handler runs NMI-like (in_nmi()): no FPU,
# no SIMD, no allocation, no random bytes.  That is also how each hook
# runs between the module's load and the optimizer's pass on a kernel
# without ftrace.  The x86 SIMD ChaCha20 would warn in NMI context.
test_trapped_kprobes_intact() {
	kprobes_intact trapped 4008 0 0 trapped
}

# With kprobes_on_ftrace=0 and optimization on, the optimizer turns every
# hook's kprobe into a jump: the handler runs in the hook's context.
test_optimized_kprobes_intact() {
	kprobes_intact optimized 4009 0 1 optimized
}

test_disarmed_kprobes_reset_instead_of_corrupting() {
	local k=/sys/kernel/debug/kprobes/enabled done=$SCR_TMP/disarm.done srv=$SCR_TMP/disarm.server.json t rc=0 u0 d0
	[[ -e $k ]] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	[[ -w $k ]] || { scr_fail "$k missing (CONFIG_DEBUG_FS, CONFIG_KPROBES)"; return 1; }
	u0=$(unhandled)
	d0=$(scr_counter "$SCR_SRV" bytes_descrambled)
	scr_shape 50mbit
	# "0123456789" until the connection fails; then each end reports, and
	# keeps its socket until $done exists: the connection is destroyed only
	# then.
	# Disarming or re-arming ftrace-based kprobes rewrites ftrace call
	# sites, which takes tens of seconds on the debug kernel under TCG: each
	# end holds its socket up to 120 s for $done.  A socket closed while the
	# kprobes are still disarmed would leak the module reference its destroy
	# hook gives back.
	rm -f "$done"
	scr_transfer disarm 10.0.1.2:4006 --until-error --pattern digits --timeout 120 --hold-until "$done" &
	t=$!
	# The stream flows scrambled; then every kprobe is disarmed.
	scr_wait_for scr_counter_ge "$SCR_SRV" bytes_descrambled $((d0 + 2 * MB)) ||
		{ scr_fail "no scrambled data flowed"; rc=1; }
	echo 0 > "$k"
	scr_wait_for reported disarm ||
		{ scr_fail "the connection did not fail within 10 s of disarming"; rc=1; }
	echo 1 > "$k"
	touch "$done"
	wait "$t"
	scr_shape off
	((rc == 0)) || return 1
	# (scr_transfer has shown how each end's connection ended.)
	[[ $(scr_conn_json "$srv" mismatch) == None ]] ||
		{ scr_fail "the server received bytes that were not the plaintext: $(scr_conn_json "$srv" mismatch)"; rc=1; }
	ended_with disarm.client ECONNABORTED ECONNRESET EPIPE || rc=1
	ended_with disarm.server ECONNABORTED ECONNRESET || rc=1
	(($(unhandled) > u0)) || { scr_fail "MPTcpExtScrambleUnhandled did not count"; rc=1; }
	scr_wait_for refcount_is_zero || { scr_fail "refcnt stuck at $(scr_refcount) after close"; rc=1; }
	# Armed again, scrambled connections work as before.
	scr_transfer rearmed 10.0.1.2:4007 --bytes 1M --pattern digits || rc=1
	return "$rc"
}

scr_load || scr_skip_all "cannot load $SCR_MODULE"
scr_topology 2

scr_ktap_header
scr_ktap_plan 20
scr_diag "mode: $(ip netns exec "$SCR_CLI" cat /proc/sys/net/mptcp_scramble/mode) at both ends"
scr_run ipv4_two_paths_intact_and_counted test_ipv4_two_paths_intact_and_counted
scr_run ipv6_two_paths_intact test_ipv6_two_paths_intact
scr_run both_directions_intact_and_counted test_both_directions_intact_and_counted
scr_run send_modes_intact test_send_modes_intact
scr_run recv_modes_intact test_recv_modes_intact
scr_run four_subflows_intact test_four_subflows_intact
scr_run netem_delay_loss_reorder_intact test_netem_delay_loss_reorder_intact
scr_run path_down_mid_transfer_reinjects_intact test_path_down_mid_transfer_reinjects_intact
scr_run fifty_concurrent_connections_intact test_fifty_concurrent_connections_intact
scr_run wire_shows_pattern_only_when_off test_wire_shows_pattern_only_when_off
scr_run toggle_affects_only_new_connections test_toggle_affects_only_new_connections
scr_run plain_tcp_untouched test_plain_tcp_untouched
scr_run fallback_to_tcp_untouched test_fallback_to_tcp_untouched
scr_run fastopen_keeps_data_out_of_syn test_fastopen_keeps_data_out_of_syn
scr_run rmmod_refused_while_scrambled_connection_lives test_rmmod_refused_while_scrambled_connection_lives
scr_run connection_from_before_insmod_stays_plain test_connection_from_before_insmod_stays_plain
scr_run kprobes_on_ftrace_by_default test_kprobes_on_ftrace_by_default
scr_run trapped_kprobes_intact test_trapped_kprobes_intact
scr_run optimized_kprobes_intact test_optimized_kprobes_intact
scr_run disarmed_kprobes_reset_instead_of_corrupting test_disarmed_kprobes_reset_instead_of_corrupting
scr_unload
scr_finish
