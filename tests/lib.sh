# shellcheck shell=bash
# The mptcp-scramble test library: KTAP output, prerequisites, namespaces,
# the topology, the module, traffic and captures, the kernel log.
#
# Who sources whom, one way only:
#
#   scripts/lib.sh    paths, build settings, the splat pattern; sources nothing
#         ^
#   tests/lib.sh      this library
#         ^
#   tests/*.sh, and the VM workloads scripts/demo, scripts/bench and
#   scripts/security
#
# The rules of a test file:
# - one vocabulary: the library's names are prefixed scr_ and SCR_ (those
#   starting with an underscore are its own, for no other file); a test
#   file's own helpers have no prefix;
# - KTAP output: scr_ktap_header, scr_ktap_plan N, scr_run for each case,
#   scr_finish;
# - a missing prerequisite makes a test file exit with $KSFT_SKIP (4); with
#   SCR_STRICT=1 (what `make test` and CI set) it fails instead, since a
#   skipped test proves nothing;
# - namespaces come from scr_netns_add (or scr_topology), named with a
#   random suffix; they and $SCR_TMP go in the EXIT trap;
# - every process started in the background runs under `timeout`;
# - whatever a test waits for (a server listening, a capture started, a
#   subflow up, a counter reached) is polled with scr_wait_for, with a
#   limit; a `sleep` only ever sets a time window on purpose.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

# Paths, and what a kernel splat looks like (SCR_SPLAT_RE, scr_splats).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SCR_MODULE=${SCR_MODULE:-$SCR_ROOT/src/mptcp_scramble.ko}
SCR_STRICT=${SCR_STRICT:-0}
SCR_NAME=$(basename "$0" .sh)
SCR_SUFFIX=$(printf '%04x%04x' $RANDOM $RANDOM)
# The test file's scratch directory: reports, captures, logs.
SCR_TMP=$(mktemp -d /tmp/scr-test.XXXXXX)

# Every counter of /proc/net/mptcp_scramble, in order.
# shellcheck disable=SC2034 # for the test files
SCR_COUNTERS=(connections_scrambled connections_plain connections_live
	bytes_scrambled bytes_descrambled rx_copies rx_drops latch_refused
	tfo_syn_data_refused peer_no_offer refused downgrades keypool_empty
	keypool_inline handshake_failed kprobe_misses)

_scr_planned=0
_scr_done=0
_scr_failed=0
_scr_dmesg_mark=0

scr_ktap_header() {
	echo "TAP version 13"
}

scr_ktap_plan() {
	_scr_planned=$1
	echo "1..$1"
}

# scr_diag MESSAGE...: a KTAP diagnostic line.
scr_diag() {
	printf '# %s\n' "$*"
}

# scr_skip_all REASON: a prerequisite is missing.
scr_skip_all() {
	if ((SCR_STRICT)); then
		scr_diag "required: $*"
		echo "not ok 1 $SCR_NAME # prerequisite missing: $*"
		exit $KSFT_FAIL
	fi
	echo "1..0 # SKIP $*"
	exit $KSFT_SKIP
}

scr_require_root() {
	[[ $(id -u) == 0 ]] || scr_skip_all "must run as root (use scripts/vm)"
}

scr_require_cmd() {
	local c
	for c; do
		command -v "$c" >/dev/null || scr_skip_all "command $c not found"
	done
}

scr_require_module_file() {
	[[ -f $SCR_MODULE ]] || scr_skip_all "$SCR_MODULE not built (make module)"
}

# scr_mark_dmesg, then scr_dmesg_since_mark: the kernel log since the
# mark (scr_run sets one before each test case).
scr_mark_dmesg() {
	_scr_dmesg_mark=$(dmesg | wc -l)
}

scr_dmesg_since_mark() {
	dmesg | tail -n +"$((_scr_dmesg_mark + 1))"
}

