#!/usr/bin/env bash
# On-wire negotiation of scrambling: the per-namespace sysctls enabled,
# mode and policy; the scramble offer, TCP option kind 30 (MPTCP) length 4,
# bytes 1e 04 f1 01 (subtype 0xf MP_EXPERIMENTAL, version 1, mode 1 =
# paper), in the client's SYN (it offers), the server's SYN-ACK (its
# answer: both offer the same mode), the client's MP_CAPABLE ACK (the
# connection is scrambled), every MP_JOIN SYN (the client offered) and
# MP_JOIN SYN-ACK (the server answered); never from a namespace with
# enabled=0.
#
# - the matrix: client (rows) x server (columns), each end off (enabled 0),
#   opp (policy opportunistic) or req (policy required):
#
#              off        opp         req
#     off      plain      plain       refused
#     opp      plain      scrambled   scrambled
#     req      refused    scrambled   scrambled
#
#   each checked for its outcome, its bytes (intact whenever data flows),
#   the counters of each end, and the offers captured on both paths;
#   (SCR_MATRIX=short runs four of them, see PAIRS below);
#   "refused": connect() fails with ECONNREFUSED and the server accepts
#   nothing;
# - mode and policy reject what they do not know (EINVAL, value kept);
# - a middlebox that strips the offer on one path only is detected: a
#   router namespace on that path bridges its frames and NOPs the four
#   bytes 1e 04 f1 01 among the TCP options, fixing the checksum (the test
#   kernel has no u32 classifier and the guest no nft: tc pedit cannot
#   match the bytes, so a small AF_PACKET bridge in Python does it).
#   Stripped on path 2, the join lacks the offer of the first subflow;
#   stripped on path 1, the connection starts plain but its join carries
#   offers.  Either way the connection is reset at both ends, no wrong
#   byte delivered, a downgrade counted.  (If every reset carrying the
#   MP_FASTCLOSE is lost on the way, that end's connection ends with
#   ENOTCONN after net.mptcp.close_timeout instead: accepted only when
#   its MIB shows no MP_FASTCLOSE received.)
source "$(dirname "$0")/lib.sh"

MB=$((1024 * 1024))
SYSCTLS=/proc/sys/net/mptcp_scramble

scr_require_root
scr_require_cmd ip tc tcpdump nstat insmod rmmod python3 mptcp-traffic
scr_require_module_file

# configure NS off|opp|req: the namespace's enabled, mode and policy.
configure() {
	local enabled=1 policy=opportunistic
	case $2 in
	off) enabled=0 ;;
	opp) ;;
	req) policy=required ;;
	*) scr_fail "configure: unknown setting $2" || return ;;
	esac
	ip netns exec "$1" sysctl -qw net.mptcp_scramble.mode=paper \
		net.mptcp_scramble.policy="$policy" net.mptcp_scramble.enabled="$enabled" ||
		scr_fail "cannot set $2 in $1 (enabled=$enabled mode=paper policy=$policy)"
}

# The counters each end is checked on: /proc/net/mptcp_scramble's, then
# the MIB's.
COUNTERS=(connections_scrambled connections_plain peer_no_offer refused downgrades)
MIBS=(MPTcpExtScrambleRefused MPTcpExtScrambleDowngrade MPTcpExtMPFastcloseRx)
declare -A before after

# counters_of cli|srv: every counter of that end, /proc's and the MIB's,
# as NAME VALUE lines (one process: the VM runs under TCG).
counters_of() {
	local ns=$SCR_CLI
	[[ $1 == srv ]] && ns=$SCR_SRV
	# shellcheck disable=SC2016 # awk's $1 and $2
	ip netns exec "$ns" sh -c 'cat /proc/net/mptcp_scramble; nstat -asz' |
		awk 'NF >= 2 && $2 ~ /^[0-9]+$/ { print $1, $2 }'
}

