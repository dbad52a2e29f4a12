#!/usr/bin/env bash
# Interoperability with an unpatched Linux 6.12.  This VM (A: the patched
# kernel, the module loaded) and a peer VM (B: the stock kernel, no patch,
# no module) are joined by two paths; scripts/vm-pair boots them:
#
#   scripts/vm-pair -- tests/run interop.sh
#
# B runs what this file asks through $SCR_PEER (the peer protocol of
# scripts/vm-pair: peer, peer_start, peer_wait below).  Every transfer is
# checked byte for byte by mptcp-traffic at both ends; MPTCP uses two
# subflows (a "subflow" endpoint on the client's path-2 address).
#
# The cases: A opportunistic talks plain MPTCP to B as client and as
# server and counts peer_no_offer; A with policy=required refuses B as
# client and as server (ECONNREFUSED, nothing accepted, counted in
# `refused` and MPTcpExtScrambleRefused); a capture on A's path 1 shows
# A's SYN carrying the scramble offer (MPTCP option kind 30, length 4,
# bytes 1e 04 f1 01: subtype 0xf, version 1, mode 1 = paper) and neither
# B's packets nor A's SYN-ACK to B's offerless SYN carrying one.
#
# SCR_INTEROP_PLUMBING=1 checks the harness alone, with a module that
# predates negotiation: A runs with enabled=0, only the plain transfers
# (intact, two subflows) and B's offerless handshakes are checked, and the
# assertions marked "needs negotiation" below are left out (said in a
# diagnostic line); the two refusal cases are not run.
source "$(dirname "$0")/lib.sh"

SYSCTLS=/proc/sys/net/mptcp_scramble
PLUMBING=${SCR_INTEROP_PLUMBING:-0}
# The offer of mode paper, version 1, as it appears on the wire.
OFFER_HEX=1e04f101

scr_require_root
scr_require_cmd ip nstat tcpdump insmod python3 mptcp-traffic
scr_require_module_file
[[ -n ${SCR_PEER:-} && -d ${SCR_PEER:-} && -n ${SCR_PAIR_DEV1:-} && -n ${SCR_PAIR_DEV2:-} ]] ||
	scr_skip_all "no peer VM: run it as scripts/vm-pair -- tests/run interop.sh"

# --- The peer: run commands in VM B -------------------------------------

# peer_start ID CMD [ARG...]: start CMD in B (ID unique in this run).
peer_start() {
	local id=$1
	shift
	printf '%q ' "$@" > "$SCR_PEER/$id.cmd.tmp"
	mv "$SCR_PEER/$id.cmd.tmp" "$SCR_PEER/$id.cmd"
}

peer_done() {
	[[ -e $SCR_PEER/$1.rc || -e $SCR_PEER/b-gone ]]
}

# peer_wait ID [SECS]: wait (60 s by default) for request ID to end;
# return its exit status (124 if it did not end in time, 125 if VM B is
# gone).
peer_wait() {
	local id=$1 secs=${2:-60}
	if ! scr_wait_for -t "$secs" peer_done "$id"; then
		scr_diag "peer: '$(cat "$SCR_PEER/$id.cmd")' did not end within $secs s"
		return 124
	fi
	if [[ ! -e $SCR_PEER/$id.rc ]]; then
		scr_diag "peer: VM B is gone"
		return 125
	fi
	return "$(cat "$SCR_PEER/$id.rc")"
}

# peer CMD [ARG...]: run CMD in B, print its output (stdout and stderr),
# return its exit status.
peer() {
	local id rc=0
	id=q${EPOCHREALTIME/./}$RANDOM
	peer_start "$id" "$@"
	peer_wait "$id" || rc=$?
	cat "$SCR_PEER/$id.out" 2>/dev/null
	return "$rc"
}

# mib NAME, peer_mib NAME: an MPTCP or TCP MIB counter (as nstat names
# it) of A's or B's namespace; empty if the kernel has no such counter.
# shellcheck disable=SC2016 # awk's $1 and $2
mib() {
	nstat -asz "$1" | awk -v m="$1" '$1 == m { print $2 }'
}

# shellcheck disable=SC2016 # awk's $1 and $2
peer_mib() {
	peer nstat -asz "$1" | awk -v m="$1" '$1 == m { print $2 }'
}

# --- A's settings and MPTCP endpoints -----------------------------------

