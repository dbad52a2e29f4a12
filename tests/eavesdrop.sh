#!/usr/bin/env bash
# What a one-path eavesdropper recovers, end to end: real scrambled
# transfers captured on one path, analysed by mptcp-eavesdrop against the
# true plaintext.  Keeps the analysis tool honest on the kernel's real
# traffic (DSS mappings, keys in the handshake, the chain attack).
source "$(dirname "$0")/lib.sh"

scr_require_root
scr_require_cmd ip tc tcpdump python3 mptcp-traffic mptcp-eavesdrop
scr_require_module_file

# analyse NAME PATTERN DEV: capture DEV during a scrambled 4 MiB upload of
# PATTERN (http: 60 HTTP-like transactions, the responses analysed) and
# analyse it; the JSON report is $SCR_TMP/NAME.json, its figures a
# diagnostic (report).
analyse() {
	local name=$1 pattern=$2 dev=$3 model=uniform traffic direction=client-to-server
	case $pattern in
	http)
		mptcp-traffic pattern --pattern http-responses --messages 60 > "$SCR_TMP/$name.truth"
		traffic=(--http ::client --transactions 60)
		model=http direction=server-to-client ;;
	*)
		mptcp-traffic pattern --pattern "$pattern" --bytes 4M > "$SCR_TMP/$name.truth"
		traffic=(--bytes 4M --pattern "$pattern")
		[[ $pattern == text ]] && model=english ;;
	esac
	scr_capture "$SCR_CLI" "$dev" "$name"
	scr_transfer "$name" 10.0.1.2:4100 "${traffic[@]}" || return
	scr_capture_stop
	mptcp-eavesdrop analyze "$SCR_TMP/$name.pcap" --truth "$SCR_TMP/$name.truth" \
		--direction "$direction" --model "$model" --json > "$SCR_TMP/$name.json" ||
		scr_fail "$name: analysis failed" || return
	report "$name"
}

# field NAME KEY: a field of the JSON report.
field() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$SCR_TMP/$1.json" "$2"
}

# check NAME PYTHON-EXPRESSION: assert on the report's fields.
check() {
	python3 - "$SCR_TMP/$1.json" "$2" <<'PY' || scr_fail "$1: want $2"
import json, sys
r = json.load(open(sys.argv[1]))
# The truth's score of the primary stream, as "truth".
r["truth"] = next((d["truth"] for c in r["connections"] for d in c["directions"] if d.get("truth")), None)
sys.exit(not eval(sys.argv[2], {}, r))
PY
}

report() {
	scr_diag "$1: path carried $(field "$1" coverage_fraction), keys seen $(field "$1" keys_seen)," \
		"recovered $(field "$1" recovered_fraction) (keys $(field "$1" recovered_key_fraction)," \
		"chains $(field "$1" recovered_chain_fraction))"
}

test_text_on_path_2_partly_recovered_by_chains() {
	analyse text-p2 text c2 || return
	check text-p2 "not keys_seen and coverage_fraction > 0.005" || return
	check text-p2 "recovered_key_fraction == 0 and 0 < recovered_chain_fraction <= coverage_fraction + 0.01" || return
	# Placed in the stream from the scrambled bytes alone, the runs read
	# as text nearly as far as the path carried them.
	check text-p2 "truth['alignment'] == 'search' and recovered_chain_fraction > 0.8 * coverage_fraction"
}

test_keys_on_path_1_decode_the_head() {
	analyse text-p1 text c1 || return
	check text-p1 "keys_seen and recovered_key_fraction > 0"
}

test_http_responses_on_path_1_read_as_far_as_carried() {
	analyse http-p1 http c1 || return
	check http-p1 "keys_seen and truth['alignment'] == 'start'" || return
	check http-p1 "coverage_fraction > 0 and recovered_fraction > 0.95 * coverage_fraction"
}

test_random_data_resists_the_chain_attack() {
	analyse random-p2 random c2 || return
	check random-p2 "coverage_fraction > 0.005 and recovered_chain_fraction < 0.05"
}

scr_load || scr_skip_all "cannot load $SCR_MODULE"
scr_topology 2
# Slow enough that the MP_JOIN subflow is up long before path 1 alone
# could carry the stream, even on the debug kernel under TCG (at 25 Mbit/s
# it once came after all but 0.1% of it).
scr_shape 10mbit

scr_ktap_header
scr_ktap_plan 4
scr_run text_on_path_2_partly_recovered_by_chains test_text_on_path_2_partly_recovered_by_chains
scr_run keys_on_path_1_decode_the_head test_keys_on_path_1_decode_the_head
scr_run http_responses_on_path_1_read_as_far_as_carried test_http_responses_on_path_1_read_as_far_as_carried
scr_run random_data_resists_the_chain_attack test_random_data_resists_the_chain_attack
scr_unload
scr_finish
