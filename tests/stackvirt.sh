#!/usr/bin/env bash
# Protocol stack virtualization (crates/stackvirt, docs/stackvirt.md): one
# host appears on its link as many unrelated hosts, each flow or
# application with its own MAC and IP address, chosen at connect time by
# cgroup sock_addr BPF programs; stackvirtd keeps the pool of pseudonyms.
#
#                       lan ($LAN): bridge br0, the observer captures
#                       on lh, every frame the host sends (tcpdump -e)
#   host ($H)                 |
#   up0 10.10.0.2 ------- lh -+- lr ------- r0 10.10.0.1     router ($R)
#   + svpN pseudonyms         |             2001:db8:10::1   radvd
#     10.10.0.100-199         |             r1 10.20.0.1  mtu 1280
#     2001:db8:10::random     |             2001:db8:20::1      |
#                             |                                  |
#   reference ($F) f0 --- lf -+              server ($S) s0 10.20.0.2
#   10.10.0.3, SLAAC: no pseudonyms                 2001:db8:20::2
#
# The host's processes run in cgroup $CG (app1, app2 below it) where the
# programs are attached.  Cases:
# - the pool: pseudonyms with distinct locally administered MACs, IPv4 from
#   the range, IPv6 from the advertised prefix;
# - identity on the wire: N flows under the per-flow policy leave from N
#   distinct (MAC, IP) pairs; every pseudonym IP shows exactly one MAC in
#   IP, ARP and ND frames; the uplink's real MAC never appears;
# - ICMP: ECONNREFUSED, traceroute and PMTU through the 1280-byte hop work
#   as on the reference host;
# - inbound: a scan of a pseudonym gets no answer; the default address
#   serves;
# - link chatter: nothing but ARP, ND and MLD leaves unasked;
# - cost: the programs run once per connect and unconnected send, never
#   per packet; connect time and bulk throughput with and without;
# - ICMP: ping sockets that connect() take a pseudonym per (icmp, dst);
#   unconnected ping sockets, raw ICMP sockets and iputils ping each take
#   one of their own when the socket is made;
# - the egress guard counts nothing; hand-made frames whose Ethernet source
#   and IP or ARP sender address are not one pseudonym's are dropped and
#   counted, a pseudonym's own pair passes;
# - per application: two applications never share a pseudonym, and
#   stackvirtctl names them;
# - sockets bound by the application, and sockets of other namespaces in
#   the cgroup, keep their addresses;
# - a pseudonym is retired once its last socket has closed;
# - DHCP: each pseudonym leases its IPv4 address anonymously (RFC 7844);
# - DNS: stackvirtd as the stub resolver; each query leaves from the
#   pseudonym of the application that asked, no answer is shared;
# - IP-only mode: pseudonyms as addresses with the uplink's MAC;
# - real applications (curl, dig, nc) leave from their pseudonym;
# - a browsing-like session's addresses under each policy;
# - MPTCP: stackvirtd as the userspace path manager gives each connection's
#   subflow on the LAN a pseudonym of its own, announced to nobody;
# - restart: an instance left with SIGUSR1 or killed is taken over by the
#   next, a flow held across it intact;
# - failure: stackvirtd killed, existing flows keep working; new connects
#   draw from the remaining pool, then keep the default address
#   (--fail open) or fail with EPERM (--fail closed).
source "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
PEER=$HERE/stackvirt/peer.py
WIRE=$HERE/stackvirt/wire.py
RANGE=10.10.0.100-10.10.0.199
PORTS=(8001 8002 8003 8004 8005 8006)

scr_require_root
scr_require_cmd ip tcpdump nft radvd dnsmasq traceroute python3 stackvirtd stackvirtctl

# Every case, in order.  SCR_STACKVIRT=short (the debug kernel in `make
# test`, where the whole file takes 12 minutes under TCG) runs the ones
# that reach a kernel path the others do not: the BPF programs (connect,
# sendmsg, sock_create and release, the tcx guard), macvlan, rules and
# nftables as pseudonyms come and go; it leaves out traceroute, PMTU, the
# scan, the idle capture, the timings, the per-application, bound-socket
# and daemon-kill cases.  `make test-long` runs all.
CASES=(pool_is_made flows_leave_from_distinct_pseudonyms wire_shows_one_mac_per_pseudonym
	closed_port_is_refused traceroute_as_on_the_reference pmtu_through_the_1280_hop
	inbound_scan_gets_nothing link_chatter_is_arp_nd_mld_only runs_per_connect_not_per_packet
	icmp_sockets_get_pseudonyms egress_guard_counts_nothing forged_frames_are_dropped_and_counted
	applications_never_share bound_and_foreign_sockets_left_alone idle_pseudonym_is_retired
	dhcp_leases_are_anonymous dns_kept_with_its_application ip_only_pseudonyms_share_the_uplinks_mac
	ip_only_leases_are_told_apart real_applications_leave_from_their_pseudonym
	ftp_passive_and_active_from_the_pseudonym browsing_session_addresses_per_policy
	mptcp_subflows_from_fresh_pseudonyms
	restarted_daemon_adopts_its_pseudonyms killed_daemon_keeps_flows_fail_open killed_daemon_fail_closed_denies)
# One case by hand: SCR_STACKVIRT=mptcp (the path manager's), ftp.
case ${SCR_STACKVIRT:-} in
mptcp) CASES=(pool_is_made mptcp_subflows_from_fresh_pseudonyms) ;;
ftp) CASES=(pool_is_made ftp_passive_and_active_from_the_pseudonym) ;;
esac
if [[ ${SCR_STACKVIRT:-} == short ]]; then
	CASES=(pool_is_made flows_leave_from_distinct_pseudonyms icmp_sockets_get_pseudonyms
		egress_guard_counts_nothing forged_frames_are_dropped_and_counted
		idle_pseudonym_is_retired)
fi

scr_ktap_header
scr_ktap_plan ${#CASES[@]}

H=$(scr_netns_add host)
LAN=$(scr_netns_add lan)
R=$(scr_netns_add router)
S=$(scr_netns_add server)
F=$(scr_netns_add ref)

# cgroup v2 and bpffs of the test's own, under $SCR_TMP: `ip netns exec`
# mounts a fresh /sys, which would hide those under /sys/fs.
CGROOT=$SCR_TMP/cgroup
BPFFS=$SCR_TMP/bpffs
CG=$CGROOT/stackvirt-$SCR_SUFFIX
PINS=$BPFFS/stackvirt
STATE=$SCR_TMP/state.json
DAEMON=

cleanup() {
	[[ -z $DAEMON ]] || kill -9 "$DAEMON" 2>/dev/null
	rm -rf "$PINS" 2>/dev/null
	local d
	for d in "$CG"/app1 "$CG"/app2 "$CG"; do
		[[ -d $d ]] || continue
		xargs -r kill -9 < "$d/cgroup.procs" 2>/dev/null
		rmdir "$d" 2>/dev/null
	done
	umount "$BPFFS" "$CGROOT" 2>/dev/null
}
trap 'cleanup; scr_cleanup; rm -rf "$SCR_TMP"' EXIT

mkdir -p "$CGROOT" "$BPFFS"
mount -t cgroup2 none "$CGROOT" || scr_skip_all "cannot mount cgroup2 (CONFIG_CGROUPS)"
mount -t bpf bpf "$BPFFS" || scr_skip_all "cannot mount bpffs (CONFIG_BPF_SYSCALL)"
mkdir -p "$CG/app1" "$CG/app2"

# The LAN.
ip -n "$LAN" link add br0 type bridge mcast_snooping 0
ip link add up0 netns "$H" type veth peer name lh netns "$LAN"
ip link add r0 netns "$R" type veth peer name lr netns "$LAN"
ip link add f0 netns "$F" type veth peer name lf netns "$LAN"
ip link add r1 netns "$R" type veth peer name s0 netns "$S"
for p in lh lr lf; do
	ip -n "$LAN" link set "$p" master br0 up
done
ip -n "$LAN" link set br0 up

ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$R" addr add 10.10.0.1/24 dev r0
ip -n "$R" addr add 2001:db8:10::1/64 dev r0 nodad
ip -n "$R" addr add 10.20.0.1/24 dev r1
ip -n "$R" addr add 2001:db8:20::1/64 dev r1 nodad
ip -n "$R" link set r0 up
# The 1280-byte hop: only the router's side, so the server's SYN-ACK still
# offers an MSS of 1460 and the host's segments need PMTU discovery.
ip -n "$R" link set r1 mtu 1280 up
ip -n "$S" addr add 10.20.0.2/24 dev s0
ip -n "$S" addr add 2001:db8:20::2/64 dev s0 nodad
ip -n "$S" link set s0 up
ip -n "$S" route add default via 10.20.0.1
ip -n "$S" -6 route add default via 2001:db8:20::1

for ns_dev_ip in "$H up0 10.10.0.2" "$F f0 10.10.0.3"; do
	read -r ns dev ip <<< "$ns_dev_ip"
	ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.accept_ra=1" "net.ipv6.conf.$dev.autoconf=1"
	ip -n "$ns" addr add "$ip/24" dev "$dev"
	ip -n "$ns" link set "$dev" up
	ip -n "$ns" route add default via 10.10.0.1
done

cat > "$SCR_TMP/radvd.conf" <<EOF
interface r0 {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	prefix 2001:db8:10::/64 {
		AdvOnLink on;
		AdvAutonomous on;
	};
};
EOF
ip netns exec "$R" timeout 1800 radvd -n -m stderr -C "$SCR_TMP/radvd.conf" \
	-p "$SCR_TMP/radvd.pid" 2> "$SCR_TMP/radvd.log" &

# slaac NS DEV: DEV has a global address and a default route from the RA.
slaac() {
	ip -n "$1" -6 addr show dev "$2" scope global | grep -q 'inet6 2001:db8:10:' &&
		! ip -n "$1" -6 addr show dev "$2" | grep -q tentative &&
		ip -n "$1" -6 route show default | grep -q "dev $2"
}
scr_wait_for -t 30 slaac "$H" up0 || scr_diag "no SLAAC on the host: $(tail -n 3 "$SCR_TMP/radvd.log")"
scr_wait_for -t 30 slaac "$F" f0 || scr_diag "no SLAAC on the reference host"
REAL_MAC=$(ip -n "$H" -br link show up0 | awk '{ print $3 }')

rm -f "$SCR_TMP/server.ready"
ip netns exec "$S" timeout 1800 python3 "$PEER" serve "$SCR_TMP/server.ready" "${PORTS[@]}" \
	2> "$SCR_TMP/server.log" &
scr_wait_for test -e "$SCR_TMP/server.ready" || scr_diag "the server did not start"

# in_cgroup DIR CMD...: run CMD in the host namespace, in cgroup DIR.
in_cgroup() {
	local dir=$1
	shift
	bash -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' _ "$dir" \
		ip netns exec "$H" timeout 120 "$@"
}

# ctl ARGS...: stackvirtctl in the host namespace.
ctl() {
	ip netns exec "$H" stackvirtctl --pin-dir "$PINS" --state "$STATE" "$@"
}

# counter NAME: one counter of `stackvirtctl counters`.
counter() {
	ctl counters | awk -v n="$1" '$1 == n { print $2 }'
}

# ctl_counter_is NAME VALUE: counter NAME is VALUE.
ctl_counter_is() {
	[[ $(counter "$1") == "$2" ]]
}

# pseudonyms: the pseudonyms made so far, "DEVICE MAC IPV4 IPV6" lines.
pseudonyms() {
	python3 -c 'import json, sys
for p in json.load(open(sys.argv[1]))["pseudonyms"]:
    print(p["device"], p["mac"], p["ipv4"], p["ipv6"])' "$STATE" 2>/dev/null
}

pool_has() {
	(($(pseudonyms | wc -l) >= $1))
}

# start_daemon ARGS...: stackvirtd in the host namespace with ARGS (policy,
# pool, fail mode), once its pool has --pool pseudonyms.
start_daemon() {
	local pool=4 a
	for a; do
		[[ $a =~ ^[0-9]+$ ]] && pool=$a
	done
	# A killed daemon's state must not pass for the new one's (unless the
	# new one is to adopt it: KEEP_STATE=1).
	[[ -n ${KEEP_STATE:-} ]] || rm -f "$STATE"
	# --ipv4-dhcp instead of the range.
	local v4=(--ipv4-range "$RANGE")
	[[ " $* " != *" --ipv4-dhcp "* ]] || v4=()
	ip netns exec "$H" timeout 1800 stackvirtd --uplink up0 "${v4[@]}" --ipv6 \
		--cgroup "$CG" --pin-dir "$PINS" --state "$STATE" --jitter-ms 100 "$@" \
		2>> "$SCR_TMP/stackvirtd.log" &
	DAEMON=$!
	if ! scr_wait_for -t 60 pool_has "$pool"; then
		scr_diag "stackvirtd did not make $pool pseudonyms: $(grep -v "^ " "$SCR_TMP/stackvirtd.log" | head -n 8)"
		return 1
	fi
}

# kill_daemon: SIGKILL stackvirtd itself (not the timeout around it).
kill_daemon() {
	kill -9 "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$STATE")"
	wait "$DAEMON" 2>/dev/null
	DAEMON=
}