# set_policy MODE POLICY: enabled=1 with this mode and policy on A (in
# plumbing mode enabled=0, and mode and policy are not written).
set_policy() {
	if ((PLUMBING)); then
		echo 0 > "$SYSCTLS/enabled" || scr_fail "cannot write enabled=0"
		return
	fi
	# Needs negotiation: the mode and policy sysctls.
	if ! { echo 1 > "$SYSCTLS/enabled" && echo "$1" > "$SYSCTLS/mode" && echo "$2" > "$SYSCTLS/policy"; }; then
		scr_fail "cannot set enabled=1 mode=$1 policy=$2 (a module without negotiation?)"
	fi
}

# client_endpoint a|b: only the client (A or B) has an MPTCP "subflow"
# endpoint, on its path-2 address, for a second subflow over path 2.
client_endpoint() {
	ip mptcp endpoint flush
	peer ip mptcp endpoint flush || return
	if [[ $1 == a ]]; then
		ip mptcp endpoint add "$SCR_PAIR_ADDR2" dev "$SCR_PAIR_DEV2" subflow
	else
		# shellcheck disable=SC2016 # expanded in B
		peer bash -c 'ip mptcp endpoint add "$SCR_PAIR_ADDR2" dev "$SCR_PAIR_DEV2" subflow'
	fi
}

# counter NAME: A's /proc/net/mptcp_scramble counter NAME, or fail saying
# that it is missing.
counter() {
	scr_counter "$1" || { scr_diag "no counter $1 in /proc/net/mptcp_scramble (a module without negotiation?)"; return 1; }
}

# grew_by NAME BEFORE NOW WANT: a counter grew by WANT; say it if not.
grew_by() {
	(($3 - $2 == $4)) || scr_fail "$1 grew by $(($3 - $2)), want $4"
}

# --- Transfers between A and B -----------------------------------------
# Each end's JSON report and log: $SRV.json, $SRV.log, $CLI.json, $CLI.log;
# their exit statuses SRV_RC and CLI_RC.  Options as scr_transfer's: the
# leading ones go to both ends, then `::server OPT...`, `::client OPT...`.
SRV=
CLI=
SRV_RC=0
CLI_RC=0

# transfer_a_to_b NAME PORT OPT...: client in A, server in B on its path-1
# address.
transfer_a_to_b() {
	local name=$1 port=$2 common=() srv_opts=() cli_opts=()
	shift 2
	scr_split_opts "$@"
	SRV=$SCR_PEER/$name.server
	CLI=$SCR_TMP/$name.client
	SRV_RC=0 CLI_RC=0
	rm -f "$SRV.ready"
	# shellcheck disable=SC2016 # expanded in B
	peer_start "$name.server" bash -c 'exec "$@" > "$0.json" 2> "$0.log"' "$SRV" \
		timeout 120 mptcp-traffic server --listen "$SCR_PAIR_PEER1:$port" --ready-file "$SRV.ready" --quiet \
		${common[@]+"${common[@]}"} ${srv_opts[@]+"${srv_opts[@]}"}
	if ! scr_wait_for -t 30 test -e "$SRV.ready"; then
		scr_diag "$name: B's server did not start: $(tail -n 3 "$SRV.log" 2>/dev/null)"
		peer_wait "$name.server" 130
		SRV_RC=1 CLI_RC=1
		return 1
	fi
	timeout 120 mptcp-traffic client --connect "$SCR_PAIR_PEER1:$port" --quiet \
		${common[@]+"${common[@]}"} ${cli_opts[@]+"${cli_opts[@]}"} > "$CLI.json" 2> "$CLI.log" || CLI_RC=$?
	peer_wait "$name.server" 130 || SRV_RC=$?
	show_failures "$name"
}

# transfer_b_to_a NAME PORT OPT...: client in B, server in A on its path-1
# address.
transfer_b_to_a() {
	local name=$1 port=$2 common=() srv_opts=() cli_opts=() spid
	shift 2
	scr_split_opts "$@"
	SRV=$SCR_TMP/$name.server
	CLI=$SCR_PEER/$name.client
	SRV_RC=0 CLI_RC=0
	rm -f "$SRV.ready"
	timeout 120 mptcp-traffic server --listen "$SCR_PAIR_ADDR1:$port" --ready-file "$SRV.ready" --quiet \
		${common[@]+"${common[@]}"} ${srv_opts[@]+"${srv_opts[@]}"} > "$SRV.json" 2> "$SRV.log" &
	spid=$!
	if ! scr_wait_for test -e "$SRV.ready"; then
		kill "$spid" 2>/dev/null
		scr_diag "$name: A's server did not start: $(tail -n 3 "$SRV.log")"
		SRV_RC=1 CLI_RC=1
		return 1
	fi
	# shellcheck disable=SC2016 # expanded in B
	peer_start "$name.client" bash -c 'exec "$@" > "$0.json" 2> "$0.log"' "$CLI" \
		timeout 120 mptcp-traffic client --connect "$SCR_PAIR_ADDR1:$port" --quiet \
		${common[@]+"${common[@]}"} ${cli_opts[@]+"${cli_opts[@]}"}
	peer_wait "$name.client" 130 || CLI_RC=$?
	wait "$spid" || SRV_RC=$?
	show_failures "$name"
}