# scr_run NAME FUNCTION [ARG...]: run one test case; it fails if FUNCTION
# fails or if the kernel log grew a splat meanwhile.
scr_run() {
	local name=$1 rc=0 splat
	shift
	scr_mark_dmesg
	"$@" || rc=$?
	if splat=$(scr_dmesg_since_mark | scr_splats); then
		scr_diag "kernel splat during $name:"
		printf '%s\n' "$splat" | sed 's/^/#   /'
		rc=1
	fi
	if scr_loaded && (($(scr_counter kprobe_misses) > 0)); then
		scr_diag "kprobes skipped $(scr_counter kprobe_misses) hook calls"
		rc=1
	fi
	_scr_done=$((_scr_done + 1))
	if ((rc == 0)); then
		echo "ok $_scr_done $name"
	else
		_scr_failed=$((_scr_failed + 1))
		echo "not ok $_scr_done $name"
	fi
	return 0
}

# scr_fail MESSAGE...: say why a test case fails, and fail it.
scr_fail() {
	scr_diag "FAIL: $*"
	return 1
}

scr_finish() {
	if ((_scr_done != _scr_planned)); then
		scr_diag "planned $_scr_planned tests, ran $_scr_done"
		exit $KSFT_FAIL
	fi
	scr_diag "$SCR_NAME: $((_scr_done - _scr_failed)) passed, $_scr_failed failed"
	((_scr_failed == 0)) && exit $KSFT_PASS
	exit $KSFT_FAIL
}

# The module.
scr_loaded() {
	grep -q '^mptcp_scramble ' /proc/modules
}

# scr_load [PARAM=VALUE...]: insmod the module unless it is loaded (with
# the module parameters given), then apply SCR_MODE.
scr_load() {
	scr_loaded || insmod "$SCR_MODULE" "$@" || return
	scr_apply_mode
}

# scr_apply_mode: with SCR_MODE set (paper or hardened; tests/run sets it
# for NAME.sh@MODE), the test's namespaces scramble in that mode: those
# that exist, and those made later, which start with the initial
# namespace's mode.  A fresh insmod resets the sysctls, so scr_load calls
# this again.
scr_apply_mode() {
	local ns
	[[ -n ${SCR_MODE:-} ]] || return 0
	sysctl -qw net.mptcp_scramble.mode="$SCR_MODE" || return
	for ns in ${SCR_CLI:-} ${SCR_SRV:-}; do
		ip netns exec "$ns" sysctl -qw net.mptcp_scramble.mode="$SCR_MODE" || return
	done
}

scr_unload() {
	! scr_loaded || rmmod mptcp_scramble
}

# scr_kprobe_kinds: the kind of each hook's kprobe in the kprobes core's list,
# one word per hook: ftrace, optimized or trapped.
scr_kprobe_kinds() {
	local list=/sys/kernel/debug/kprobes/list
	[[ -r $list ]] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	awk '/mptcp_scramble_hook_/ {
		kind = "trapped"
		if (/\[FTRACE\]/) kind = "ftrace"
		else if (/\[OPTIMIZED\]/) kind = "optimized"
		print kind
	}' "$list"
}

# scr_kprobes_all KIND: all 7 hooks' kprobes are of KIND.
scr_kprobes_all() {
	local kinds
	kinds=$(scr_kprobe_kinds | sort | uniq -c | awk '{ print $1, $2 }')
	[[ $kinds == "7 $1" ]]
}

# scr_refcount: the module's use count (live scrambled connections).
scr_refcount() {
	cat /sys/module/mptcp_scramble/refcnt
}

