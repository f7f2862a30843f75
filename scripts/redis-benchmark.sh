#!/usr/bin/env bash
# Runs redis-benchmark's list tests (LPUSH, RPUSH, LPOP, RPOP) against keyq's RESP
# listener, once plain and once with 50 clients pipelining 16 commands each, and
# fails if redis-benchmark reports any error or a test does not complete.
#
# Usage: scripts/redis-benchmark.sh PORT [HOST]   benchmarks a running keyq (or any
#                                                  Redis-speaking server)
#        scripts/redis-benchmark.sh               builds keyq, runs it in memory on
#                                                  free ports, benchmarks it, stops it
# Needs redis-benchmark and redis-cli (Debian's redis-tools) and, to build, go.
set -euo pipefail

cd "$(dirname "$0")/.."
work=$(mktemp -d)
server_pid=""

cleanup() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	if [[ -f $work/server.log ]]; then
		echo "--- server log" >&2
		tail -n 20 "$work/server.log" >&2
	fi
	exit 1
}

start_keyq() {
	go build -o "$work/keyq" ./cmd/keyq
	"$work/keyq" serve --storage memory --addr 127.0.0.1:0 --http-addr "" \
		--resp-addr 127.0.0.1:0 >"$work/server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 100); do
		if addr=$(grep -o 'resp_addr=[^ ]*' "$work/server.log" | head -n1) && [[ -n $addr ]]; then
			port=${addr##*:}
			return
		fi
		kill -0 "$server_pid" 2>/dev/null || fail "keyq exited at start"
		sleep 0.1
	done
	fail "keyq did not log its resp_addr"
}

host=${2:-127.0.0.1}
port=${1:-}
[[ -n $port ]] || start_keyq

[[ $(redis-cli -h "$host" -p "$port" PING) == PONG ]] || fail "PING did not answer PONG"

run() {
	echo "== redis-benchmark -t lpush,rpush,lpop,rpop -n 100000 -q $*"
	if ! redis-benchmark -h "$host" -p "$port" -t lpush,rpush,lpop,rpop -n 100000 -q "$@" \
		>"$work/bench.out" 2>&1; then
		cat "$work/bench.out"
		fail "redis-benchmark exited with an error"
	fi
	# -q prints one "TEST: N requests per second" line per test; anything else
	# (server errors, connection resets) is a failure.
	tr '\r' '\n' <"$work/bench.out" | grep -v '^ *$' | grep -v 'requests per second' \
		| grep -v 'rps=' >"$work/other.out" || true
	grep 'requests per second' "$work/bench.out" | tr '\r' '\n' \
		| grep 'requests per second' || true
	if [[ -s $work/other.out ]]; then
		cat "$work/other.out"
		fail "redis-benchmark reported errors"
	fi
	local n
	n=$(tr '\r' '\n' <"$work/bench.out" | grep -c 'requests per second' || true)
	[[ $n -eq 4 ]] || fail "$n of 4 tests completed"
}

run
run -c 50 -P 16
echo "ok   redis-benchmark completed without errors"
