#!/usr/bin/env bash
# A real man in the middle on one path of hardened connections
# (docs/design.md, "MP_JOIN"; the tool: crates/mitm).
#
# mptcp-mitm sits on path 1, which carries the first subflow: nftables in
# the server's namespace queue every packet of the test's port that
# crosses s1, both ways, to it (a router on that path sees the same
# packets).  It runs the hardened handshake with each end in turn,
# rewrites the preambles in place, and decrypts and re-encrypts every
# application byte it relays.  Path 2 it cannot touch.
#
# - one path: nothing can catch it.  The connection works, and the man in
#   the middle reads every byte the client sent: the positive control,
#   showing that the relay really breaks the handshake when nothing else
#   checks it;
# - two paths: the client's MP_JOIN over path 2 fails its HMAC, because
#   the two ends derived different join keys; both ends reset the
#   connection within seconds, long before the paced transfer would end,
#   and the server got only a correct prefix of the stream.
source "$(dirname "$0")/lib.sh"

scr_require_root
scr_require_cmd ip nft nstat insmod python3 mptcp-mitm
scr_require_module_file

PORT=4100
PEER=$SCR_ROOT/tests/mitm/peer.py

# mitm_start: queue path 1's packets of $PORT to mptcp-mitm.
mitm_start() {
	rm -rf "$SCR_TMP/mitm"
	ip netns exec "$SCR_SRV" nft -f - <<-EOT || return
	table ip mitm {
		chain in { type filter hook prerouting priority 0; iifname "s1" tcp dport $PORT queue num 0; }
		chain out { type filter hook postrouting priority 0; oifname "s1" tcp sport $PORT queue num 0; }
	}
	EOT
	ip netns exec "$SCR_SRV" mptcp-mitm --out "$SCR_TMP/mitm" 2> "$SCR_TMP/mitm.log" &
	MITM=$!
	scr_wait_for grep -q "on queue" "$SCR_TMP/mitm.log" || {
		scr_diag "mptcp-mitm did not start: $(tail -n 3 "$SCR_TMP/mitm.log")"
		return 1
	}
}

# relay_reported KEY VALUE: the relay's last report on connection 0 says
# KEY is VALUE (it writes one every 100 ms, the bytes before the report).
relay_reported() {
	[[ $(scr_json "$SCR_TMP/mitm/0.json" "$1") == "$2" ]]
}

mitm_stop() {
	sleep 0.3 # its last report
	kill "$MITM" 2>/dev/null
	wait "$MITM" 2>/dev/null
	ip netns exec "$SCR_SRV" nft delete table ip mitm
}

# exchange NAME LINES [PACE]: the client sends LINES numbered lines (4 KiB
# per write, PACE seconds apart) to the server at 10.0.1.2; the server
# keeps what it got in $SCR_TMP/NAME.recv.  Each end's JSON result in
# $SCR_TMP/NAME.{client,server}.json.
exchange() {
	local name=$1 lines=$2 pace=${3:-} spid
	rm -f "$SCR_TMP/$name.ready"
	ip netns exec "$SCR_SRV" timeout 120 python3 "$PEER" server 10.0.1.2 $PORT \
		"$SCR_TMP/$name.recv" "$SCR_TMP/$name.ready" \
		> "$SCR_TMP/$name.server.json" 2> "$SCR_TMP/$name.server.log" &
	spid=$!
	scr_wait_for test -e "$SCR_TMP/$name.ready" || {
		scr_diag "$name: server did not start: $(tail -n 3 "$SCR_TMP/$name.server.log")"
		return 1
	}
	ip netns exec "$SCR_CLI" timeout 120 python3 "$PEER" client 10.0.1.2 $PORT "$lines" \
		${pace:+--pace "$pace"} > "$SCR_TMP/$name.client.json" 2> "$SCR_TMP/$name.client.log"
	wait "$spid"
	scr_diag "$name: client $(cat "$SCR_TMP/$name.client.json"), server $(cat "$SCR_TMP/$name.server.json")"
}

# expected LINES: the stream the client sends, in $SCR_TMP/expected.
expected() {
	python3 -c "import sys; sys.path.insert(0, '$SCR_ROOT/tests/mitm'); import peer; sys.stdout.buffer.write(peer.stream($1))" \
		> "$SCR_TMP/expected"
}

# is_prefix FILE: FILE is a prefix of $SCR_TMP/expected.
is_prefix() {
	cmp -s -n "$(stat -c %s "$1")" "$1" "$SCR_TMP/expected"
}