# take before|after: read the counters of both ends into that array.
take() {
	local -n into=$1
	local end name v
	into=()
	for end in cli srv; do
		while read -r name v; do
			into[$end.$name]=$v
		done < <(counters_of "$end")
		for name in "${COUNTERS[@]}" "${MIBS[@]}"; do
			[[ -n ${into[$end.$name]:-} ]] || scr_fail "$end: no counter $name" || return
		done
	done
}

# snapshot: the counters before a case.
snapshot() {
	take before
}

# delta cli|srv NAME: how much a counter grew from `take before` to
# `take after`.
delta() {
	echo $((after[$1.$2] - before[$1.$2]))
}

# grown cli|srv: NAME+N for each counter of that end that grew from
# `take before` to `take after`: the module's, the MPTCP MIB's, and TCP's
# resets.
grown() {
	local k d out=()
	for k in "${!after[@]}"; do
		[[ $k == "$1".* ]] || continue
		[[ ${k#*.} =~ ^([a-z_]+|MPTcpExt.*|TcpEstabResets|TcpOutRsts)$ ]] || continue
		d=$((${after[$k]} - ${before[$k]:-0}))
		((d == 0)) || out+=("${k#*.}+$d")
	done
	printf '%s\n' "${out[@]}" | sort | tr '\n' ' '
}

# expect_deltas CASE END NAME=N...: each counter of END grew by N.
expect_deltas() {
	local case=$1 end=$2 kv got rc=0
	shift 2
	for kv; do
		got=$(delta "$end" "${kv%=*}")
		((got == ${kv#*=})) ||
			{ scr_fail "$case: $end ${kv%=*} grew by $got, want ${kv#*=}"; rc=1; }
	done
	return "$rc"
}

# wire PORT PCAP...: what the captures show of the connections to the
# server's PORT, one line per packet type: TYPE PACKETS OFFERED NOPPED
# (PACKETS of that type, OFFERED of them carrying the offer among their
# TCP options, NOPPED carrying four NOPs in a row, where a stripped offer
# was).  Types: SYN (MP_CAPABLE), SYNACK (MP_CAPABLE), MPCACK (the
# client's first MP_CAPABLE packet after its SYN: the third ACK), MPJSYN,
# MPJSYNACK, RSTCLI and RSTSRV (resets from the client, from the server),
# OFFERCLI and OFFERSRV (any packet with the offer, from each end).
wire() {
	python3 - "$@" <<'PY'
import struct
import sys

OFFER = b"\x1e\x04\xf1\x01"
port = int(sys.argv[1])
types = ["SYN", "SYNACK", "MPCACK", "MPJSYN", "MPJSYNACK", "RSTCLI", "RSTSRV", "OFFERCLI", "OFFERSRV"]
count = {t: [0, 0, 0] for t in types}
mpc_acked = False


def options(opts):
    """The first MP_CAPABLE/MP_JOIN subtype, the offer, four NOPs in a row."""
    sub, offer, nops, run, i = None, False, False, 0, 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            run += 1
            nops = nops or run >= 4
            i += 1
            continue
        run = 0
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        opt = opts[i:i + opts[i + 1]]
        if kind == 30 and opt == OFFER:
            offer = True
        elif kind == 30 and len(opt) >= 3 and opt[2] >> 4 in (0, 1) and sub is None:
            sub = opt[2] >> 4
        i += opts[i + 1]
    return sub, offer, nops


def packets(path):
    data = open(path, "rb").read()
    if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif data[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit(f"{path}: not a pcap file")
    link = struct.unpack(e + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if link == 1:
            ethertype, l3 = pkt[12:14], pkt[14:]
        elif link == 113:
            ethertype, l3 = pkt[14:16], pkt[16:]
        elif link == 276:
            ethertype, l3 = pkt[0:2], pkt[20:]
        else:
            sys.exit(f"{path}: link type {link}")
        if ethertype == b"\x08\x00" and len(l3) >= 20 and l3[9] == 6:
            tcp = l3[(l3[0] & 15) * 4:]
        elif ethertype == b"\x86\xdd" and len(l3) >= 40 and l3[6] == 6:
            tcp = l3[40:]
        else:
            continue
        if len(tcp) >= 20:
            yield tcp


for path in sys.argv[2:]:
    for tcp in packets(path):
        sport, dport = struct.unpack(">HH", tcp[:4])
        if port not in (sport, dport):
            continue
        client = dport == port
        flags = tcp[13]
        syn, ack, rst = flags & 2, flags & 16, flags & 4
        sub, offer, nops = options(tcp[20:(tcp[12] >> 4) * 4])
        t = None
        if syn and not ack and client:
            t = {0: "SYN", 1: "MPJSYN"}.get(sub)
        elif syn and ack and not client:
            t = {0: "SYNACK", 1: "MPJSYNACK"}.get(sub)
        elif not syn and client and sub == 0 and not mpc_acked:
            t, mpc_acked = "MPCACK", True
        for name in (t, "OFFERCLI" if client else "OFFERSRV", ("RSTCLI" if client else "RSTSRV") if rst else None):
            if name is None or (name.startswith("OFFER") and not offer):
                continue
            count[name][0] += 1
            count[name][1] += offer
            count[name][2] += nops
for t in types:
    print(t, *count[t])
PY
}

# on_wire CASE FILE TYPE yes|no|absent|some: in wire's report FILE, every
# packet of TYPE carries the offer (yes), none does (no: and there is one
# at least), there is no such packet (absent), or there is one (some).
on_wire() {
	local total offered
	read -r total offered _ < <(awk -v t="$3" '$1 == t { print $2, $3, $4 }' "$2")
	[[ -n $total ]] || scr_fail "$1: no $3 line in the wire report" || return
	case $4 in
	absent) ((total == 0)) || scr_fail "$1: $total $3 packets on the wire, want none" ;;
	some) ((total > 0)) || scr_fail "$1: no $3 on the wire" ;;
	yes | no)
		((total > 0)) || scr_fail "$1: no $3 on the wire (the check is blind)" || return
		if [[ $4 == yes ]]; then
			((offered == total)) || scr_fail "$1: $offered of $total $3 carry the offer, want all"
		else
			((offered == 0)) || scr_fail "$1: $offered of $total $3 carry the offer, want none"
		fi
		;;
	esac
}

# yes_if COND: yes or no.
yes_if() {
	if "$@"; then echo yes; else echo no; fi
}

# matrix CLIENT SERVER OUTCOME PORT: one pair of the matrix.
matrix() {
	local cli=$1 srv=$2 outcome=$3 port=$4 case="$1-$2" w rc=0 end
	local scrambled=false cli_offers=false joins
	[[ $outcome == scrambled ]] && scrambled=true
	[[ $cli != off ]] && cli_offers=true
	configure "$SCR_CLI" "$cli" || return
	configure "$SCR_SRV" "$srv" || return
	snapshot || return
	joins=$(scr_joins)
	scr_shape 10mbit
	scr_capture "$SCR_CLI" c1 "$case-p1" || return
	scr_capture "$SCR_CLI" c2 "$case-p2" || return
	if [[ $outcome == refused ]]; then
		# The server's 3 s accept timeout is the window in which it
		# must accept nothing.
		scr_transfer "$case" "10.0.1.2:$port" --bytes 64K --pattern digits \
			::server --timeout 3 ::client --timeout 10 && rc=1
	else
		scr_transfer "$case" "10.0.1.2:$port" --bytes $((2 * MB)) --pattern digits --timeout 20 || rc=$?
	fi
	scr_capture_stop
	scr_shape off
	take after || return
	w=$SCR_TMP/$case.wire
	wire "$port" "$SCR_TMP/$case-p1.pcap" "$SCR_TMP/$case-p2.pcap" > "$w" || scr_fail "$case: cannot read the captures" || return
	scr_diag "$case: $(tr '\n' ' ' < "$w")"

	if [[ $outcome == refused ]]; then
		((rc == 0)) || scr_fail "$case: the transfer succeeded, want it refused" || return
		[[ $(scr_conn_errno "$SCR_TMP/$case.client.json") == ECONNREFUSED ]] ||
			scr_fail "$case: client: $(scr_conn_json "$SCR_TMP/$case.client.json" error), want ECONNREFUSED" || return
		(($(scr_json "$SCR_TMP/$case.server.json" connections) == 0)) ||
			scr_fail "$case: the server accepted a connection" || return
		(($(scr_json "$SCR_TMP/$case.server.json" bytes) == 0)) ||
			scr_fail "$case: the server received bytes" || return
		on_wire "$case" "$w" SYN "$(yes_if "$cli_offers")" || return
		if [[ $srv == req ]]; then
			# The server refuses: a reset answers the SYN.
			on_wire "$case" "$w" SYNACK absent || return
			on_wire "$case" "$w" RSTSRV some || return
		else
			# The client refuses: it resets after the SYN-ACK.
			on_wire "$case" "$w" SYNACK no || return
			on_wire "$case" "$w" RSTCLI some || return
		fi
		on_wire "$case" "$w" MPCACK absent || return
		[[ $cli != off ]] || on_wire "$case" "$w" OFFERCLI absent || return
		[[ $srv != off ]] || on_wire "$case" "$w" OFFERSRV absent || return
		end=cli
		[[ $srv == req ]] && end=srv
		expect_deltas "$case" "$end" refused=1 MPTcpExtScrambleRefused=1 connections_scrambled=0 connections_plain=0 || rc=1
		[[ $end == srv ]] && end=cli || end=srv
		expect_deltas "$case" "$end" refused=0 MPTcpExtScrambleRefused=0 connections_scrambled=0 connections_plain=0 || rc=1
		return "$rc"
	fi

	((rc == 0)) || scr_fail "$case: the transfer failed (bytes not intact or connection broken)" || return
	(($(scr_joins) > joins)) || scr_fail "$case: no MP_JOIN subflow came up" || return
	on_wire "$case" "$w" SYN "$(yes_if "$cli_offers")" || return
	on_wire "$case" "$w" SYNACK "$(yes_if "$scrambled")" || return
	on_wire "$case" "$w" MPCACK "$(yes_if "$scrambled")" || return
	on_wire "$case" "$w" MPJSYN "$(yes_if "$cli_offers")" || return
	on_wire "$case" "$w" MPJSYNACK "$(yes_if "$scrambled")" || return
	[[ $cli != off ]] || on_wire "$case" "$w" OFFERCLI absent || return
	[[ $srv != off ]] || on_wire "$case" "$w" OFFERSRV absent || return
	if $scrambled; then
		for end in cli srv; do
			expect_deltas "$case" "$end" connections_scrambled=1 connections_plain=0 \
				peer_no_offer=0 refused=0 downgrades=0 || rc=1
		done
	else
		# peer_no_offer: this end offered (enabled=1), the peer did not.
		expect_deltas "$case" cli connections_scrambled=0 connections_plain=1 refused=0 \
			"peer_no_offer=$([[ $cli != off ]] && echo 1 || echo 0)" || rc=1
		expect_deltas "$case" srv connections_scrambled=0 connections_plain=1 refused=0 \
			"peer_no_offer=$([[ $srv != off ]] && echo 1 || echo 0)" || rc=1
	fi
	return "$rc"
}

# rejects_bad_values NAME DEFAULT GOOD...: a fresh namespace's NAME is
# DEFAULT; each GOOD value is taken; from each, a bad value fails with
# EINVAL (one write(2)) and leaves it unchanged.
rejects_bad_values() {
	local name=$1 def=$2 ns out line
	shift 2
	ns=$(scr_netns_add "sysctl-$name")
	[[ -e $SYSCTLS/$name ]] || scr_fail "no $SYSCTLS/$name" || return
	out=$(ip netns exec "$ns" python3 - "$SYSCTLS/$name" "$def" "$@" <<'PY'
import errno
import os
import sys

path, default, goods = sys.argv[1], sys.argv[2], sys.argv[3:]


def read():
    with open(path) as f:
        return f.read().strip()


def write(value):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        os.close(fd)


if read() != default:
    print(f"{read()!r} in a new namespace, want {default}")
for good in goods:
    got = write(good)
    if got != "OK" or read() != good:
        print(f"writing {good}: {got}, reads {read()!r}")
        continue
    for bad in ["xor", "none", good + "x", good[:3], good.upper(), f"{good} {good}",
                "1", "0", "", "\n", "z" * 4096]:
        got = write(bad)
        if got != "EINVAL":
            print(f"writing {bad[:16]!r} ({len(bad)} bytes): {got}, want EINVAL")
        if read() != good:
            print(f"writing {bad[:16]!r} changed {good} to {read()!r}")
PY
	) || scr_fail "$name: the check did not run" || return
	[[ -z $out ]] && return
	while read -r line; do
		scr_diag "$name: $line"
	done <<< "$out"
	scr_fail "$name: bad values not refused, or a value changed"
}

test_sysctl_mode_rejects_bad_values() {
	rejects_bad_values mode paper paper
}

test_sysctl_policy_rejects_bad_values() {
	rejects_bad_values policy opportunistic required opportunistic
}

# bridge_py: a Python program; bridge_py A B READY: forward every Ethernet frame between interfaces A and
# B (AF_PACKET), NOPping the scramble offer (kind 30, length 4, bytes
# 1e 04 f1 01) among the TCP options of IPv4 and IPv6 packets and fixing
# their TCP checksum; create READY once forwarding.  The senders must not
# offload checksums or segmentation (see middlebox).  Logs each stripped
# packet to stderr.
bridge_py() {
	cat <<'PY'
import select
import socket
import struct
import sys

OFFER = b"\x1e\x04\xf1\x01"
PACKET_OUTGOING = 4


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def strip(frame):
    """The frame with the offer NOPped, or None if it has none."""
    if frame[12:14] == b"\x08\x00" and len(frame) >= 34 and frame[23] == 6:
        ihl = (frame[14] & 15) * 4
        tcp = 14 + ihl
        total = struct.unpack("!H", frame[16:18])[0]
        end = 14 + total
        pseudo = frame[26:34] + struct.pack("!BBH", 0, 6, total - ihl)
    elif frame[12:14] == b"\x86\xdd" and len(frame) >= 54 and frame[20] == 6:
        tcp = 54
        end = tcp + struct.unpack("!H", frame[18:20])[0]
        pseudo = frame[22:54] + struct.pack("!IxxxB", end - tcp, 6)
    else:
        return None
    if len(frame) < tcp + 20 or len(frame) < end:
        return None
    doff = (frame[tcp + 12] >> 4) * 4
    i, hit = tcp + 20, None
    while i < tcp + doff:
        kind = frame[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= tcp + doff or frame[i + 1] < 2:
            break
        if frame[i:i + 4] == OFFER:
            hit = i
            break
        i += frame[i + 1]
    if hit is None:
        return None
    f = bytearray(frame)
    f[hit:hit + 4] = b"\x01\x01\x01\x01"
    f[tcp + 16:tcp + 18] = b"\0\0"
    f[tcp + 16:tcp + 18] = struct.pack("!H", checksum(pseudo + bytes(f[tcp:end])))
    return bytes(f)


socks = []
for name in sys.argv[1:3]:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((name, 0))
    socks.append(s)
peer = {socks[0]: socks[1], socks[1]: socks[0]}
open(sys.argv[3], "w").close()
n = 0
while True:
    for s in select.select(socks, [], [])[0]:
        frame, addr = s.recvfrom(65536)
        if addr[2] == PACKET_OUTGOING:
            continue
        out = strip(frame)
        if out is not None:
            n += 1
            print(f"stripped {n}: {addr[0]} {out[14:].hex()}", file=sys.stderr, flush=True)
        try:
            peer[s].send(out or frame)
        except OSError as e:
            print(f"send: {e}", file=sys.stderr, flush=True)
PY
}

# middlebox PATH: a router namespace on path PATH, between c<PATH> and
# s<PATH>, that strips the scramble offer in both directions (bridge_py).
# Sets $router and $bridge (the bridge's pid).
middlebox() {
	local p=$1 ns dev
	router=$(scr_netns_add rtr)
	ip netns exec "$router" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	# The server's end of the path moves into the router; a new
	# s<PATH> takes its place in the server namespace.
	ip -n "$SCR_SRV" link set "s$p" netns "$router"
	ip -n "$router" link set "s$p" name "r$p"
	ip link add "m$p" netns "$router" type veth peer name "s$p" netns "$SCR_SRV"
	ip -n "$SCR_SRV" addr add "10.0.$p.2/24" dev "s$p"
	ip -n "$SCR_SRV" addr add "dead:$p::2/64" dev "s$p" nodad
	for ns in "$SCR_CLI" "$SCR_SRV" "$router"; do
		for dev in "c$p" "s$p" "r$p" "m$p"; do
			ip -n "$ns" link show "$dev" > /dev/null 2>&1 || continue
			# Frames the bridge can forward as they are: checksummed
			# and no larger than the MTU.
			ip netns exec "$ns" ethtool -K "$dev" tx off sg off tso off gso off gro off > /dev/null 2>&1
			ip -n "$ns" link set "$dev" up
		done
	done
	rm -f "$SCR_TMP/bridge.ready"
	bridge_py > "$SCR_TMP/bridge.py"
	ip netns exec "$router" timeout 300 python3 "$SCR_TMP/bridge.py" "r$p" "m$p" "$SCR_TMP/bridge.ready" \
		2> "$SCR_TMP/bridge.log" &
	bridge=$!
	scr_wait_for test -e "$SCR_TMP/bridge.ready" || scr_fail "the middlebox did not start: $(tail -n 3 "$SCR_TMP/bridge.log")"
}

# received_on PORT N: a subflow of the server's connection on PORT has
# received N bytes.
received_on() {
	ip netns exec "$SCR_SRV" ss -Htni state established "( sport = :$1 )" |
		grep -o 'bytes_received:[0-9]*' | awk -F: -v n="$2" '$2 >= n { ok = 1 } END { exit !ok }'
}

# ended PID: process PID is gone.
ended() {
	! kill -0 "$1" 2>/dev/null
}

# stop_traffic: end the mptcp-traffic processes of the topology (by pid).
stop_traffic() {
	local ns pid
	for ns in "$SCR_CLI" "$SCR_SRV"; do
		for pid in $(ip netns pids "$ns"); do
			[[ $(cat "/proc/$pid/comm" 2>/dev/null) == mptcp-traffic ]] && kill "$pid"
		done
	done
}

# strip_detected CASE PATH PORT: opportunistic at both ends, the offer
# stripped on path PATH (a fresh topology with a middlebox on that path);
# the connection must be reset at both ends, no wrong byte delivered, a
# downgrade counted, the wire as described.
strip_detected() {
	local case=$1 path=$2 port=$3 t rc=0 end e err w1 w2 d m
	scr_cleanup
	scr_topology 2
	middlebox "$path" || return
	configure "$SCR_CLI" opp || return
	configure "$SCR_SRV" opp || return
	# A lost reset leaves the connection to MPTCP's close timeout (see
	# the errno check below): shorter than the transfer's 60 s timeout.
	ip netns exec "$SCR_CLI" sysctl -qw net.mptcp.close_timeout=10 || return
	ip netns exec "$SCR_SRV" sysctl -qw net.mptcp.close_timeout=10 || return
	snapshot || return
	# A queue long enough for all the client's data in flight (its send
	# buffer, at most 4 MiB), so that nothing is dropped: a reset, once
	# sent, is never sent again, and one that follows a lost segment is
	# ignored.
	scr_shape 20mbit limit 10000
	# After the middlebox, for what the client sends: the server's ends
	# of the paths.
	scr_capture "$SCR_SRV" s1 "$case-p1" || return
	scr_capture "$SCR_SRV" s2 "$case-p2" || return
	# The join comes only once data flows (the server has accepted):
	# path 2's endpoint is added then.
	# A reset that is lost reaches the client only as the answer to its
	# next retransmission, which TCP's backoff may put many seconds later
	# on a slow (debug, emulated) kernel: the client gives up only after
	# 60 s without progress.
	ip -n "$SCR_CLI" mptcp endpoint flush
	scr_transfer "$case" "10.0.1.2:$port" --until-error --pattern digits --timeout 60 &
	t=$!
	scr_wait_for -t 30 received_on "$port" "$MB" || scr_diag "$case: no data flowed within 30 s"
	scr_subflow_endpoints 2
	if ! scr_wait_for -t 90 ended "$t"; then
		scr_fail "$case: the connection was not reset within 90 s"
		stop_traffic
		rc=1
	fi
	wait "$t"
	scr_capture_stop
	kill "$bridge" 2>/dev/null
	wait "$bridge" 2>/dev/null
	scr_shape off
	scr_diag "$case: the middlebox stripped $(grep -c '^stripped' "$SCR_TMP/bridge.log") packets"
	((rc == 0)) || return 1
	take after || return
	# What crossed each path, shown first: it explains any failure below.
	w1=$SCR_TMP/$case.p1.wire
	w2=$SCR_TMP/$case.p2.wire
	wire "$port" "$SCR_TMP/$case-p1.pcap" > "$w1" || scr_fail "$case: cannot read the path 1 capture" || return
	wire "$port" "$SCR_TMP/$case-p2.pcap" > "$w2" || scr_fail "$case: cannot read the path 2 capture" || return
	scr_diag "$case: path 1: $(tr '\n' ' ' < "$w1")"
	scr_diag "$case: path 2: $(tr '\n' ' ' < "$w2")"
	scr_diag "$case: client counters grown: $(grown cli)"
	scr_diag "$case: server counters grown: $(grown srv)"
	for end in client server; do
		err=$(scr_conn_errno "$SCR_TMP/$case.$end.json") || scr_fail "$case: no $end connection report" || return
		case $err in
		ECONNRESET | ECONNABORTED | EPIPE) scr_diag "$case: $end: $err" ;;
		ENOTCONN)
			# The peer's resets, each with its MP_FASTCLOSE, were lost
			# or ignored (past rcv_nxt after a lost segment, RFC 5961
			# section 3.2): this end's subflows then end on the plain
			# resets that answer its next segments, and the core
			# closes the connection close_timeout later, without an
			# error of its own.  Acceptable only if no MP_FASTCLOSE
			# arrived here.
			e=cli
			[[ $end == server ]] && e=srv
			(($(delta "$e" MPTcpExtMPFastcloseRx) == 0)) ||
				scr_fail "$case: $end ended with ENOTCONN although an MP_FASTCLOSE reached it" || return
			scr_diag "$case: $end: ENOTCONN: no MP_FASTCLOSE reached it, so MPTCP closed the connection after close_timeout"
			;;
		*) scr_fail "$case: $end ended with $err, want a reset" || return ;;
		esac
	done
	[[ $(scr_conn_json "$SCR_TMP/$case.server.json" mismatch) == None ]] ||
		scr_fail "$case: the server received a wrong byte: $(scr_conn_json "$SCR_TMP/$case.server.json" mismatch)" || return
	d=$(($(delta cli downgrades) + $(delta srv downgrades)))
	m=$(($(delta cli MPTcpExtScrambleDowngrade) + $(delta srv MPTcpExtScrambleDowngrade)))
	((d >= 1)) || scr_fail "$case: downgrades did not grow at either end" || return
	((m >= 1)) || scr_fail "$case: MPTcpExtScrambleDowngrade did not grow at either end" || return
	for end in cli srv; do
		(($(delta "$end" downgrades) == $(delta "$end" MPTcpExtScrambleDowngrade))) ||
			scr_fail "$case: $end counted $(delta "$end" downgrades) downgrades, MIB $(delta "$end" MPTcpExtScrambleDowngrade)" || return
	done
	if ((path == 1)); then
		# The connection started plain.
		expect_deltas "$case" cli connections_scrambled=0 || return
		expect_deltas "$case" srv connections_scrambled=0 || return
	fi
	if ((path == 2)); then
		on_wire "$case path 1" "$w1" SYN yes || return
		on_wire "$case path 1" "$w1" SYNACK yes || return
		on_wire "$case path 2" "$w2" MPJSYN no || return
		stripped "$case path 2" "$w2" MPJSYN
	else
		on_wire "$case path 1" "$w1" SYN no || return
		stripped "$case path 1" "$w1" SYN || return
		on_wire "$case path 1" "$w1" SYNACK no || return
		on_wire "$case path 2" "$w2" MPJSYN yes
	fi
}

# stripped CASE FILE TYPE: every packet of TYPE has four NOPs where the
# offer was (and, being of TYPE, still its MP_CAPABLE or MP_JOIN).
stripped() {
	local total nopped
	read -r total _ nopped < <(awk -v t="$3" '$1 == t { print $2, $3, $4 }' "$2")
	((total > 0 && nopped == total)) || scr_fail "$1: $nopped of $total $3 show the stripped offer's NOPs"
}

test_strip_on_join_path_detected_as_downgrade() {
	strip_detected strip-join 2 4301
}

test_strip_on_first_path_detected_as_downgrade() {
	strip_detected strip-first 1 4302
}

PAIRS=(
	"off off plain"
	"off opp plain"
	"off req refused"
	"opp off plain"
	"opp opp scrambled"
	"opp req scrambled"
	"req off refused"
	"req opp scrambled"
	"req req scrambled"
)
# SCR_MATRIX=short (the debug kernel's run, where each pair costs about
# a minute and a half): the two refusals, by the server and by the
# client, the kernel paths no other suite takes there.  Scrambled pairs
# are every connection of datapath.sh and faults.sh on that kernel, and
# a plain one beside an end that offers is the paper's mode's only other
# outcome, checked on the normal kernel.
if [[ ${SCR_MATRIX:-full} == short ]]; then
	PAIRS=("off req refused" "req off refused")
fi

scr_load || scr_skip_all "cannot load $SCR_MODULE"
scr_topology 2

scr_ktap_header
scr_ktap_plan $((${#PAIRS[@]} + 4))
scr_run sysctl_mode_rejects_bad_values test_sysctl_mode_rejects_bad_values
scr_run sysctl_policy_rejects_bad_values test_sysctl_policy_rejects_bad_values
port=4200
for pair in "${PAIRS[@]}"; do
	read -r c s o <<< "$pair"
	scr_run "matrix_${c}_${s}_$o" matrix "$c" "$s" "$o" "$port"
	port=$((port + 1))
done
scr_run strip_on_join_path_detected_as_downgrade test_strip_on_join_path_detected_as_downgrade
scr_run strip_on_first_path_detected_as_downgrade test_strip_on_first_path_detected_as_downgrade
scr_unload
scr_finish