# show_failures NAME: say how an end that failed ended; succeed if both
# ends passed.
show_failures() {
	((SRV_RC == 0 && CLI_RC == 0)) && return 0
	scr_diag "$1: client (exit $CLI_RC): $(tail -n 3 "$CLI.log" 2>/dev/null | tr '\n' ' ')"
	scr_diag "$1: server (exit $SRV_RC): $(tail -n 3 "$SRV.log" 2>/dev/null | tr '\n' ' ')"
	return 1
}

# report FILE: what an mptcp-traffic JSON report says, on one line (one
# python3 start, which is slow under TCG): the summary's ok, bytes and
# connections, then the first connection's mptcp, subflows, seconds and
# the name of the error that ended it (ECONNREFUSED, ...; "-" if none).
report() {
	python3 - "$1" <<'EOF'
import errno, json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
s = lines[-1]
c = next((l for l in lines if l.get("type") == "connection"), {})
err = c.get("error") or "-"
m = re.search(r"\(os error (\d+)\)", err)
if m:
    err = errno.errorcode.get(int(m.group(1)), m.group(1))
print(s.get("ok"), s.get("bytes"), s.get("connections"), c.get("mptcp"), c.get("subflows"),
      c.get("seconds"), err.replace(" ", "_"))
EOF
}

# expect_intact NAME BYTES JOINS: both ends passed (mptcp-traffic checks
# every byte against the pattern and the SHA-256 at both ends) and moved
# BYTES over MPTCP, the server having accepted JOINS MP_JOIN subflows: 1
# for two subflows.
expect_intact() {
	local name=$1 bytes=$2 joins=$3 f ok moved conns mptcp subflows secs err
	((SRV_RC == 0 && CLI_RC == 0)) || scr_fail "$name: the transfer failed" || return
	for f in "$SRV.json" "$CLI.json"; do
		read -r ok moved conns mptcp subflows secs err < <(report "$f") ||
			scr_fail "$name: cannot read ${f##*/}" || return
		[[ $ok == True && $moved == "$bytes" ]] ||
			scr_fail "$name: ${f##*/} says ok=$ok, bytes=$moved, want $bytes" || return
		[[ $mptcp == True ]] || scr_fail "$name: ${f##*/}: the connection fell back to TCP" || return
	done
	((joins == 1)) || scr_fail "$name: want 1 MP_JOIN subflow (2 subflows), the server accepted $joins" || return
	scr_diag "$name: $bytes bytes intact in $secs s, 2 subflows (client's last sample: $subflows)"
}

# --- The cases -----------------------------------------------------------

MB=$((1024 * 1024))

test_patched_client_opportunistic_to_stock_server_plain() {
	local j0 no0 sc0
	set_policy paper opportunistic || return
	client_endpoint a || return
	j0=$(peer_mib MPTcpExtMPJoinAckRx)
	if ! ((PLUMBING)); then
		no0=$(counter peer_no_offer) && sc0=$(counter connections_scrambled) || return
	fi
	transfer_a_to_b a2b 5001 --bytes $((2 * MB)) --pattern random
	expect_intact a2b $((2 * MB)) $(($(peer_mib MPTcpExtMPJoinAckRx) - j0)) || return
	if ((PLUMBING)); then
		scr_diag "plumbing: not checked (needs negotiation): peer_no_offer +1, connections_scrambled +0"
		return 0
	fi
	# Needs negotiation: B offered nothing, A went plain and counted it.
	grew_by peer_no_offer "$no0" "$(counter peer_no_offer)" 1 || return
	grew_by connections_scrambled "$sc0" "$(counter connections_scrambled)" 0
}