# signal_daemon SIGNAL: SIGNAL to stackvirtd itself (`timeout`, around it,
# does not pass every signal on), then wait for it to exit.
signal_daemon() {
	kill -"$1" "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$STATE")"
	wait "$DAEMON" 2>/dev/null
	DAEMON=
}

# adoptions_are N: the daemons so far said N times that they adopted
# pseudonyms.
adoptions_are() {
	(($(grep -c "adopted [1-9][0-9]* pseudonyms" "$SCR_TMP/stackvirtd.log") == $1))
}

# free_at_least N: at least N pseudonyms no socket has taken yet.
free_at_least() {
	(($(free_left) >= $1))
}

# free_left: pseudonyms no socket has taken yet.
free_left() {
	ctl status | awk '$1 ~ /^svp/ && $5 == 0' | wc -l
}

stop_daemon() {
	[[ -n $DAEMON ]] || return 0
	kill -TERM "$DAEMON" 2>/dev/null
	wait "$DAEMON" 2>/dev/null
	DAEMON=
	rm -rf "$PINS"
}

# capture NAME: every frame the host sends into the LAN, with link-layer
# headers, to $SCR_TMP/NAME.pcap until capture_stop.
CAP_PID=
CAP_DROPPED=
# A 32 MiB capture buffer (-B, KiB): the MPTCP case's joins move
# megabytes at the emulated CPU's speed, and a capture that falls behind
# loses frames the checks count (capture_stop says how many).
capture() {
	rm -f "$SCR_TMP/$1.pcap"
	ip netns exec "$LAN" timeout 600 tcpdump --immediate-mode -Q in -i lh -s 0 -B 32768 -U -n \
		-w "$SCR_TMP/$1.pcap" 2> "$SCR_TMP/$1.tcpdump.log" &
	CAP_PID=$!
	CAP_NAME=$1
	scr_wait_for grep -q "listening on" "$SCR_TMP/$1.tcpdump.log"
}

capture_stop() {
	_scr_size=-1 _scr_still=0
	scr_wait_for _scr_settled "$SCR_TMP/$CAP_NAME.pcap"
	kill -INT "$CAP_PID" 2>/dev/null
	wait "$CAP_PID" 2>/dev/null
	tcpdump -e -n -r "$SCR_TMP/$CAP_NAME.pcap" > "$SCR_TMP/$CAP_NAME.txt" 2>/dev/null
	# "N packets dropped by kernel", printed when tcpdump exits.
	CAP_DROPPED=$(awk '/dropped by kernel/ { print $1 }' "$SCR_TMP/$CAP_NAME.tcpdump.log")
	((${CAP_DROPPED:-0} == 0)) || scr_diag "capture $CAP_NAME: ${CAP_DROPPED} frames dropped by the kernel"
}

# ---------------------------------------------------------------- cases

FLOW_IPS=()
pool_is_made() {
	start_daemon --policy flow --pool 8 || return 1
	local macs
	macs=$(pseudonyms | awk '{ print $2 }')
	(($(sort -u <<< "$macs" | wc -l) == $(wc -l <<< "$macs"))) ||
		scr_fail "two pseudonyms share a MAC: $macs" || return
	grep -qv '^.[26ae]:' <<< "$macs" &&
		{ scr_fail "a MAC is not locally administered unicast: $macs"; return; }
	pseudonyms | awk '$3 !~ /^10\.10\.0\./ || $4 !~ /^2001:db8:10:/' | grep -q . &&
		{ scr_fail "an address outside the range or prefix: $(pseudonyms)"; return; }
	ctl status | sed 's/^/# /'
}

flows_leave_from_distinct_pseudonyms() {
	local port ip out
	capture identity
	for port in "${PORTS[@]:0:4}"; do
		out=$(in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "$port" 10000) ||
			{ scr_fail "flow to 10.20.0.2:$port: $out"; return; }
		FLOW_IPS+=("$out")
	done
	for port in "${PORTS[@]:4:2}"; do
		out=$(in_cgroup "$CG" python3 "$PEER" send 2001:db8:20::2 "$port" 10000) ||
			{ scr_fail "flow to [2001:db8:20::2]:$port: $out"; return; }
		FLOW_IPS+=("$out")
	done
	capture_stop
	scr_diag "6 flows left from ${FLOW_IPS[*]}"
	(($(printf '%s\n' "${FLOW_IPS[@]}" | sort -u | wc -l) == 6)) ||
		scr_fail "6 flows, fewer distinct source addresses: ${FLOW_IPS[*]}" || return
	for ip in "${FLOW_IPS[@]}"; do
		pseudonyms | grep -qw -- "$ip" || scr_fail "flow source $ip is no pseudonym's" || return
	done
}