# scr_counter [NETNS] NAME: a counter of /proc/net/mptcp_scramble.
scr_counter() {
	local in_ns=()
	if (($# == 2)); then
		in_ns=(ip netns exec "$1")
		shift
	fi
	# shellcheck disable=SC2016 # awk's $1 and $2
	"${in_ns[@]}" awk -v n="$1" '$1 == n { print $2; found = 1 } END { exit !found }' /proc/net/mptcp_scramble
}

# scr_wait_for [-t SECS] CMD...: poll CMD, 20 times a second, until it
# succeeds; fail if it did not within SECS seconds of polling (default 10;
# more time passes if CMD itself is slow).  The kernel's selftests wait
# the same way (mptcp_lib_wait_local_port_listen).
scr_wait_for() {
	local secs=10 i
	if [[ $1 == -t ]]; then
		secs=$2
		shift 2
	fi
	for ((i = 0; i < secs * 20; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.05 # the poll interval
	done
	return 1
}

# scr_netns_add NAME: make namespace NAME-$SCR_SUFFIX, print its name.
scr_netns_add() {
	local ns="$1-$SCR_SUFFIX"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	echo "$ns"
}

# scr_cleanup: delete every namespace of this test file (found by its
# suffix: scr_netns_add runs in a subshell, $(...), and cannot keep a
# list), with the processes in it.  Also when the test file exits, and
# $SCR_TMP then too.
scr_cleanup() {
	local ns
	for ns in $(ip netns list | awk '{ print $1 }' | grep -e "-$SCR_SUFFIX\$"); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
}
trap 'scr_cleanup; rm -rf "$SCR_TMP"' EXIT

# The two-path topology of the paper, between two namespaces, with
# `scr_topology [PATHS]` paths (default 2; 4 gives four subflows):
#
#        client ns ($SCR_CLI)                 server ns ($SCR_SRV)
#   c1  10.0.1.1  dead:1::1  ------ path 1 ------  10.0.1.2  dead:1::2  s1
#   c2  10.0.2.1  dead:2::1  ------ path 2 ------  10.0.2.2  dead:2::2  s2
#   ...
#
# Connections go to the server's path-1 address, so the initial subflow
# uses path 1 (the "trusted" one).  The client has an MPTCP "subflow"
# endpoint on each other path, with a source-address rule that routes that
# path's subflow over it: path 2 (the "untrusted WLAN" the tests capture)
# carries a share of the data.
SCR_CLI=
SCR_SRV=
scr_topology() {
	local paths=${1:-2} i
	SCR_CLI=$(scr_netns_add cli)
	SCR_SRV=$(scr_netns_add srv)
	for ((i = 1; i <= paths; i++)); do
		ip link add "c$i" netns "$SCR_CLI" type veth peer name "s$i" netns "$SCR_SRV"
		ip -n "$SCR_CLI" addr add "10.0.$i.1/24" dev "c$i"
		ip -n "$SCR_SRV" addr add "10.0.$i.2/24" dev "s$i"
		ip -n "$SCR_CLI" addr add "dead:$i::1/64" dev "c$i" nodad
		ip -n "$SCR_SRV" addr add "dead:$i::2/64" dev "s$i" nodad
		ip -n "$SCR_CLI" link set "c$i" up
		ip -n "$SCR_SRV" link set "s$i" up
		((i > 1)) || continue
		ip -n "$SCR_CLI" rule add from "10.0.$i.1" table $((100 + i))
		ip -n "$SCR_CLI" route add 10.0.1.0/24 via "10.0.$i.2" dev "c$i" table $((100 + i))
		ip -n "$SCR_CLI" -6 rule add from "dead:$i::1" table $((100 + i))
		ip -n "$SCR_CLI" -6 route add dead:1::/64 via "dead:$i::2" dev "c$i" table $((100 + i))
		scr_subflow_endpoints "$i"
	done
	ip -n "$SCR_CLI" mptcp limits set subflow 8 add_addr_accepted 8
	ip -n "$SCR_SRV" mptcp limits set subflow 8 add_addr_accepted 8
	ip netns exec "$SCR_CLI" sysctl -qw net.mptcp.enabled=1
	ip netns exec "$SCR_SRV" sysctl -qw net.mptcp.enabled=1
	! scr_loaded || scr_apply_mode
}

# scr_subflow_endpoints PATH: the client's MPTCP subflow endpoints (IPv4
# and IPv6) on path PATH, 2 or more: what scr_topology sets up, to add again
# after an `ip mptcp endpoint flush`.
scr_subflow_endpoints() {
	ip -n "$SCR_CLI" mptcp endpoint add "10.0.$1.1" dev "c$1" subflow
	ip -n "$SCR_CLI" mptcp endpoint add "dead:$1::1" dev "c$1" subflow
}

# scr_set_enabled 0|1: net.mptcp_scramble.enabled in both namespaces of the
# topology.
scr_set_enabled() {
	ip netns exec "$SCR_CLI" sysctl -qw net.mptcp_scramble.enabled="$1"
	ip netns exec "$SCR_SRV" sysctl -qw net.mptcp_scramble.enabled="$1"
}

# scr_counter_ge [NETNS] NAME N: whether a counter has reached N.
scr_counter_ge() {
	local v
	v=$(scr_counter "${@:1:$#-1}") && ((v >= ${!#}))
}

# scr_shape RATE [NETEM-OPTION...]: limit both directions of every path to
# RATE (a tc rate, e.g. 100mbit), so transfers last long enough for
# MP_JOIN subflows to come up; scr_shape off removes the limit.  netem
# queues 1000 packets by default and drops what does not fit (for
# example "limit 10000" makes the queue longer).
scr_shape() {
	local ns dev
	for ns in "$SCR_CLI" "$SCR_SRV"; do
		for dev in $(ip -n "$ns" -o link show type veth | awk -F'[ :@]+' '{ print $2 }'); do
			tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null
			[[ $1 == off ]] || tc -n "$ns" qdisc add dev "$dev" root netem rate "$@"
		done
	done
}

# scr_split_opts OPT...: OPTs before any ::server or ::client marker into
# the array common, those after ::server into srv_opts, after ::client
# into cli_opts (arrays the caller declares local).
scr_split_opts() {
	local to=common o
	for o; do
		case $o in
		::server) to=srv_opts ;;
		::client) to=cli_opts ;;
		*) eval "$to+=(\"\$o\")" ;;
		esac
	done
}

# scr_transfer NAME ADDR:PORT [OPT...] [::server OPT...] [::client OPT...]:
# run an mptcp-traffic server in $SCR_SRV listening on ADDR:PORT and a
# client in $SCR_CLI connecting to it.  The leading options (--bytes,
# --pattern, --direction, ...) go to both ends, the others to one end.
# Their JSON reports land in $SCR_TMP/NAME.{server,client}.json, their
# stderr in .log.  Succeeds if both ends report every byte intact.
scr_transfer() {
	local name=$1 addr=$2 common=() srv_opts=() cli_opts=() spid rc=0
	shift 2
	scr_split_opts "$@"
	rm -f "$SCR_TMP/$name.ready"
	ip netns exec "$SCR_SRV" timeout 180 mptcp-traffic server --listen "$addr" \
		--ready-file "$SCR_TMP/$name.ready" --quiet ${common[@]+"${common[@]}"} ${srv_opts[@]+"${srv_opts[@]}"} \
		> "$SCR_TMP/$name.server.json" 2> "$SCR_TMP/$name.server.log" &
	spid=$!
	if ! scr_wait_for test -e "$SCR_TMP/$name.ready"; then
		kill "$spid" 2>/dev/null
		scr_diag "$name: server did not start: $(tail -n 3 "$SCR_TMP/$name.server.log")"
		return 1
	fi
	ip netns exec "$SCR_CLI" timeout 180 mptcp-traffic client --connect "$addr" \
		--quiet ${common[@]+"${common[@]}"} ${cli_opts[@]+"${cli_opts[@]}"} \
		> "$SCR_TMP/$name.client.json" 2> "$SCR_TMP/$name.client.log" || rc=$?
	wait "$spid" || rc=$((rc ? rc : $?))
	if ((rc)); then
		scr_diag "$name: client: $(tail -n 3 "$SCR_TMP/$name.client.log" | tr '\n' ' ')"
		scr_diag "$name: server: $(tail -n 3 "$SCR_TMP/$name.server.log" | tr '\n' ' ')"
	fi
	return $rc
}

# scr_json FILE FIELD: FIELD of the last (summary) JSON line of FILE.
scr_json() {
	python3 -c 'import json, sys
line = [l for l in open(sys.argv[1]) if l.strip()][-1]
v = json.loads(line)
for k in sys.argv[2].split("."):
    v = v[k]
print(v)' "$1" "$2"
}

# scr_conn_json FILE FIELD: FIELD of the first connection's JSON line of
# FILE (what that connection moved, its error, its mismatch...).
scr_conn_json() {
	python3 -c 'import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
v = next(l for l in lines if l.get("type") == "connection")
for k in sys.argv[2].split("."):
    v = v[k]
print(v)' "$1" "$2"
}

# scr_conn_errno FILE: the name (ECONNRESET, EPIPE, ...) of the error that
# ended FILE's first connection, from the "(os error N)" of mptcp-traffic's
# error text; the text itself if it has none (an end of stream, a timeout).
scr_conn_errno() {
	local err
	err=$(scr_conn_json "$1" error) || return
	if [[ $err =~ \(os\ error\ ([0-9]+)\) ]]; then
		python3 -c 'import errno, sys; print(errno.errorcode.get(int(sys.argv[1]), sys.argv[1]))' "${BASH_REMATCH[1]}"
	else
		echo "$err"
	fi
}

# scr_capture NS DEV NAME: capture the TCP packets of DEV in NS to
# $SCR_TMP/NAME.pcap until scr_capture_stop.  Returns once tcpdump is
# listening.  Several captures may run at once.
_scr_cap_pids=()
_scr_cap_files=()
scr_capture() {
	local pcap=$SCR_TMP/$3.pcap log=$SCR_TMP/$3.tcpdump.log
	rm -f "$pcap"
	ip netns exec "$1" timeout 300 tcpdump --immediate-mode -i "$2" -s 0 -U -w "$pcap" tcp 2> "$log" &
	_scr_cap_pids+=($!)
	_scr_cap_files+=("$pcap")
	scr_wait_for grep -q "listening on" "$log"
}

# scr_capture_stop: stop every capture, each once it has written what it
# saw (its file has not grown for 0.2 s).
scr_capture_stop() {
	local pcap
	for pcap in ${_scr_cap_files[@]+"${_scr_cap_files[@]}"}; do
		_scr_size=-1 _scr_still=0
		scr_wait_for _scr_settled "$pcap"
	done
	if ((${#_scr_cap_pids[@]})); then
		kill -INT "${_scr_cap_pids[@]}" 2>/dev/null
		wait "${_scr_cap_pids[@]}" 2>/dev/null
	fi
	_scr_cap_pids=()
	_scr_cap_files=()
	return 0
}

# _scr_settled FILE: FILE's size was the same at the last four calls (0.2 s
# of scr_wait_for).  Start with _scr_size=-1 _scr_still=0.
_scr_settled() {
	local size
	size=$(stat -c %s "$1") || return
	if ((size == _scr_size)); then
		((++_scr_still >= 4))
	else
		_scr_size=$size _scr_still=0
		return 1
	fi
}

# scr_mib NS NAME: the MIB counter NAME (as nstat names it, e.g.
# MPTcpExtMPJoinAckRx) of namespace NS.
scr_mib() {
	# shellcheck disable=SC2016 # awk's $1 and $2
	ip netns exec "$1" nstat -asz "$2" | awk -v m="$2" '$1 == m { print $2 }'
}

# scr_joins: the MP_JOIN subflows the server has accepted so far.
scr_joins() {
	scr_mib "$SCR_SRV" MPTcpExtMPJoinAckRx
}
