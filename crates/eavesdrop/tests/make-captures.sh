#!/bin/bash
# Makes real two-path MPTCP captures for mptcp-eavesdrop (needs root,
# iproute2, tcpdump, python3 and a kernel with MPTCP).
#
#   make-captures.sh OUTDIR REQUEST RESPONSE [RATE [MTU]]
#
# sends the file REQUEST from client to server and RESPONSE back over
# one MPTCP connection with two paths, each limited to RATE (default
# 2mbit; RATE1,RATE2 for unequal paths) with the given MTU (default 1500; a small MTU makes a
# small transfer use both paths: each subflow's initial window is ten
# segments), and writes OUTDIR/path1.pcap, path2.pcap (tcpdump on
# each client veth, Ethernet) and any.pcap (tcpdump -i any, Linux SLL2).
#
#   client ns                          server ns
#   c1 10.99.1.1/24 ---- path 1 ---- s1 10.99.1.2/24  (server address)
#   c2 10.99.2.1/24 ---- path 2 ---- s2 10.99.2.2/24
#
# The initial subflow runs on path 1; the client's endpoint on c2 adds a
# subflow 10.99.2.1 -> 10.99.1.2, routed over path 2 by a source rule.
set -euo pipefail

out=$1 request=$2 response=$3 rate=${4:-2mbit} mtu=${5:-1500}
here=$(cd "$(dirname "$0")" && pwd)
suffix=$(printf '%04x' $((RANDOM)))
cns=evc-$suffix sns=evs-$suffix port=18080
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$cns" 2>/dev/null || true
	ip netns del "$sns" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$cns"
ip netns add "$sns"
for p in 1 2; do
	ip link add "c$p" netns "$cns" type veth peer name "s$p" netns "$sns"
	ip -n "$cns" addr add "10.99.$p.1/24" dev "c$p"
	ip -n "$sns" addr add "10.99.$p.2/24" dev "s$p"
	ip -n "$cns" link set "c$p" mtu "$mtu" up
	ip -n "$sns" link set "s$p" mtu "$mtu" up
	# Slow enough that the scheduler needs both paths.
	r=${rate%%,*}
	[ "$p" = 2 ] && r=${rate##*,}
	ip netns exec "$cns" tc qdisc add dev "c$p" root tbf rate "$r" burst 16kbit latency 400ms
	ip netns exec "$sns" tc qdisc add dev "s$p" root tbf rate "$r" burst 16kbit latency 400ms
done
ip -n "$cns" link set lo up
ip -n "$sns" link set lo up
ip -n "$cns" rule add from 10.99.2.1 table 102
ip -n "$cns" route add 10.99.1.0/24 dev c2 table 102
for ns in "$cns" "$sns"; do
	ip netns exec "$ns" sysctl -q net.mptcp.enabled=1
	ip -n "$ns" mptcp limits set subflow 2 add_addr_accepted 2
done
ip -n "$cns" mptcp endpoint add 10.99.2.1 dev c2 subflow

mkdir -p "$out"
for cap in c1:path1 c2:path2 any:any; do
	ip netns exec "$cns" timeout 60 tcpdump -q -U --immediate-mode -s 0 -i "${cap%%:*}" -w "$out/${cap##*:}.pcap" tcp 2>"$out/${cap##*:}.log" &
	pids+=($!)
done
ip netns exec "$sns" timeout 60 python3 "$here/mptcp-pair.py" server "$port" "$out/received" "$response" &
server=$!
pids+=($server)
for _ in $(seq 100); do
	ip netns exec "$sns" ss -Mltn | grep -q ":$port" && break
	sleep 0.05
done
# tcpdump is ready once each capture file has its header.
for f in path1 path2 any; do
	for _ in $(seq 100); do [ -s "$out/$f.pcap" ] && break; sleep 0.05; done
done
ip netns exec "$cns" timeout 60 python3 "$here/mptcp-pair.py" client 10.99.1.2 "$port" "$request" "$response" 1
wait "$server"
cmp "$out/received" "$request"
rm "$out/received"
# Let the last ACKs and FINs reach the files, then stop the captures.
sleep 0.2
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait || true
pids=()
