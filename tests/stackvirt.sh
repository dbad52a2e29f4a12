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
# - the egress guard counts nothing;
# - per application: two applications never share a pseudonym, and
#   stackvirtctl names them;
# - sockets bound by the application, and sockets of other namespaces in
#   the cgroup, keep their addresses;
# - a pseudonym is retired once its last socket has closed;
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
scr_require_cmd ip tcpdump nft radvd traceroute python3 stackvirtd stackvirtctl

scr_ktap_header
scr_ktap_plan 15

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
	# A killed daemon's state must not pass for the new one's.
	rm -f "$STATE"
	ip netns exec "$H" timeout 1800 stackvirtd --uplink up0 --ipv4-range "$RANGE" --ipv6 \
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
capture() {
	rm -f "$SCR_TMP/$1.pcap"
	ip netns exec "$LAN" timeout 600 tcpdump --immediate-mode -Q in -i lh -s 0 -U -n \
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
	local c4 c6 s4 s6 packets i t_on t_off
	c4=$(counter run_connect4) c6=$(counter run_connect6)
	s4=$(counter run_sendmsg4) s6=$(counter run_sendmsg6)
	packets=$(ip -n "$H" -s link show up0 | awk '/TX:/ { getline; print $2 }')
	for i in 1 2 3; do
		in_cgroup "$CG" python3 "$PEER" send 10.20.0.2 "${PORTS[1]}" 200000 >/dev/null ||
			scr_fail "connect $i failed" || return
	done
	in_cgroup "$CG" python3 "$PEER" send 2001:db8:20::2 "${PORTS[1]}" 200000 >/dev/null ||
		scr_fail "IPv6 connect failed" || return
	in_cgroup "$CG" python3 "$PEER" udp 10.20.0.2 5353 7 || scr_fail "UDP sends failed" || return
	in_cgroup "$CG" python3 "$PEER" udp 2001:db8:20::2 5353 5 || scr_fail "UDP sends failed" || return
	scr_diag "runs: connect4 +$(($(counter run_connect4) - c4)) connect6 +$(($(counter run_connect6) - c6))" \
		"sendmsg4 +$(($(counter run_sendmsg4) - s4)) sendmsg6 +$(($(counter run_sendmsg6) - s6))"
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

egress_guard_counts_nothing() {
	local n
	n=$(counter egress_mismatch)
	((n == 0)) || scr_fail "the egress guard dropped $n packets"
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

# A taken pseudonym whose last socket closed is retired: its device, its
# rules and its entry in the maps go.
idle_pseudonym_is_retired() {
	local dev
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

scr_run pool_is_made pool_is_made
scr_run flows_leave_from_distinct_pseudonyms flows_leave_from_distinct_pseudonyms
scr_run wire_shows_one_mac_per_pseudonym wire_shows_one_mac_per_pseudonym
scr_run closed_port_is_refused closed_port_is_refused
scr_run traceroute_as_on_the_reference traceroute_as_on_the_reference
scr_run pmtu_through_the_1280_hop pmtu_through_the_1280_hop
scr_run inbound_scan_gets_nothing inbound_scan_gets_nothing
scr_run link_chatter_is_arp_nd_mld_only link_chatter_is_arp_nd_mld_only
scr_run runs_per_connect_not_per_packet runs_per_connect_not_per_packet
scr_run egress_guard_counts_nothing egress_guard_counts_nothing
scr_run applications_never_share applications_never_share
scr_run bound_and_foreign_sockets_left_alone bound_and_foreign_sockets_left_alone
scr_run idle_pseudonym_is_retired idle_pseudonym_is_retired
scr_run killed_daemon_keeps_flows_fail_open killed_daemon_keeps_flows_fail_open
scr_run killed_daemon_fail_closed_denies killed_daemon_fail_closed_denies
stop_daemon
scr_finish