test_stock_client_to_patched_server_opportunistic_plain() {
	local j0 no0 sc0
	set_policy paper opportunistic || return
	client_endpoint b || return
	j0=$(mib MPTcpExtMPJoinAckRx)
	if ! ((PLUMBING)); then
		no0=$(counter peer_no_offer) && sc0=$(counter connections_scrambled) || return
	fi
	transfer_b_to_a b2a 5002 --bytes $((2 * MB)) --pattern random
	expect_intact b2a $((2 * MB)) $(($(mib MPTcpExtMPJoinAckRx) - j0)) || return
	if ((PLUMBING)); then
		scr_diag "plumbing: not checked (needs negotiation): peer_no_offer +1, connections_scrambled +0"
		return 0
	fi
	# Needs negotiation.
	grew_by peer_no_offer "$no0" "$(counter peer_no_offer)" 1 || return
	grew_by connections_scrambled "$sc0" "$(counter connections_scrambled)" 0
}

# expect_refused CLIENT_JSON SERVER_JSON: the client's connect failed with
# ECONNREFUSED and the server accepted no connection, received nothing.
# Says every assertion that fails.
expect_refused() {
	local ok bytes conns mptcp subflows secs err rc=0
	((CLI_RC != 0)) || { scr_fail "the client's transfer succeeded"; rc=1; }
	if read -r ok bytes conns mptcp subflows secs err < <(report "$1"); then
		[[ $err == ECONNREFUSED ]] || { scr_fail "the client's connection ended with $err, want ECONNREFUSED"; rc=1; }
	else
		scr_fail "cannot read ${1##*/}"
		rc=1
	fi
	if read -r ok bytes conns mptcp subflows secs err < <(report "$2"); then
		[[ $conns == 0 && $bytes == 0 ]] || { scr_fail "the server accepted $conns connections, received $bytes bytes"; rc=1; }
	else
		scr_fail "cannot read ${2##*/}"
		rc=1
	fi
	return "$rc"
}

# Needs negotiation, all of it.
test_patched_client_required_to_stock_server_refused() {
	local r0 m0 rc=0
	set_policy paper required || return
	client_endpoint a || return
	r0=$(counter refused) || return
	m0=$(mib MPTcpExtScrambleRefused)
	[[ -n $m0 ]] || scr_fail "A's kernel has no MPTcpExtScrambleRefused" || return
	# B's server gives up 5 s after listening: it must see nothing.
	transfer_a_to_b refused-a2b 5003 --bytes "$MB" ::server --timeout 5 ::client --timeout 10
	expect_refused "$CLI.json" "$SRV.json" || rc=1
	grew_by refused "$r0" "$(counter refused)" 1 || rc=1
	grew_by MPTcpExtScrambleRefused "$m0" "$(mib MPTcpExtScrambleRefused)" 1 || rc=1
	return "$rc"
}

# Needs negotiation, all of it.
test_stock_client_to_patched_server_required_refused() {
	local r0 rc=0
	set_policy paper required || return
	client_endpoint b || return
	r0=$(counter refused) || return
	# A's server gives up 5 s after listening: it must accept nothing.
	transfer_b_to_a refused-b2a 5004 --bytes "$MB" ::server --timeout 5 ::client --timeout 10
	expect_refused "$CLI.json" "$SRV.json" || rc=1
	grew_by refused "$r0" "$(counter refused)" 1 || rc=1
	return "$rc"
}

# syn_options PCAP: one line per SYN in PCAP (Ethernet, IPv4, TCP):
# "SRC_IP syn|synack mpc=0|1 offer=HEX|-", where offer is the first MPTCP
# option of subtype 0xf (MP_EXPERIMENTAL) in hex, and mpc whether it has
# MP_CAPABLE.
syn_options() {
	python3 - "$1" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
magic = data[:4]
if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
    e = "<"
elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
    e = ">"
else:
    sys.exit("not a pcap file")
if struct.unpack(e + "I", data[20:24])[0] != 1:
    sys.exit("not an Ethernet capture")
off = 24
while off + 16 <= len(data):
    incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
    pkt = data[off + 16:off + 16 + incl]
    off += 16 + incl
    if len(pkt) < 14 + 20 or pkt[12:14] != b"\x08\x00":
        continue
    ip = pkt[14:]
    ihl = (ip[0] & 0xF) * 4
    if ip[9] != 6:
        continue
    tcp = ip[ihl:]
    flags = tcp[13]
    if not flags & 0x02:
        continue
    doff = (tcp[12] >> 4) * 4
    opts = tcp[20:doff]
    mpc, offer, i = 0, "-", 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        ln = opts[i + 1]
        o = opts[i:i + ln]
        if kind == 30 and ln >= 3:
            if o[2] >> 4 == 0:
                mpc = 1
            elif o[2] >> 4 == 0xF and offer == "-":
                offer = o.hex()
        i += ln
    src = ".".join(str(b) for b in ip[12:16])
    print(src, "synack" if flags & 0x10 else "syn", "mpc=%d" % mpc, "offer=" + offer)
EOF
}

