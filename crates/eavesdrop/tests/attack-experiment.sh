#!/bin/bash
# Measures what a one-path observer recovers from real two-path MPTCP
# transfers (needs root; see make-captures.sh).
#
#   attack-experiment.sh WORKDIR RATE DATA MODEL...
#
# sends DATA client-to-server over two equal paths limited to RATE, makes
# a scrambled copy of the capture of each path (the host kernel sends
# plaintext; `mptcp-eavesdrop scramble` rewrites each payload byte with
# what the module would send at its DSN), and prints, per path and byte
# model, coverage and the fractions of DATA recovered exactly.
set -euo pipefail

work=$1 rate=$2 data=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
tool=${EAVESDROP:-$here/../../../target/release/mptcp-eavesdrop}
printf 'HTTP/1.1 204 No Content\r\n\r\n' >"$work.response"

"$here/make-captures.sh" "$work" "$data" "$work.response" "$rate"
"$tool" scramble "$work/path1.pcap" "$work/path1-scrambled.pcap" --truth "$data" 2>/dev/null
"$tool" scramble "$work/any.pcap" "$work/path2-scrambled.pcap" --truth "$data" --only-host 10.99.2.1 2>/dev/null

for path in path1 path2; do
	for model in "$@"; do
		"$tool" analyze "$work/$path-scrambled.pcap" --direction c2s --truth "$data" --model "$model" --json |
			python3 -c '
import json, sys
r = json.load(sys.stdin)
d = [d for c in r["connections"] for d in c["directions"]][0]
t = d["truth"]
print("%s %-10s keys=%-5s coverage=%5.1f%% runs=%-3d longest=%-6d windows=%5.1f%% recovered=%5.1f%% (key %5.1f%%, chain %5.1f%%; chain guesses right %s)" % (
    sys.argv[1], sys.argv[2][-10:], r["keys_seen"], 100 * r["coverage_fraction"], d["runs"], r["longest_run"],
    100 * r["window_fraction"], 100 * r["recovered_fraction"], 100 * r["recovered_key_fraction"],
    100 * r["recovered_chain_fraction"],
    "%.1f%%" % (100 * t["chain_accuracy"]) if t["chain_accuracy"] is not None else "-"))
' "$path" "$model"
	done
done