wire_shows_one_mac_per_pseudonym() {
	local ip macs flow_macs=() n
	python3 "$WIRE" pairs "$SCR_TMP/identity.txt" > "$SCR_TMP/identity.pairs"
	((${#FLOW_IPS[@]})) || scr_fail "no flows to look for" || return
	for ip in "${FLOW_IPS[@]}"; do
		macs=$(awk -v ip="$ip" '$1 == ip { print $2 }' "$SCR_TMP/identity.pairs")
		n=$(grep -c . <<< "$macs")
		((n == 1)) || scr_fail "pseudonym $ip seen with $n MACs: $macs" || return
		flow_macs+=("$macs")
	done
	# Every source IP on the wire, pseudonym or not, with one MAC only.
	n=$(awk '{ print $1 }' "$SCR_TMP/identity.pairs" | sort | uniq -d | wc -l)
	((n == 0)) || scr_fail "IPs with several MACs: $(awk '{ print $1 }' "$SCR_TMP/identity.pairs" | sort | uniq -d)" || return
	(($(printf '%s\n' "${flow_macs[@]}" | sort -u | wc -l) == ${#FLOW_IPS[@]})) ||
		scr_fail "flows share a MAC: ${flow_macs[*]}" || return
	if grep -qi -- "$REAL_MAC" "$SCR_TMP/identity.txt"; then
		scr_fail "the real MAC $REAL_MAC is on the wire: $(grep -i -- "$REAL_MAC" "$SCR_TMP/identity.txt" | head -n 3)"
		return
	fi
	scr_diag "$(wc -l < "$SCR_TMP/identity.txt") frames, $(wc -l < "$SCR_TMP/identity.pairs") (IP, MAC) pairs, real MAC absent"
}

closed_port_is_refused() {
	local out
	out=$(in_cgroup "$CG" python3 "$PEER" probe 10.20.0.2 9999 5)
	[[ $out == refused ]] || scr_fail "IPv4 closed port: $out, expected refused" || return
	out=$(in_cgroup "$CG" python3 "$PEER" probe 2001:db8:20::2 9999 5)
	[[ $out == refused ]] || scr_fail "IPv6 closed port: $out, expected refused"
}

# hops NS|cgroup ADDR: traceroute's hop addresses to ADDR (UDP to port
# 53: one flow, one pseudonym, for every probe).
hops() {
	local run=(ip netns exec "$1")
	[[ $1 == cgroup ]] && run=(in_cgroup "$CG")
	"${run[@]}" traceroute -U -n -q 1 -w 2 -m 5 "$2" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $2 }' | tr '\n' ' '
}

traceroute_as_on_the_reference() {
	local addr got want
	for addr in 10.20.0.2 2001:db8:20::2; do
		got=$(hops cgroup "$addr")
		want=$(hops "$F" "$addr")
		scr_diag "traceroute $addr: pseudonym: $got; reference: $want"
		[[ -n $want && $got == "$want" ]] || scr_fail "traceroute to $addr differs" || return
	done
}

pmtu_through_the_1280_hop() {
	local addr out ns
	for addr in 10.20.0.2 2001:db8:20::2; do
		out=$(in_cgroup "$CG" python3 "$PEER" send "$addr" "${PORTS[0]}" 1000000) ||
			{ scr_fail "1 MB to $addr through the 1280-byte hop: $out"; return; }
		ip -n "$H" route get "$addr" from "$out" | grep -q 'mtu 1280' ||
			scr_fail "no PMTU 1280 learnt for $addr from $out: $(ip -n "$H" route get "$addr" from "$out")" || return
		ns=$(ip netns exec "$F" timeout 60 python3 "$PEER" send "$addr" "${PORTS[0]}" 1000000) ||
			scr_fail "the reference host's 1 MB to $addr: $ns" || return
	done
}

inbound_scan_gets_nothing() {
	local ip4 ip6 out port before
	ip4=$(pseudonyms | awk 'NR == 1 { print $3 }')
	ip6=$(pseudonyms | awk 'NR == 1 { print $4 }')
	rm -f "$SCR_TMP/host.ready"
	ip netns exec "$H" timeout 300 python3 "$PEER" serve "$SCR_TMP/host.ready" 7000 2>/dev/null &
	scr_wait_for test -e "$SCR_TMP/host.ready" || scr_fail "the host's server did not start" || return
	before=$(counter inbound_dropped)
	for port in 22 80 7000 9999; do
		for addr in "$ip4" "$ip6"; do
			out=$(ip netns exec "$F" timeout 10 python3 "$PEER" probe "$addr" "$port" 1)
			[[ $out == timeout ]] || scr_fail "scan of $addr port $port: $out, expected no answer" || return
		done
	done
	ip netns exec "$F" ping -c 1 -W 1 "$ip4" >/dev/null && { scr_fail "$ip4 answers ping"; return; }
	ip netns exec "$F" ping -c 1 -W 1 "$ip6" >/dev/null && { scr_fail "$ip6 answers ping"; return; }
	out=$(ip netns exec "$F" timeout 10 python3 "$PEER" probe 10.10.0.2 7000 5)
	[[ $out == connected ]] || scr_fail "the default address does not serve: $out" || return
	(($(counter inbound_dropped) > before)) || scr_fail "inbound_dropped did not grow"
}

link_chatter_is_arp_nd_mld_only() {
	local other
	capture chatter
	sleep 5 # the idle window the observer watches
	capture_stop
	other=$(python3 "$WIRE" chatter "$SCR_TMP/chatter.txt")
	scr_diag "idle 5 s: $(wc -l < "$SCR_TMP/chatter.txt") frames from the host"
	[[ -z $other ]] || scr_fail "unasked frames other than ARP/ND/MLD: $(head -n 3 <<< "$other")"
}

runs_per_connect_not_per_packet() {
	local c4 c6 s4 s6 made closed packets i t_on t_off
	c4=$(counter run_connect4) c6=$(counter run_connect6)
	s4=$(counter run_sendmsg4) s6=$(counter run_sendmsg6)
	made=$(counter run_sock_create) closed=$(counter run_sock_release)
	packets=$(ip -n "$H" -s link show up0 | awk '/TX:/ { getline; print $2 }')
	for i in 1 2 3; do
		in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "${PORTS[1]}" 200000 >/dev/null ||
			scr_fail "connect $i failed" || return
	done
	in_cgroup "$CG" python3 "$PEER" send 2001:db8:20::2 "${PORTS[1]}" 200000 >/dev/null ||
		scr_fail "IPv6 connect failed" || return
	in_cgroup "$CG" python3 "$PEER" udp 10.20.0.2 5353 7 || scr_fail "UDP sends failed" || return
	in_cgroup "$CG" python3 "$PEER" udp 2001:db8:20::2 5353 5 || scr_fail "UDP sends failed" || return
	made=$(($(counter run_sock_create) - made)) closed=$(($(counter run_sock_release) - closed))
	scr_diag "runs: connect4 +$(($(counter run_connect4) - c4)) connect6 +$(($(counter run_connect6) - c6))" \
		"sendmsg4 +$(($(counter run_sendmsg4) - s4)) sendmsg6 +$(($(counter run_sendmsg6) - s6))" \
		"sock_create +$made sock_release +$closed"
	((made == 6 && closed == 6)) ||
		scr_fail "socket programs ran other than once per socket made and closed (6)" || return
	(($(counter run_connect4) - c4 == 3 && $(counter run_connect6) - c6 == 1)) ||
		scr_fail "connect programs ran other than once per connect (3 IPv4, 1 IPv6)" || return
	(($(counter run_sendmsg4) - s4 == 7 && $(counter run_sendmsg6) - s6 == 5)) ||
		scr_fail "sendmsg programs ran other than once per send (7 IPv4, 5 IPv6)" || return
	# The cost, with and without, interleaved: connect time (microseconds,
	# mean of 50) and a 20 MB upload's time.
	for i in 1 2; do
		t_on=$(in_cgroup "$CG" python3 "$PEER" connects 10.20.0.2 "${PORTS[2]}" 50)
		t_off=$(ip netns exec "$H" timeout 120 python3 "$PEER" connects 10.20.0.2 "${PORTS[2]}" 50)
		scr_diag "round $i: connect $t_on us with pseudonyms, $t_off us without"
	done
	for i in 1 2; do
		t_on=$(date +%s%N)
		in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "${PORTS[3]}" 20000000 >/dev/null
		t_on=$((($(date +%s%N) - t_on) / 1000000))
		t_off=$(date +%s%N)
		ip netns exec "$H" timeout 120 python3 "$PEER" send 10.20.0.2 "${PORTS[3]}" 20000000 >/dev/null
		t_off=$((($(date +%s%N) - t_off) / 1000000))
		scr_diag "round $i: 20 MB in $t_on ms with pseudonyms, $t_off ms without"
	done
	scr_diag "the host sent $(($(ip -n "$H" -s link show up0 | awk '/TX:/ { getline; print $2 }') - packets)) packets on up0 meanwhile"
}

# has_free N: the pool has at least N pseudonyms no socket has taken.
has_free() {
	(($(free_left) >= $1))
}

# echo_from N ADDR HOW [ADDR HOW]...: echoes (peer.py echo) from the
# cgroup, one socket each, once the pool has N free pseudonyms (a ping
# socket that connects takes one at creation and may take one more at
# connect); prints the address each reply came to, one per line.
echo_from() {
	scr_wait_for -t 60 has_free "$1" || { echo "error pool-empty"; return; }
	shift
	in_cgroup "$CG" python3 "$PEER" echo "$@"
}

# is_pseudonym_pair IP MAC: IP is a pseudonym's address and MAC its MAC.
is_pseudonym_pair() {
	pseudonyms | awk -v ip="$1" -v mac="$2" '($3 == ip || $4 == ip) && tolower($2) == tolower(mac) { f = 1 }
		END { exit !f }'
}

# ICMP sockets.  Ping sockets that connect() go through connect4 and
# connect6 like TCP and UDP: under the per-flow policy the key is the
# paper's (icmp, dst).  An unconnected ping socket and a raw ICMP socket
# pass no sock_addr hook: sock_create ties each to a pseudonym's device
# when it is made (no destination known yet: a pseudonym of its own), and
# its echoes leave from that pseudonym.  So do iputils ping's, over a ping
# socket and over a raw one.  Every echo request on the wire comes from a
# pseudonym's (IP, MAC) pair; none from the default address.
icmp_sockets_get_pseudonyms() {
	local a b c d v6 un raw raw6 c4 c6 applied bound out ip mac n
	ip netns exec "$H" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
	c4=$(counter run_connect4) c6=$(counter run_connect6) applied=$(counter applied)
	bound=$(counter device_bound)
	capture echo
	# three batches the pool of 8 can serve without refilling meanwhile
	{ read -r a; read -r b; read -r c; } < <(echo_from 5 10.20.0.2 connect 10.20.0.2 connect 10.10.0.1 connect)
	{ read -r v6; read -r d; read -r un; } < <(echo_from 4 2001:db8:20::2 connect 2001:db8:20::2 connect 10.20.0.2 sendto)
	{ read -r raw; read -r raw6; } < <(echo_from 2 10.20.0.2 raw 2001:db8:20::2 raw)
	c4=$(($(counter run_connect4) - c4)) c6=$(($(counter run_connect6) - c6))
	applied=$(($(counter applied) - applied)) bound=$(($(counter device_bound) - bound))
	scr_wait_for -t 30 has_free 2
	in_cgroup "$CG" ping -4 -c 1 -W 5 10.20.0.2 > "$SCR_TMP/ping-dgram.out" 2>&1 ||
		scr_fail "iputils ping over a ping socket: $(cat "$SCR_TMP/ping-dgram.out")" || return
	# Outside ping_group_range, root's ping takes a raw socket.
	ip netns exec "$H" sysctl -qw net.ipv4.ping_group_range="1 0"
	scr_wait_for -t 30 has_free 2
	in_cgroup "$CG" ping -4 -c 1 -W 5 10.20.0.2 > "$SCR_TMP/ping-raw.out" 2>&1 ||
		scr_fail "iputils ping over a raw socket: $(cat "$SCR_TMP/ping-raw.out")" || return
	ip netns exec "$H" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
	capture_stop
	scr_diag "echo to 10.20.0.2 from $a, $b; to 10.10.0.1 $c; to 2001:db8:20::2 $v6, $d;" \
		"unconnected $un; raw $raw, $raw6"
	for out in "$a" "$b" "$c" "$v6" "$d" "$un" "$raw" "$raw6"; do
		[[ $out != error* ]] || scr_fail "an echo got no reply: $out" || return
	done
	[[ $a == "$b" && $v6 == "$d" ]] || scr_fail "the same destination, another pseudonym" || return
	[[ $a != "$c" ]] || scr_fail "two destinations share $a" || return
	[[ $a != "${FLOW_IPS[0]}" ]] || scr_fail "ICMP to 10.20.0.2 shares the TCP flow's $a" || return
	n=$(printf '%s\n' "$a" "$c" "$un" "$raw" | sort -u | wc -l)
	((n == 4)) || scr_fail "a connected, an unconnected and a raw socket share pseudonyms" || return
	[[ $v6 != "$raw6" ]] || scr_fail "two IPv6 ICMP sockets share $v6" || return
	for out in "$a" "$c" "$un" "$raw"; do
		pseudonyms | awk -v a="$out" '$3 == a { f = 1 } END { exit !f }' ||
			scr_fail "an echo's reply came to $out, no pseudonym's IPv4 address" || return
	done
	for out in "$v6" "$raw6"; do
		pseudonyms | awk -v a="$out" '$4 == a { f = 1 } END { exit !f }' ||
			scr_fail "an echo's reply came to $out, no pseudonym's IPv6 address" || return
	done
	((c4 == 3 && c6 == 2)) ||
		scr_fail "the connect programs ran $c4 and $c6 times, not once per connected ping socket (3, 2)" || return
	((applied == 5)) || scr_fail "applied grew by $applied, not 5" || return
	# five connected, one unconnected and two raw sockets
	((bound == 8)) || scr_fail "device_bound grew by $bound, not 8" || return
	# On the wire: every echo request from a pseudonym's (IP, MAC) pair.
	grep "echo request" "$SCR_TMP/echo.txt" | sed 's/^/# /'
	n=0
	while read -r mac ip; do
		is_pseudonym_pair "$ip" "$mac" || scr_fail "an echo request from $ip with $mac: no pseudonym's pair" || return
		n=$((n + 1))
	done < <(awk '/echo request/ { for (i = 3; i < NF; i++)
		if ($i == "length" && $(i + 1) ~ /^[0-9]+:$/) { print $2, $(i + 2); break } }' \
		"$SCR_TMP/echo.txt")
	((n >= 10)) || scr_fail "$n echo requests on the wire, not at least 10" || return
	! grep -qiE "^\S+ $REAL_MAC .*echo request" "$SCR_TMP/echo.txt" ||
		scr_fail "an echo request left with the real MAC"
}

egress_guard_counts_nothing() {
	local n f
	n=$(counter egress_mismatch) f=$(counter egress_forged)
	((n == 0)) || scr_fail "the egress guard (nftables, IP and device) dropped $n packets" || return
	((f == 0)) || scr_fail "the egress guard (MAC and address) dropped $f frames"
}

# forge KIND MAC SRC DST [PORT]: one hand-made frame from the host's uplink.
forge() {
	ip netns exec "$H" timeout 10 python3 "$PEER" forge up0 "$@"
}

# The egress guard on the uplink drops and counts frames whose Ethernet
# source and IP (or ARP sender) address are not one pseudonym's, sent
# through a packet socket on the uplink; a frame with a pseudonym's own
# pair, sent the same way, passes.
forged_frames_are_dropped_and_counted() {
	local mac1 ip1 mac2 ip2 ip6_2 before n leaked sent
	read -r _ mac1 ip1 _ < <(pseudonyms | sed -n 1p)
	read -r _ mac2 ip2 ip6_2 < <(pseudonyms | sed -n 2p)
	[[ -n $ip1 && -n $ip6_2 ]] || scr_fail "not two pseudonyms: $(pseudonyms)" || return
	before=$(counter egress_forged)
	capture forged
	# 1's own pair; 1's MAC, 2's IP; the real MAC, 1's IP; 1's MAC, the
	# default IP; 1's MAC, 2's IPv6; 2's MAC, 1's IP as ARP sender.
	sent=$(forge udp "$mac1" "$ip1" 10.20.0.2 9101
		forge udp "$mac1" "$ip2" 10.20.0.2 9102
		forge udp "$REAL_MAC" "$ip1" 10.20.0.2 9103
		forge udp "$mac1" 10.10.0.2 10.20.0.2 9104
		forge udp "$mac1" "$ip6_2" 2001:db8:20::2 9105
		forge arp "$mac2" "$ip1" 10.10.0.1)
	capture_stop
	sent=$(tr '\n' ' ' <<< "$sent")
	n=$(($(counter egress_forged) - before))
	scr_diag "forged 6 frames, the first with a pseudonym's own pair: $sent; egress_forged +$n"
	[[ $sent == "sent dropped dropped dropped dropped dropped " ]] ||
		scr_fail "the packet socket sends: $sent, expected the first sent, the others dropped (ENOBUFS)" || return
	grep -E '\.9101: UDP' "$SCR_TMP/forged.txt" | sed 's/^/# /'
	grep -qE "^\S+ $mac1 > .* $ip1\.9101 > 10\.20\.0\.2\.9101: UDP" "$SCR_TMP/forged.txt" ||
		scr_fail "the frame with a pseudonym's own pair did not leave: the observer cannot see forged frames" || return
	leaked=$(grep -E "\.910[2-5]: UDP|^\S+ $mac2 > .*tell $ip1," "$SCR_TMP/forged.txt")
	[[ -z $leaked ]] || scr_fail "forged frames reached the LAN: $leaked" || return
	((n == 5)) || scr_fail "egress_forged grew by $n, not 5"
}

applications_never_share() {
	local a b c d
	stop_daemon
	start_daemon --policy application --pool 4 || return 1
	a=$(in_cgroup "$CG/app1" python3 "$PEER" send 10.20.0.2 "${PORTS[0]}" 1000)
	b=$(in_cgroup "$CG/app2" python3 "$PEER" send 10.20.0.2 "${PORTS[0]}" 1000)
	c=$(in_cgroup "$CG/app1" python3 "$PEER" send 10.20.0.2 "${PORTS[1]}" 1000)
	d=$(in_cgroup "$CG/app2" python3 "$PEER" send 10.20.0.2 "${PORTS[2]}" 1000)
	scr_diag "app1: $a $c; app2: $b $d"
	[[ $a == "$c" && $b == "$d" ]] || scr_fail "an application changed pseudonym" || return
	[[ $a != "$b" ]] || scr_fail "app1 and app2 share $a" || return
	if ! pseudonyms | grep -qw -- "$a" || ! pseudonyms | grep -qw -- "$b"; then
		scr_fail "$a or $b is no pseudonym's"
		return
	fi
	ctl status > "$SCR_TMP/status"
	if ! grep -q "cgroup $CG/app1\$" "$SCR_TMP/status" || ! grep -q "cgroup $CG/app2\$" "$SCR_TMP/status"; then
		scr_fail "stackvirtctl status does not name both applications: $(cat "$SCR_TMP/status")"
	fi
}

# A socket the application bound, and a socket of another namespace in the
# cgroup, keep their addresses.
bound_and_foreign_sockets_left_alone() {
	local bound foreign out
	bound=$(counter explicit_bind) foreign=$(counter other_netns)
	out=$(in_cgroup "$CG" python3 "$PEER" bound 10.10.0.2 10.20.0.2 "${PORTS[0]}")
	[[ $out == 10.10.0.2 ]] || scr_fail "a socket bound to 10.10.0.2 left from $out" || return
	out=$(bash -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' _ "$CG" \
		ip netns exec "$F" timeout 60 python3 "$PEER" send 10.20.0.2 "${PORTS[0]}" 1000)
	[[ $out == 10.10.0.3 ]] || scr_fail "the reference namespace's socket left from $out" || return
	(($(counter explicit_bind) == bound + 1)) || scr_fail "explicit_bind did not count 1" || return
	(($(counter other_netns) == foreign + 1)) || scr_fail "other_netns did not count 1"
}

# retired DEVICE: the daemon's state no longer has DEVICE.
retired() {
	! grep -q "\"$1\"" "$STATE"
}

# held_device: the pseudonym taken with an open socket, if any.
held_device() {
	ctl status | awk '$1 ~ /^svp/ && $5 > 0 && $7 > 0 { print $1; f = 1 } END { exit !f }'
}

# A taken pseudonym whose last socket closed is retired: its device, its
# rules and its entry in the maps go.
idle_pseudonym_is_retired() {
	local dev i
	stop_daemon
	start_daemon --policy flow --pool 2 --retire-after 2 || return 1
	in_cgroup "$CG" python3 "$PEER" udp 10.20.0.2 5353 1 || scr_fail "the UDP send failed" || return
	dev=$(ctl status | awk '$1 ~ /^svp/ && $5 > 0 { print $1 }')
	[[ -n $dev ]] || scr_fail "no pseudonym was taken" || return
	scr_wait_for -t 30 retired "$dev" ||
		scr_fail "$dev was not retired: $(ctl status)" || return
	! ip -n "$H" link show "$dev" 2>/dev/null || scr_fail "$dev is still there" || return
	! ip -n "$H" rule | grep -q "lookup 1000${dev#svp}\b" || scr_fail "the rules of $dev are still there" || return
	scr_diag "$dev retired 2 s after its socket closed"
	# An ICMP socket tied to a pseudonym's device has no address to find in
	# /proc/net: the programs count it, and the pseudonym outlives 2 s of
	# pings from a raw socket, then goes once the socket has closed.
	ip netns exec "$H" sysctl -qw net.ipv4.ping_group_range="1 0"
	scr_wait_for -t 30 has_free 1 || scr_fail "the pool did not refill" || return
	in_cgroup "$CG" ping -4 -c 8 -i 1 -W 2 10.20.0.2 > "$SCR_TMP/ping-long.out" 2>&1 &
	dev=
	for ((i = 0; i < 40 && ${#dev} == 0; i++)); do
		dev=$(held_device) || sleep 0.25
	done
	[[ -n $dev ]] || scr_fail "no pseudonym shows the ping's socket: $(ctl status)" || return
	wait $! || scr_fail "ping under a held pseudonym: $(cat "$SCR_TMP/ping-long.out")" || return
	ip netns exec "$H" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
	grep -q " 8 received" "$SCR_TMP/ping-long.out" ||
		scr_fail "not every echo answered: $(grep received "$SCR_TMP/ping-long.out")" || return
	scr_wait_for -t 30 retired "$dev" || scr_fail "$dev was not retired after the ping: $(ctl status)" || return
	scr_diag "$dev served a 7 s ping from a raw socket, then retired"
}

# dhcp_server: dnsmasq as the LAN's DHCP server on the router, logging;
# its pid in DHCP_SERVER.
DHCP_SERVER=
dhcp_server() {
	rm -f "$SCR_TMP/dnsmasq.leases" "$SCR_TMP/dnsmasq.pid"
	ip netns exec "$R" timeout 600 dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
		--user=root --interface=r0 --bind-interfaces --no-ping --log-dhcp \
		--log-facility="$SCR_TMP/dnsmasq.log" --dhcp-leasefile="$SCR_TMP/dnsmasq.leases" \
		--dhcp-range=10.10.0.200,10.10.0.249,255.255.255.0,10m --dhcp-option=option:router,10.10.0.1 \
		--pid-file="$SCR_TMP/dnsmasq.pid" 2> "$SCR_TMP/dnsmasq.err" &
	DHCP_SERVER=$!
	scr_wait_for -t 10 test -s "$SCR_TMP/dnsmasq.pid" || { scr_fail "dnsmasq did not start: $(cat "$SCR_TMP/dnsmasq.err")"; return 1; }
}

# leases: the leases dnsmasq holds now, "MAC IP CLIENT-ID" lines.
leases() {
	awk '{ print $2, $3, $5 }' "$SCR_TMP/dnsmasq.leases" 2>/dev/null
}

# leases_are N: dnsmasq holds N leases.
leases_are() {
	(($(leases | grep -c .) == $1))
}

# acks_at_least N: dnsmasq has sent N DHCPACKs or more.
acks_at_least() {
	(($(grep -c "DHCPACK(" "$SCR_TMP/dnsmasq.log") >= $1))
}

# Each pseudonym leases its IPv4 address from the link's DHCP server
# (dnsmasq on the router) as a client of its own, with RFC 7844's
# anonymity profile: only message type, parameter list and client
# identifier (its own MAC), plus the offer's address and server when
# selecting.  Leases held = pseudonyms alive; at --max-leases a taken
# pseudonym is not replaced until it retires; a flow leaves from its
# pseudonym's leased address; a restart renews the leases it adopts; a
# retired pseudonym's lease, and at exit every lease, is released.
dhcp_leases_are_anonymous() {
	local dev src n audit held adopted acks rc=0
	stop_daemon
	local dnsmasq
	dhcp_server || return 1
	dnsmasq=$DHCP_SERVER
	capture dhcp
	# The pool of 2 is also the cap: a pseudonym taken by a flow is not
	# replaced until it retires.
	start_daemon --ipv4-dhcp --max-leases 2 --retire-after 5 --policy flow --pool 2 ||
		{ kill "$dnsmasq"; return 1; }
	pseudonyms | awk '$3 !~ /^10\.10\.0\.2[0-4][0-9]$/' | grep -q . &&
		{ scr_fail "an IPv4 address not from the DHCP range: $(pseudonyms)"; kill "$dnsmasq"; return 1; }
	scr_wait_for -t 10 leases_are 2 || scr_fail "dnsmasq holds $(leases | grep -c .) leases, want 2: $(leases)" || rc=1
	src=$(in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "${PORTS[0]}" 1000) ||
		scr_fail "a flow with a leased address: $src" || rc=1
	pseudonyms | awk -v a="$src" '$3 == a' | grep -q . || scr_fail "the flow left from $src, no pseudonym's lease" || rc=1
	dev=$(pseudonyms | awk -v a="$src" '$3 == a { print $1 }')
	# Time for a daemon without the cap to make a third (it takes one to
	# two seconds), before the taken one may retire (5 s after its close).
	sleep 3
	grep -q "holding 2 leases, the cap" "$SCR_TMP/stackvirtd.log" ||
		scr_fail "the daemon did not say it holds the cap of 2 leases" || rc=1
	(($(pseudonyms | wc -l) == 2)) || scr_fail "want 2 pseudonyms at the cap: $(pseudonyms)" || rc=1
	leases_are 2 || scr_fail "leases $(leases | tr '\n' ' ') at the cap of 2" || rc=1
	leases | while read -r m a id; do
		pseudonyms | awk -v m="$m" -v a="$a" '$2 == m && $3 == a' | grep -q . || echo "lease $a to $m is no pseudonym's"
		[[ $id == "01:$m" ]] || echo "lease $a: client id $id, want 01:$m"
	done > "$SCR_TMP/leases.bad"
	[[ ! -s $SCR_TMP/leases.bad ]] || scr_fail "$(cat "$SCR_TMP/leases.bad")" || rc=1
	# The flow's pseudonym retires: its lease goes back.
	[[ -z $dev ]] || scr_wait_for -t 30 retired "$dev" || scr_fail "$dev was not retired" || rc=1
	# Below the cap again: a new pseudonym with a new lease.
	scr_wait_for -t 30 pool_has 2 || scr_fail "no new pseudonym after the retirement: $(pseudonyms)" || rc=1
	# A restart renews each lease it adopts at once (RFC 2131's RENEWING:
	# unicast to the server, ciaddr set, no requested address option; the
	# audit below checks the options): the same leases, acknowledged again.
	held=$(leases | sort)
	adopted=$(grep -c "adopted [1-9][0-9]* pseudonyms" "$SCR_TMP/stackvirtd.log")
	acks=$(grep -c "DHCPACK(" "$SCR_TMP/dnsmasq.log")
	signal_daemon USR1
	KEEP_STATE=1 start_daemon --ipv4-dhcp --max-leases 2 --retire-after 5 --policy flow --pool 2 ||
		{ kill "$dnsmasq"; return 1; }
	scr_wait_for -t 30 adoptions_are $((adopted + 1)) || scr_fail "no adoption: $(tail -n 3 "$SCR_TMP/stackvirtd.log")" || rc=1
	scr_wait_for -t 20 acks_at_least $((acks + 2)) ||
		scr_fail "$(($(grep -c "DHCPACK(" "$SCR_TMP/dnsmasq.log") - acks)) DHCPACKs after the restart, want 2 renewals" || rc=1
	[[ $(leases | sort) == "$held" ]] || scr_fail "the leases changed across the restart: $(leases | tr '\n' ' ')" || rc=1
	n=$(pseudonyms | wc -l)
	stop_daemon
	scr_wait_for -t 10 leases_are 0 || scr_fail "leases left after the daemon stopped: $(leases)" || rc=1
	capture_stop
	kill "$dnsmasq" 2>/dev/null
	wait "$dnsmasq" 2>/dev/null
	audit=$(python3 "$HERE/stackvirt/dhcp.py" audit "$SCR_TMP/dhcp.pcap" "$REAL_MAC") || scr_fail "$(grep problem <<< "$audit")" || rc=1
	scr_diag "DHCP client messages: $(tr '\n' ' ' <<< "$audit"); $n pseudonyms at the end"
	scr_diag "DISCOVER to ACK, ms: $(grep -o 'leased .* in [0-9]* ms' "$SCR_TMP/stackvirtd.log" | awk '{ print $(NF - 1) }' | tr '\n' ' ')"
	grep -q "^RELEASE $((n + 1))$" <<< "$audit" || scr_fail "want $((n + 1)) DHCPRELEASE (one retired, $n at exit)" || rc=1
	grep -q "^REQUEST-renewing [2-9]$" <<< "$audit" || scr_fail "want 2 DHCPREQUESTs renewing (the restart's)" || rc=1
	! grep -Ei 'client provides name|vendor class|user class' "$SCR_TMP/dnsmasq.log" ||
		scr_fail "dnsmasq saw identifying options" || rc=1
	return $rc
}

# resolve CGROUP [udp|tcp]: the address of www.svtest.example as the
# process in CGROUP gets it from the stub at 127.0.0.53: glibc's resolver
# (getent, a connected UDP socket; with "tcp", over TCP: `options
# use-vc`), or with "udp" a bare query sent unconnected (sendto), whose
# answer's first A record is printed.
resolve() {
	if [[ ${2:-} == udp ]]; then
		in_cgroup "$1" python3 -c '
import socket, struct
q = struct.pack(">HHHHHH", 0x5e5e, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l for l in b"www.svtest.example".split(b".")) + b"\0"
q += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(q, ("127.0.0.53", 53))
a, _ = s.recvfrom(4096)
assert a[:2] == q[:2] and a[3] & 15 == 0, a
print(socket.inet_ntoa(a[-4:]))'
		return
	fi
	# `ip netns exec` gives the command a mount namespace of its own.
	in_cgroup "$1" sh -c 'mount --bind "$0" /etc/resolv.conf && exec getent ahostsv4 www.svtest.example' \
		"$SCR_TMP/resolv${2:+-$2}.conf" | awk 'NR == 1 { print $1 }'
}

# asked_from: the source of each query for www.svtest.example that the
# network's resolver logged, in order, one per line.
asked_from() {
	grep -o 'query\[A\] www\.svtest\.example from [0-9.]*' "$SCR_TMP/dns.log" | awk '{ print $NF }'
}

# DNS kept with its flow (the paper's section 4.3): stackvirtd as the
# host's stub resolver (--dns-upstream), dnsmasq on the router as the
# network's resolver, logging each query with its source.  Under
# `application`, two applications resolve one name, through glibc (over
# UDP and TCP) and with a bare unconnected query, and connect to the
# answer: each query
# leaves from its application's pseudonym, the one its connection then
# uses, and each asks the network itself (no cache shared); a process
# outside the cgroup asks from the host's address.  Under `flow`, an
# application's queries share a pseudonym of their own, apart from its
# flows and from another application's queries.
dns_kept_with_its_application() {
	local a1 a2 b1 c x y got want rc=0
	stop_daemon
	printf 'nameserver 127.0.0.53\noptions timeout:5 attempts:1\n' > "$SCR_TMP/resolv.conf"
	printf 'nameserver 127.0.0.53\noptions timeout:5 attempts:1 use-vc\n' > "$SCR_TMP/resolv-tcp.conf"
	rm -f "$SCR_TMP/dns.log" "$SCR_TMP/dns.pid"
	ip netns exec "$R" timeout 600 dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root \
		--no-resolv --no-hosts --listen-address=10.10.0.1 --bind-interfaces --log-queries \
		--log-facility="$SCR_TMP/dns.log" --host-record=www.svtest.example,10.20.0.2 \
		--pid-file="$SCR_TMP/dns.pid" 2> "$SCR_TMP/dns.err" &
	local dnsmasq=$!
	scr_wait_for -t 10 test -s "$SCR_TMP/dns.pid" || { scr_fail "dnsmasq did not start: $(cat "$SCR_TMP/dns.err")"; return 1; }
	start_daemon --policy application --pool 4 --dns-upstream 10.10.0.1:53 ||
		{ kill "$dnsmasq"; return 1; }
	got=$(resolve "$CG/app1")/$(resolve "$CG/app2")/$(resolve "$CG/app1" udp)/$(resolve "$CG/app2" udp)
	got+=/$(resolve "$CG/app1" tcp)
	[[ $got == 10.20.0.2/10.20.0.2/10.20.0.2/10.20.0.2/10.20.0.2 ]] ||
		{ scr_fail "the applications resolved $got, want 10.20.0.2 five times: $(ctl counters | grep dns)"; kill "$dnsmasq"; return 1; }
	a1=$(in_cgroup "$CG/app1" python3 "$PEER" send 10.20.0.2 "${PORTS[0]}" 1000)
	b1=$(in_cgroup "$CG/app2" python3 "$PEER" send 10.20.0.2 "${PORTS[0]}" 1000)
	# A process of the host outside the cgroup: its query is no pseudonym's.
	ip netns exec "$H" sh -c 'mount --bind "$0" /etc/resolv.conf && exec getent ahostsv4 www.svtest.example' \
		"$SCR_TMP/resolv.conf" > /dev/null || scr_fail "a resolution outside the cgroup failed" || rc=1
	want="$a1 $b1 $a1 $b1 $a1 10.10.0.2"
	got=$(asked_from | tr '\n' ' ')
	scr_diag "queries from: $got; app1 connects from $a1, app2 from $b1"
	[[ ${got% } == "$want" ]] || scr_fail "the queries left from $got, want $want" || { kill "$dnsmasq"; return 1; }
	# The daemon publishes the stub's counters within a round of its loop.
	scr_wait_for -t 10 ctl_counter_is dns_stub_answered 6
	ctl counters > "$SCR_TMP/counters"
	for x in "dns_tagged 5" "dns_untagged 0" "dns_stub_queries 6" "dns_stub_tagged 5" "dns_stub_untagged 1" \
		"dns_stub_answered 6" "dns_stub_timeouts 0" "dns_stub_malformed 0" "dns_stub_bad_answers 0"; do
		grep -qx "$x" "$SCR_TMP/counters" || scr_fail "want $x: $(grep dns "$SCR_TMP/counters" | tr '\n' ' ')" || rc=1
	done
	# flow: a query is no flow of what it serves; an application's queries
	# share a pseudonym of their own, apart from its flows.
	stop_daemon
	: > "$SCR_TMP/dns.log"
	start_daemon --policy flow --pool 4 --dns-upstream 10.10.0.1:53 || { kill "$dnsmasq"; return 1; }
	c=$(resolve "$CG/app1")/$(resolve "$CG/app1")/$(resolve "$CG/app2")
	a1=$(in_cgroup "$CG/app1" python3 "$PEER" send 10.20.0.2 "${PORTS[1]}" 1000)
	[[ $c == 10.20.0.2/10.20.0.2/10.20.0.2 ]] || scr_fail "under flow, the applications resolved $c" || rc=1
	read -r x y z < <(asked_from | tr '\n' ' ')
	scr_diag "under flow: app1 asked from $x and $y, app2 from $z; app1's flow left from $a1"
	pseudonyms | awk -v a="$x" '$3 == a' | grep -q . || scr_fail "a query under flow left from $x, no pseudonym's" || rc=1
	[[ $x == "$y" && -n $z && $z != "$x" && $a1 != "$x" ]] ||
		scr_fail "under flow: app1's queries from $x and $y, app2's from $z, app1's flow from $a1" || rc=1
	kill "$dnsmasq" 2>/dev/null
	wait "$dnsmasq" 2>/dev/null
	return $rc
}

# on_uplink ADDR...: how many of ADDR are addresses of the host's uplink.
on_uplink() {
	local a n=0
	for a; do
		ip -n "$H" addr show up0 | grep -qw -- "inet6\? $a/[0-9]*" && n=$((n + 1))
	done
	echo "$n"
}

# IP-only mode (--ip-only), for links that refuse extra MACs (managed
# Wi-Fi): a pseudonym is its addresses on the uplink, with its MAC.  Four
# flows (two IPv4, two IPv6) leave from four pseudonym addresses and every
# frame the host sends has the real MAC; the host's own sockets outside
# the cgroup keep its own addresses (the pseudonyms' IPv6 addresses are
# deprecated, so never a default source); a closed port of a pseudonym
# gets no answer (the inbound filter), while the default address
# answers; after a SIGKILL, the next daemon removes the addresses, rules
# and routes left on the uplink.
ip_only_pseudonyms_share_the_uplinks_mac() {
	local port out ips=() own own6 slaac n
	stop_daemon
	start_daemon --ip-only --policy flow --pool 4 || return 1
	(($(on_uplink $(pseudonyms | awk '{ print $3, $4 }')) == 8)) ||
		scr_fail "the pseudonyms' addresses are not all on up0: $(ip -n "$H" -br addr show up0)" || return
	capture iponly
	for port in "${PORTS[@]:0:2}"; do
		out=$(in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "$port" 10000) || { scr_fail "IPv4 flow: $out"; return; }
		ips+=("$out")
	done
	for port in "${PORTS[@]:2:2}"; do
		out=$(in_cgroup "$CG" python3 "$PEER" send 2001:db8:20::2 "$port" 10000) || { scr_fail "IPv6 flow: $out"; return; }
		ips+=("$out")
	done
	own=$(ip netns exec "$H" timeout 60 python3 "$PEER" send 10.20.0.2 "${PORTS[4]}" 1000)
	own6=$(ip netns exec "$H" timeout 60 python3 "$PEER" send 2001:db8:20::2 "${PORTS[5]}" 1000)
	capture_stop
	scr_diag "flows from ${ips[*]}; the host's own from $own and $own6"
	(($(printf '%s\n' "${ips[@]}" | sort -u | wc -l) == 4)) || scr_fail "4 flows, fewer sources: ${ips[*]}" || return
	for out in "${ips[@]}"; do
		pseudonyms | grep -qw -- "$out" || scr_fail "flow source $out is no pseudonym's" || return
	done
	slaac=$(ip -n "$H" -6 addr show up0 scope global | awk '/inet6/ && !/deprecated/ { sub("/.*", "", $2); print $2 }')
	[[ $own == 10.10.0.2 && $own6 == "$slaac" ]] ||
		scr_fail "the host's own sockets left from $own and $own6, want 10.10.0.2 and $slaac" || return
	python3 "$WIRE" pairs "$SCR_TMP/iponly.txt" > "$SCR_TMP/iponly.pairs"
	for out in "${ips[@]}"; do
		grep -q "^$out " "$SCR_TMP/iponly.pairs" || scr_fail "the flow from $out is not in the capture" || return
	done
	n=$(awk -v m="${REAL_MAC,,}" 'tolower($NF) != m' "$SCR_TMP/iponly.pairs" | grep -c .)
	((n == 0)) || scr_fail "frames with another MAC than up0's: $(awk -v m="${REAL_MAC,,}" 'tolower($NF) != m' "$SCR_TMP/iponly.pairs")" || return
	for out in "${ips[0]}" "${ips[2]}"; do
		[[ $(ip netns exec "$F" timeout 10 python3 "$PEER" probe "$out" 22 1) == timeout ]] ||
			scr_fail "a closed port of $out answered" || return
	done
	[[ $(ip netns exec "$F" timeout 10 python3 "$PEER" probe 10.10.0.2 22 5) == refused ]] ||
		scr_fail "the default address's closed port did not refuse" || return
	out=$(pseudonyms | awk '{ print $3, $4 }')
	kill_daemon
	start_daemon --policy flow --pool 1 || return 1
	n=$(on_uplink $out)
	((n == 0)) || scr_fail "$n addresses of the killed daemon's pseudonyms left on up0: $(ip -n "$H" -br addr show up0)" || return
	local a new
	new=" $(pseudonyms | awk '{ print $3, $4 }' | tr '\n' ' ') "
	for a in $out; do
		[[ $new == *" $a "* ]] && continue
		{ ip -n "$H" rule; ip -n "$H" -6 rule; } | grep -q "from $a " &&
			{ scr_fail "a rule of the killed daemon's $a is left: $(ip -n "$H" rule)"; return; }
	done
	return 0
}

# DHCP in the IP-only mode: every pseudonym's DHCP messages leave with
# the uplink's MAC (chaddr too), and the server tells the leases apart by
# the random client identifier of each pseudonym; a flow leaves from a
# leased address on the uplink; the leases go back at exit.
ip_only_leases_are_told_apart() {
	local dnsmasq src rc=0
	stop_daemon
	dhcp_server || return 1
	dnsmasq=$DHCP_SERVER
	start_daemon --ip-only --ipv4-dhcp --policy flow --pool 2 || { kill "$dnsmasq"; return 1; }
	scr_wait_for -t 10 leases_are 2 || scr_fail "dnsmasq holds $(leases | grep -c .) leases, want 2: $(leases)" || rc=1
	leases | while read -r m a id; do
		[[ ${m,,} == "${REAL_MAC,,}" ]] || echo "lease $a: chaddr $m, want up0's $REAL_MAC"
		[[ $id != "01:${m,,}" && $id == 01:* ]] || echo "lease $a: client id $id, want 01: and a MAC not up0's"
		pseudonyms | awk -v a="$a" '$3 == a' | grep -q . || echo "lease $a is no pseudonym's"
	done > "$SCR_TMP/leases.bad"
	(($(leases | awk '{ print $3 }' | sort -u | wc -l) == 2)) || echo "client ids not distinct: $(leases)" >> "$SCR_TMP/leases.bad"
	[[ ! -s $SCR_TMP/leases.bad ]] || { scr_fail "$(cat "$SCR_TMP/leases.bad")"; kill "$dnsmasq"; return 1; }
	src=$(in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "${PORTS[0]}" 1000) || scr_fail "a flow from a leased address: $src"
	leases | awk -v a="$src" '$2 == a' | grep -q . || scr_fail "the flow left from $src, no lease's" || rc=1
	(($(on_uplink "$src") == 1)) || scr_fail "$src is not on up0" || rc=1
	stop_daemon
	scr_wait_for -t 10 leases_are 0 || scr_fail "leases left after the daemon stopped: $(leases)" || rc=1
	kill "$dnsmasq" 2>/dev/null
	wait "$dnsmasq" 2>/dev/null
	scr_diag "leases to up0's MAC with distinct client ids; a flow from $src"
	return $rc
}

# served_to LOG: the client addresses an http.server log shows.
served_to() {
	awk '/"GET / { print $1 }' "$1" 2>/dev/null | sort -u | tr '\n' ' '
}

# Real applications, as the paper tried them, under `application` with
# the stub resolver: curl resolves two names (glibc, through the stub)
# and fetches from two HTTP servers; curl with --local-port, dig asking
# the network's resolver directly and the OpenBSD nc sending UDP.  curl
# --local-port and dig bind the wildcard address before they connect
# (dig: bind(0.0.0.0:0)), so the programs tie their sockets to the
# pseudonym's device instead of binding them (device_tied).  Every
# server (the HTTP servers' logs, dnsmasq's, the capture for UDP) sees
# app1's one pseudonym, app2's fetch another.  dig through the stub,
# a loopback destination, is left alone: it works, untagged.
real_applications_leave_from_their_pseudonym() {
	local rc=0
	local www=$SCR_TMP/www dnsmasq h1 h2 p1 p2 out tied c
	for c in curl dig nc; do
		command -v "$c" > /dev/null || { scr_fail "$c is not installed (scripts/setup installs it)"; return; }
	done
	stop_daemon
	mkdir -p "$www" && echo served > "$www/f"
	ip -n "$S" addr add 10.20.0.3/24 dev s0
	(cd "$www" && exec ip netns exec "$S" timeout 300 python3 -m http.server --bind 10.20.0.2 8080) 2> "$SCR_TMP/http1.log" &
	h1=$!
	(cd "$www" && exec ip netns exec "$S" timeout 300 python3 -m http.server --bind 10.20.0.3 8080) 2> "$SCR_TMP/http2.log" &
	h2=$!
	printf 'nameserver 127.0.0.53\noptions timeout:5 attempts:1\n' > "$SCR_TMP/resolv.conf"
	rm -f "$SCR_TMP/dns.log" "$SCR_TMP/dns.pid"
	ip netns exec "$R" timeout 300 dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root \
		--no-resolv --no-hosts --listen-address=10.10.0.1 --bind-interfaces --log-queries \
		--log-facility="$SCR_TMP/dns.log" --host-record=www.svtest.example,10.20.0.2 \
		--host-record=www2.svtest.example,10.20.0.3 --pid-file="$SCR_TMP/dns.pid" 2> "$SCR_TMP/dns.err" &
	dnsmasq=$!
	scr_wait_for -t 10 test -s "$SCR_TMP/dns.pid" || scr_fail "dnsmasq did not start: $(cat "$SCR_TMP/dns.err")" || rc=1
	start_daemon --policy application --pool 4 --dns-upstream 10.10.0.1:53 || { kill "$dnsmasq" "$h1" "$h2"; return 1; }
	tied=$(counter device_tied)
	capture apps
	out=$(in_cgroup "$CG/app1" sh -c 'mount --bind "$0" /etc/resolv.conf &&
		exec curl -sS --max-time 20 http://www.svtest.example:8080/f http://www2.svtest.example:8080/f' \
		"$SCR_TMP/resolv.conf" 2>&1)
	[[ $out == $'served\nserved' ]] || scr_fail "curl through the stub: $out" || rc=1
	out=$(in_cgroup "$CG/app1" curl -sS --max-time 20 --local-port 40100-40199 http://10.20.0.2:8080/f 2>&1)
	[[ $out == served ]] || scr_fail "curl --local-port: $out" || rc=1
	out=$(in_cgroup "$CG/app1" dig +short +tries=1 +time=5 @10.10.0.1 www2.svtest.example 2>&1)
	[[ $out == 10.20.0.3 ]] || scr_fail "dig @10.10.0.1: $out" || rc=1
	# dig through the stub: its wildcard-bound socket is left alone for a
	# loopback destination (a device would cut it off), so it reaches the
	# stub untagged and the query leaves from the host's address.
	out=$(in_cgroup "$CG/app1" dig +short +tries=1 +time=5 @127.0.0.53 www.svtest.example 2>&1)
	[[ $out == 10.20.0.2 ]] || scr_fail "dig @127.0.0.53: $out" || rc=1
	in_cgroup "$CG/app1" sh -c 'echo datagram | nc -u -w 1 10.20.0.2 9101' || true
	out=$(in_cgroup "$CG/app2" curl -sS --max-time 20 http://10.20.0.3:8080/f 2>&1)
	[[ $out == served ]] || scr_fail "app2's curl: $out" || rc=1
	capture_stop
	p1=$(ctl status | awk '$1 ~ /^svp/ { ip = $3 } /cgroup .*\/app1$/ { print ip }')
	p2=$(ctl status | awk '$1 ~ /^svp/ { ip = $3 } /cgroup .*\/app2$/ { print ip }')
	scr_diag "app1 $p1, app2 $p2; 10.20.0.2 served $(served_to "$SCR_TMP/http1.log"), 10.20.0.3 served $(served_to "$SCR_TMP/http2.log"); dnsmasq asked from $(grep -o 'query\[A\] .* from [0-9.]*' "$SCR_TMP/dns.log" | awk '{ print $NF }' | tr '\n' ' ')"
	[[ -n $p1 && -n $p2 && $p1 != "$p2" ]] || scr_fail "app1's and app2's pseudonyms: '$p1' '$p2'" || rc=1
	[[ $(served_to "$SCR_TMP/http1.log") == "$p1 " ]] || scr_fail "10.20.0.2 served $(served_to "$SCR_TMP/http1.log"), want $p1 only" || rc=1
	[[ $(served_to "$SCR_TMP/http2.log") == *"$p1 "* && $(served_to "$SCR_TMP/http2.log") == *"$p2 "* ]] ||
		scr_fail "10.20.0.3 served $(served_to "$SCR_TMP/http2.log"), want $p1 and $p2" || rc=1
	out=$(grep -o 'query\[A\] .* from [0-9.]*' "$SCR_TMP/dns.log" | awk '{ print $NF }' | tr '\n' ' ')
	[[ $out == "$p1 $p1 $p1 10.10.0.2 " ]] ||
		scr_fail "queries from $out, want $p1 for curl's two and dig's direct one, 10.10.0.2 for dig's through the stub" || rc=1
	grep -q "$p1\.[0-9]* > 10\.20\.0\.2\.9101: UDP" "$SCR_TMP/apps.txt" || scr_fail "nc's datagram did not leave from $p1" || rc=1
	(($(counter device_tied) >= tied + 2)) || scr_fail "device_tied counted $(($(counter device_tied) - tied)), want 2 (curl --local-port, dig)" || rc=1
	kill "$dnsmasq" "$h1" "$h2" 2>/dev/null
	wait "$dnsmasq" "$h1" "$h2" 2>/dev/null
	ip -n "$S" addr del 10.20.0.3/24 dev s0
	return $rc
}

ftp_listening() {
	[[ -n $(ip netns exec "$S" ss -Htln 'sport = :21') ]]
}

# FTP, passive and active, under `application`: curl fetches one file from
# pyftpdlib's FTP server (Debian's python3-pyftpdlib, a library: no
# system service) on the server both ways.  Passive: the data connection
# is one more connect() and gets the application's pseudonym like the
# control connection (the server, by default, takes a data connection
# only from the control connection's address).  Active: curl listens on
# the control connection's local address, the pseudonym's, and the
# server connects to it; the inbound filter lets a connection to a socket
# bound to a pseudonym's own address in (no conntrack FTP helper: the
# test kernels have none).  The server's log shows both downloads by the
# one pseudonym; the LAN shows the pseudonym taking the active data
# connection, and nothing of the FTP exchange from the host's address.
FTP_PYTHON=/usr/bin/python3
ftp_passive_and_active_from_the_pseudonym() {
	local rc=0 root=$SCR_TMP/ftp ftpd p1 out dropped mode opt
	"$FTP_PYTHON" -c 'import pyftpdlib' 2> /dev/null ||
		{ scr_fail "python3-pyftpdlib is not installed (scripts/setup installs it)"; return; }
	stop_daemon
	mkdir -p "$root/pub"
	echo served > "$root/pub/f"
	ip netns exec "$S" timeout 300 "$FTP_PYTHON" -m pyftpdlib -i 10.20.0.2 -p 21 -d "$root" \
		2> "$SCR_TMP/ftpd.log" &
	ftpd=$!
	scr_wait_for -t 10 ftp_listening ||
		scr_fail "the FTP server did not start: $(tail -n 3 "$SCR_TMP/ftpd.log")" || rc=1
	start_daemon --policy application --pool 2 || { kill "$ftpd"; return 1; }
	dropped=$(counter inbound_dropped)
	capture ftp
	for mode in passive active; do
		opt=()
		[[ $mode == passive ]] || opt=(--ftp-port -)
		out=$(in_cgroup "$CG/app1" curl -sS --max-time 20 "${opt[@]}" ftp://10.20.0.2/pub/f 2>&1)
		[[ $out == served ]] || scr_fail "curl, $mode FTP: $out" || rc=1
	done
	capture_stop
	kill "$ftpd" 2>/dev/null
	wait "$ftpd" 2>/dev/null
	p1=$(ctl status | awk '$1 ~ /^svp/ { ip = $3 } /cgroup .*\/app1$/ { print ip }')
	# "[I ...] 10.10.0.123:40000-[anonymous] RETR /pub/f completed=1 ..."
	out=$(awk '/ RETR .* completed=1/ { sub(/:[0-9]+-.*/, "", $4); print $4 }' "$SCR_TMP/ftpd.log" | tr '\n' ' ')
	scr_diag "app1 $p1; the FTP server sent the file to: $out"
	[[ -n $p1 && $out == "$p1 $p1 " ]] || scr_fail "the downloads went to '$out', want app1's $p1 twice" || rc=1
	# The capture holds the host's frames: the pseudonym's SYN-ACK.
	grep -q ": ${p1//./\\.}\.[0-9]* > 10\.20\.0\.2\.[0-9]*: Flags \[S\.\]" "$SCR_TMP/ftp.txt" ||
		scr_fail "$p1 took no connection from the server (active FTP's data)" || rc=1
	! grep -q ": 10\.10\.0\.2\.[0-9]* > 10\.20\.0\.2\." "$SCR_TMP/ftp.txt" ||
		scr_fail "FTP from the host's own address on the LAN" || rc=1
	ctl_counter_is inbound_dropped "$dropped" ||
		scr_fail "inbound_dropped grew by $(($(counter inbound_dropped) - dropped))" || rc=1
	return $rc
}

# mptcp_transfers NAME N: N MPTCP connections from the host to the server's
# 10.30.0.1, over the trusted link, 6 MiB each way of the digits pattern;
# the server listens on every address (the joins come to another).
mptcp_transfers() {
	local srv rc=0
	rm -f "$SCR_TMP/$1.ready"
	ip netns exec "$S" timeout 120 mptcp-traffic server --listen "0.0.0.0:$MPTCP_PORT" --count "$2" \
		--bytes 6M --pattern digits --ready-file "$SCR_TMP/$1.ready" --quiet \
		> "$SCR_TMP/$1.server.json" 2> "$SCR_TMP/$1.server.log" &
	srv=$!
	scr_wait_for test -e "$SCR_TMP/$1.ready" || { kill "$srv"; scr_fail "the server did not start"; return; }
	ip netns exec "$H" timeout 120 mptcp-traffic client --connect "10.30.0.1:$MPTCP_PORT" --parallel "$2" \
		--bytes 6M --pattern digits --quiet > "$SCR_TMP/$1.client.json" 2> "$SCR_TMP/$1.client.log" ||
		scr_fail "client: $(tail -n 3 "$SCR_TMP/$1.client.log")" || rc=1
	wait "$srv" || scr_fail "server: $(tail -n 3 "$SCR_TMP/$1.server.log")" || rc=1
	return $rc
}

# lan_joins NAME DST N: capture NAME holds N MP_JOIN SYNs to DST from N
# distinct (MAC, IP) pairs, each a pseudonym's, and no MP_CAPABLE or
# ADD_ADDR.
lan_joins() {
	local pairs joins rc=0 mac ip
	pairs=$(grep " > ${2//./\\.}\.$MPTCP_PORT: Flags \[S\].*mptcp [0-9]* join" "$SCR_TMP/$1.txt" |
		awk '{ sub(/\.[0-9]+$/, "", $10); print $2, $10 }' | sort -u)
	joins=$(grep -c " > ${2//./\\.}\.$MPTCP_PORT: Flags \[S\].*mptcp [0-9]* join" "$SCR_TMP/$1.txt")
	scr_diag "joins to $2 on the LAN from: $(tr '\n' ';' <<< "$pairs") counters: $(ctl counters | grep '^mptcp_' | tr '\n' ' ')"
	[[ $(grep -c . <<< "$pairs") == "$3" && $joins == "$3" ]] ||
		scr_fail "$joins MP_JOINs from $(grep -c . <<< "$pairs") (MAC, IP) pairs on the LAN, want $3 from $3" \
			"(the capture lost ${CAP_DROPPED:-0} frames); the daemon said: $(grep 'MPTCP [0-9a-f]*: ' "$SCR_TMP/stackvirtd.log" | tail -n 4 | tr '\n' ' ')" || rc=1
	while read -r mac ip; do
		[[ -n $ip ]] || continue
		pseudonyms | grep -q " $mac $ip " || scr_fail "a join from $ip ($mac), no pseudonym's pair" || rc=1
	done <<< "$pairs"
	! grep -q "mptcp [0-9]* capable\|add-addr" "$SCR_TMP/$1.txt" ||
		scr_fail "MP_CAPABLE or ADD_ADDR on the LAN: $(grep -m 2 "mptcp [0-9]* capable\|add-addr" "$SCR_TMP/$1.txt")" || rc=1
	return $rc
}

# MPTCP, the two systems joined: stackvirtd as the userspace path manager.
# The host opens MPTCP connections to the server over the trusted path (t0
# -- t1, a direct link, 10.30.0.0/24); the server announces 10.20.0.2, its
# address behind the router, on it (ADD_ADDR).  Each connection's second
# subflow leaves through the LAN from a pseudonym of its own: the observer
# there sees N (MAC, IP) pairs for N connections, MP_JOINs and no
# MP_CAPABLE or ADD_ADDR; the data arrives intact and, the module in the
# hardened mode at both ends, nothing of it crosses the LAN in clear.
# Then --mptcp-join remote: the server announces nothing, its one address
# is reachable over both paths, and the join goes to it.
MPTCP_PORT=8090
mptcp_subflows_from_fresh_pseudonyms() {
	local rc=0 n=3 before ns sent c adopted
	[[ -f $SCR_MODULE ]] || { scr_fail "$SCR_MODULE is not built (make module)"; return; }
	scr_load || { scr_fail "cannot load $SCR_MODULE"; return; }
	stop_daemon
	before=$(ip netns exec "$H" sysctl -n net.mptcp.pm_type)
	ip link add t0 netns "$H" type veth peer name t1 netns "$S"
	ip -n "$H" addr add 10.30.0.2/24 dev t0
	ip -n "$S" addr add 10.30.0.1/24 dev t1
	ip -n "$H" link set t0 up
	ip -n "$S" link set t1 up
	# Long enough for the joins to carry data.
	tc -n "$H" qdisc add dev t0 root netem rate 20mbit
	tc -n "$S" qdisc add dev t1 root netem rate 20mbit
	ip -n "$S" mptcp endpoint add 10.20.0.2 dev s0 signal
	ip -n "$S" mptcp limits set subflows 8 add_addr_accepted 0
	for ns in "$H" "$S"; do
		ip netns exec "$ns" sysctl -qw net.mptcp_scramble.enabled=1 net.mptcp_scramble.mode=hardened
	done
	start_daemon --policy flow --pool "$n" --mptcp-pm || return 1
	[[ $(ip netns exec "$H" sysctl -n net.mptcp.pm_type) == 1 ]] || scr_fail "pm_type is not 1 under --mptcp-pm" || rc=1
	capture mptcp
	scr_capture "$S" t1 trusted
	mptcp_transfers mptcp "$n" || rc=1
	scr_capture_stop
	capture_stop
	tcpdump -n -r "$SCR_TMP/trusted.pcap" > "$SCR_TMP/trusted.txt" 2>/dev/null
	lan_joins mptcp 10.20.0.2 "$n" || rc=1
	scr_diag "$(grep -c "asking again" "$SCR_TMP/stackvirtd.log") subflows refused for now and asked again"
	(($(grep -c "Flags \[S\].*mptcp [0-9]* capable" "$SCR_TMP/trusted.txt") >= n)) ||
		scr_fail "the initial subflows' SYNs are not on the trusted path" || rc=1
	grep -q "add-addr" "$SCR_TMP/trusted.txt" || scr_fail "no ADD_ADDR on the trusted path" || rc=1
	# The joins carried data (TCP payload from the pseudonyms), none of
	# it in clear ("0123456789"...).
	sent=$(awk -v p="$MPTCP_PORT" '$12 == "10.20.0.2." p ":" && $10 ~ /^10\.10\.0\./ { sum += $NF } END { print sum + 0 }' \
		"$SCR_TMP/mptcp.txt")
	scr_diag "$sent bytes of TCP payload from the pseudonyms on the LAN"
	((sent > 256 * 1024)) || scr_fail "only $sent bytes of payload crossed the LAN" || rc=1
	! grep -aq 0123456789 "$SCR_TMP/mptcp.pcap" || scr_fail "the digits crossed the LAN in clear" || rc=1
	for c in subflows subflows_established connections announced; do
		ctl_counter_is "mptcp_$c" "$n" || scr_fail "mptcp_$c $(counter "mptcp_$c"), want $n" || rc=1
	done
	ctl_counter_is mptcp_subflow_failed 0 || scr_fail "mptcp_subflow_failed $(counter mptcp_subflow_failed)" || rc=1
	ctl_counter_is mptcp_no_pseudonym 0 || scr_fail "mptcp_no_pseudonym $(counter mptcp_no_pseudonym)" || rc=1
	stop_daemon
	[[ $(ip netns exec "$H" sysctl -n net.mptcp.pm_type) == "$before" ]] ||
		scr_fail "pm_type was not restored to $before at the stop" || rc=1
	ip -n "$S" mptcp endpoint flush
	if [[ ${SCR_STACKVIRT:-} != short ]]; then
		ip -n "$R" route add 10.30.0.0/24 via 10.20.0.2
		start_daemon --policy flow --pool 1 --mptcp-pm --mptcp-join remote || return 1
		capture mptcp-remote
		mptcp_transfers mptcp-remote 1 || rc=1
		capture_stop
		lan_joins mptcp-remote 10.30.0.1 1 || rc=1
		ctl_counter_is mptcp_announced 0 || scr_fail "mptcp_announced $(counter mptcp_announced), want 0" || rc=1
		# Left for the next instance, pm_type stays; the next one's stop
		# restores the value from before the first.
		adopted=$(grep -c "adopted [1-9][0-9]* pseudonyms" "$SCR_TMP/stackvirtd.log")
		signal_daemon USR1
		[[ $(ip netns exec "$H" sysctl -n net.mptcp.pm_type) == 1 ]] || scr_fail "pm_type changed at SIGUSR1" || rc=1
		KEEP_STATE=1 start_daemon --policy flow --pool 1 --mptcp-pm --mptcp-join remote || return 1
		# The old state says the pool is there: wait for the adoption.
		scr_wait_for -t 30 adoptions_are $((adopted + 1)) || scr_fail "no adoption: $(tail -n 3 "$SCR_TMP/stackvirtd.log")" || rc=1
		stop_daemon
		[[ $(ip netns exec "$H" sysctl -n net.mptcp.pm_type) == "$before" ]] ||
			scr_fail "pm_type was not restored to $before after a restart" || rc=1
		ip -n "$R" route del 10.30.0.0/24 via 10.20.0.2
	fi
	for ns in "$H" "$S"; do
		ip netns exec "$ns" sysctl -qw net.mptcp_scramble.enabled=0
	done
	ip -n "$H" link del t0
	return $rc
}

# A browsing-like session seen from the LAN: one application visits three
# sites (10.20.0.11 to .13), each a page (port 8001) and two resources
# (port 8002), nine connections one after the other.  How many addresses
# the session shows an observer under each policy: one per connection,
# per (tcp, dst, dport), per site, one for the application.
SITES=(10.20.0.11 10.20.0.12 10.20.0.13)
browsing_session_addresses_per_policy() {
	local policy want got out site visits=() seen=" "
	for site in "${SITES[@]}"; do
		ip -n "$S" addr add "$site/24" dev s0
		visits+=("$site" "${PORTS[0]}" "$site" "${PORTS[1]}" "$site" "${PORTS[1]}")
	done
	for policy in connection:9 flow:6 destination:3 application:1; do
		want=${policy#*:} policy=${policy%:*}
		stop_daemon
		start_daemon --policy "$policy" --pool "$want" --fail closed || return 1
		out=$(in_cgroup "$CG/app1" python3 "$PEER" session "${visits[@]}") ||
			{ scr_fail "$policy: the session failed: $out"; return; }
		got=$(sort -u <<< "$out" | wc -l)
		seen+="$policy $got, "
		[[ $got == "$want" ]] || scr_fail "$policy: $got addresses for the session, want $want" || return
		while read -r a; do
			pseudonyms | grep -qw -- "$a" || scr_fail "$policy: a connection from $a, no pseudonym's" || return
		done <<< "$out"
	done
	scr_diag "a session of 3 sites, 9 connections, shows the LAN:${seen%, } addresses"
	for site in "${SITES[@]}"; do
		ip -n "$S" addr del "$site/24" dev s0
	done
}

# A restart takes over: stackvirtd left with SIGUSR1, then killed, is
# followed each time by an instance with the same settings that adopts the
# pinned programs and maps and the pseudonyms.  A flow held across both
# restarts finishes intact; the pseudonyms stay the same (each device one
# pseudonym's, none made twice, none leaked); the held flow's pseudonym is
# retired once the flow has closed, and a new connect takes a pseudonym.
restarted_daemon_adopts_its_pseudonyms() {
	local go=$SCR_TMP/go hold before src dev out n
	stop_daemon
	n=$(grep -c "adopted [1-9][0-9]* pseudonyms" "$SCR_TMP/stackvirtd.log")
	start_daemon --policy flow --pool 3 --retire-after 2 || return 1
	rm -f "$go"
	in_cgroup "$CG" python3 "$PEER" hold 10.20.0.2 "${PORTS[0]}" "$go" > "$SCR_TMP/hold.out" &
	hold=$!
	scr_wait_for grep -q . "$SCR_TMP/hold.out" || scr_fail "the held flow did not start" || return
	src=$(head -n 1 "$SCR_TMP/hold.out")
	scr_wait_for -t 30 free_at_least 3 || scr_fail "the pool was not refilled: $(ctl status)" || return
	before=$(pseudonyms | sort)
	signal_daemon USR1
	grep -q "leaving 4 pseudonyms" "$SCR_TMP/stackvirtd.log" ||
		scr_fail "SIGUSR1: $(tail -n 3 "$SCR_TMP/stackvirtd.log")" || return
	[[ -d $PINS ]] && ip -n "$H" link show svp0 > /dev/null 2>&1 || scr_fail "SIGUSR1 removed the pins or devices" || return
	KEEP_STATE=1 start_daemon --policy flow --pool 3 --retire-after 2 || return 1
	scr_wait_for -t 30 adoptions_are $((n + 1)) || scr_fail "no adoption after SIGUSR1: $(tail -n 3 "$SCR_TMP/stackvirtd.log")" || return
	kill_daemon
	KEEP_STATE=1 start_daemon --policy flow --pool 3 --retire-after 2 || return 1
	scr_wait_for -t 30 adoptions_are $((n + 2)) || scr_fail "no adoption after SIGKILL: $(tail -n 3 "$SCR_TMP/stackvirtd.log")" || return
	[[ $(pseudonyms | sort) == "$before" ]] ||
		scr_fail "the pseudonyms changed across the restarts: $(pseudonyms | sort | tr '\n' ';') were $(tr '\n' ';' <<< "$before")" || return
	[[ $(ip -n "$H" -br link | grep -c '^svp') == 4 ]] ||
		scr_fail "devices: $(ip -n "$H" -br link | grep '^svp' | awk '{ print $1 }' | tr '\n' ' '), want the 4 pseudonyms'" || return
	touch "$go"
	wait "$hold" || scr_fail "the held flow broke across the restarts: $(cat "$SCR_TMP/hold.out")" || return
	grep -q '^ok$' "$SCR_TMP/hold.out" || scr_fail "the held flow: $(cat "$SCR_TMP/hold.out")" || return
	dev=$(pseudonyms | awk -v a="$src" '$3 == a { print $1 }')
	[[ -n $dev ]] || scr_fail "the held flow's source $src is no pseudonym's" || return
	# The client closed first: its socket's TIME_WAIT (60 s) holds the
	# pseudonym, then 2 s more.
	scr_wait_for -t 90 retired "$dev" || scr_fail "$dev was not retired after the flow closed: $(ctl status)" || return
	out=$(in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "${PORTS[1]}" 1000)
	pseudonyms | grep -qw -- "$out" || scr_fail "a connect after the restarts left from $out" || return
	scr_diag "a flow from $src ($dev) held across SIGUSR1 and SIGKILL restarts, then $dev retired"
}

# After SIGKILL the pins keep the programs, maps and pseudonyms working.
killed_daemon_keeps_flows_fail_open() {
	local go=$SCR_TMP/go out=" " i src free hold
	stop_daemon
	start_daemon --policy connection --pool 3 --fail open || return 1
	rm -f "$go"
	in_cgroup "$CG" python3 "$PEER" hold 10.20.0.2 "${PORTS[0]}" "$go" > "$SCR_TMP/hold.out" &
	hold=$!
	scr_wait_for grep -q . "$SCR_TMP/hold.out" || scr_fail "the held flow did not start" || return
	kill_daemon
	touch "$go"
	wait "$hold" || scr_fail "the held flow broke after the kill: $(cat "$SCR_TMP/hold.out")" || return
	grep -q '^ok$' "$SCR_TMP/hold.out" || scr_fail "the held flow: $(cat "$SCR_TMP/hold.out")" || return
	ctl status | sed -n '1s/^/# /p'
	free=$(free_left)
	# The pool the daemon left, one connect each; then the default address.
	for ((i = 0; i <= free; i++)); do
		src=$(in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "${PORTS[1]}" 1000) ||
			scr_fail "connect $i after the kill: $src" || return
		out+="$src "
	done
	scr_diag "after the kill, $free left in the pool: connects from$out"
	((free > 0)) || scr_fail "the daemon left no pseudonym in the pool" || return
	[[ $out == *" 10.10.0.2 " ]] || scr_fail "fail-open: the last connect should use 10.10.0.2" || return
	(($(grep -o '10\.10\.0\.2 ' <<< "$out" | wc -l) == 1)) ||
		scr_fail "the default address was used while the pool had pseudonyms"
}

killed_daemon_fail_closed_denies() {
	local out=" " i free
	start_daemon --policy connection --pool 2 --fail closed || return 1
	kill_daemon
	free=$(free_left)
	for ((i = 0; i <= free; i++)); do
		out+="$(in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "${PORTS[1]}" 1000), "
	done
	scr_diag "after the kill, $free left in the pool: connects from$out"
	[[ $out == *", error EPERM, " ]] || scr_fail "fail-closed: the last connect should get EPERM" || return
	(($(grep -o 'EPERM' <<< "$out" | wc -l) == 1)) || scr_fail "EPERM while the pool had pseudonyms" || return
	(($(counter denied) >= 1)) || scr_fail "no denial counted"
}

for c in "${CASES[@]}"; do
	scr_run "$c" "$c"
done
stop_daemon
scr_finish