test_offer_on_the_wire_from_patched_only() {
	local pcap=$SCR_TMP/syns.pcap log=$SCR_TMP/syns.tcpdump.log cap rc=0 lines n
	set_policy paper opportunistic || return
	client_endpoint a || return
	timeout 120 tcpdump --immediate-mode -i "$SCR_PAIR_DEV1" -s 0 -U -w "$pcap" 'tcp[tcpflags] & tcp-syn != 0' 2> "$log" &
	cap=$!
	scr_wait_for grep -q "listening on" "$log" || { kill "$cap"; scr_fail "tcpdump did not start"; return; }
	transfer_a_to_b wire-a2b 5005 --bytes 64K || rc=1
	client_endpoint b || rc=1
	transfer_b_to_a wire-b2a 5006 --bytes 64K || rc=1
	kill -INT "$cap"
	wait "$cap"
	((rc == 0)) || scr_fail "a transfer failed" || return
	lines=$(syn_options "$pcap") || scr_fail "cannot read $pcap" || return
	scr_diag "SYNs on path 1 (source, kind, MP_CAPABLE, offer):"
	printf '%s\n' "$lines" | sed 's/^/#   /'
	# Both handshakes were seen, each SYN and SYN-ACK MP_CAPABLE.
	for n in "$SCR_PAIR_ADDR1 syn" "$SCR_PAIR_ADDR1 synack" "$SCR_PAIR_PEER1 syn" "$SCR_PAIR_PEER1 synack"; do
		grep -q "^$n mpc=1 " <<< "$lines" || scr_fail "no MP_CAPABLE ${n#* } from ${n%% *} captured" || return
	done
	# B never offers; A answers only an offer, and B's SYN had none.
	! grep -q "^$SCR_PAIR_PEER1 .* offer=[0-9a-f]" <<< "$lines" ||
		scr_fail "B (stock) sent an MP_EXPERIMENTAL option" || return
	! grep -q "^$SCR_PAIR_ADDR1 synack .* offer=[0-9a-f]" <<< "$lines" ||
		scr_fail "A answered B's offerless SYN with an offer" || return
	if ((PLUMBING)); then
		scr_diag "plumbing: not checked (needs negotiation): A's SYN carries offer $OFFER_HEX"
		return 0
	fi
	# Needs negotiation: every MP_CAPABLE SYN of A carries the offer.
	! grep "^$SCR_PAIR_ADDR1 syn mpc=1 " <<< "$lines" | grep -qv " offer=$OFFER_HEX\$" ||
		scr_fail "an MP_CAPABLE SYN of A does not carry the offer $OFFER_HEX" || return
}

scr_load || scr_skip_all "cannot load $SCR_MODULE"
# Up to 2 subflows and 2 accepted addresses at both ends.
ip mptcp limits set subflow 2 add_addr_accepted 2
peer ip mptcp limits set subflow 2 add_addr_accepted 2 || scr_skip_all "VM B does not answer"
sysctl -qw net.mptcp.enabled=1
peer sysctl -qw net.mptcp.enabled=1 || scr_skip_all "VM B does not answer"
scr_diag "A: $(uname -r), module $(basename "$SCR_MODULE"); B: $(cat "$SCR_PEER/ready") (stock, no module)"

scr_ktap_header
if ((PLUMBING)); then
	scr_diag "PLUMBING MODE: enabled=0 on A; the refusal cases and the assertions that need negotiation are left out"
	scr_ktap_plan 3
else
	scr_ktap_plan 5
fi
scr_run patched_client_opportunistic_to_stock_server_plain test_patched_client_opportunistic_to_stock_server_plain
scr_run stock_client_to_patched_server_opportunistic_plain test_stock_client_to_patched_server_opportunistic_plain
if ! ((PLUMBING)); then
	scr_run patched_client_required_to_stock_server_refused test_patched_client_required_to_stock_server_refused
	scr_run stock_client_to_patched_server_required_refused test_stock_client_to_patched_server_required_refused
fi
scr_run offer_on_the_wire_from_patched_only test_offer_on_the_wire_from_patched_only
ip mptcp endpoint flush
echo 1 > "$SYSCTLS/enabled"
scr_unload
scr_finish