test_one_path_the_man_in_the_middle_reads_everything() {
	local rc=0 lines=20000
	ip -n "$SCR_CLI" mptcp endpoint flush
	mitm_start || return
	exchange onepath "$lines" || rc=1
	expected "$lines"
	# Every byte crossed the relay before the server got it; its report
	# follows within 100 ms, or later on a loaded machine.
	scr_wait_for relay_reported plain_c2s "$(stat -c %s "$SCR_TMP/expected")"
	mitm_stop
	scr_subflow_endpoints 2
	((rc == 0)) || { scr_fail "the exchange failed through the relay"; return 1; }
	cmp -s "$SCR_TMP/onepath.recv" "$SCR_TMP/expected" ||
		scr_fail "the server did not get the stream intact" || return
	[[ $(scr_json "$SCR_TMP/mitm/0.json" keyed) == True ]] ||
		scr_fail "the relay never had both ends' keys: $(cat "$SCR_TMP/mitm/0.json")" || return
	# the positive control: on its own path it reads the plaintext
	cmp -s "$SCR_TMP/mitm/0.c2s" "$SCR_TMP/expected" ||
		scr_fail "the relay did not recover the client's stream ($(stat -c %s "$SCR_TMP/mitm/0.c2s") of $(stat -c %s "$SCR_TMP/expected") bytes)" || return
	scr_diag "one path: the man in the middle read all $(stat -c %s "$SCR_TMP/mitm/0.c2s") bytes"
	[[ $(scr_json "$SCR_TMP/mitm/0.json" join_keys_client_side) != "$(scr_json "$SCR_TMP/mitm/0.json" join_keys_server_side)" ]] ||
		scr_fail "both ends derived the same join keys"
}

test_second_path_catches_the_man_in_the_middle() {
	local rc=0 lines=100000 c_hmac c_synack s_fc secs
	c_hmac=$(scr_mib "$SCR_CLI" MPTcpExtScrambleJoinHmac)
	c_synack=$(scr_mib "$SCR_CLI" MPTcpExtMPJoinSynAckHMacFailure)
	s_fc=$(scr_mib "$SCR_SRV" MPTcpExtMPFastcloseRx)
	mitm_start || return
	# 1075 writes 10 ms apart: 10 s or more unless something stops it
	exchange twopaths "$lines" 0.01 || rc=1
	mitm_stop
	((rc == 0)) || { scr_fail "the test's peers failed"; return 1; }
	expected "$lines"
	[[ $(scr_json "$SCR_TMP/mitm/0.json" keyed) == True ]] ||
		scr_fail "the relay never had both ends' keys: the test proves nothing" || return
	[[ $(scr_json "$SCR_TMP/twopaths.client.json" error) != None ]] ||
		scr_fail "the client's connection was not reset" || return
	[[ $(scr_json "$SCR_TMP/twopaths.server.json" error) != None ]] ||
		scr_fail "the server's connection was not reset" || return
	secs=$(scr_json "$SCR_TMP/twopaths.client.json" seconds)
	python3 -c "import sys; sys.exit(not $secs < 5)" ||
		scr_fail "the reset took ${secs}s, not the join's round trip" || return
	(($(scr_mib "$SCR_CLI" MPTcpExtScrambleJoinHmac) - c_hmac == 1)) ||
		scr_fail "MPTcpExtScrambleJoinHmac on the client did not count one reset" || return
	(($(scr_mib "$SCR_CLI" MPTcpExtMPJoinSynAckHMacFailure) > c_synack)) ||
		scr_fail "the client saw no MP_JOIN SYN-ACK HMAC failure" || return
	(($(scr_mib "$SCR_SRV" MPTcpExtMPFastcloseRx) > s_fc)) ||
		scr_fail "the server got no MP_FASTCLOSE" || return
	# nothing wrong reached the application: a correct prefix, not all
	is_prefix "$SCR_TMP/twopaths.recv" ||
		scr_fail "the server received bytes that are not the client's" || return
	(($(stat -c %s "$SCR_TMP/twopaths.recv") < $(stat -c %s "$SCR_TMP/expected"))) ||
		scr_fail "the whole stream got through"
}

scr_load || scr_skip_all "cannot load $SCR_MODULE"
scr_topology 2
for ns in "$SCR_CLI" "$SCR_SRV"; do
	ip netns exec "$ns" sysctl -qw net.mptcp_scramble.mode=hardened
done

scr_ktap_header
scr_ktap_plan 2
scr_run one_path_the_man_in_the_middle_reads_everything test_one_path_the_man_in_the_middle_reads_everything
scr_run second_path_catches_the_man_in_the_middle test_second_path_catches_the_man_in_the_middle
scr_finish
