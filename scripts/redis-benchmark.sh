#!/usr/bin/env bash
# Runs redis-benchmark's list tests (LPUSH, RPUSH, LPOP, RPOP) against keyq's RESP
# listener, once plain and once with 50 clients pipelining 16 commands each, and
# fails if redis-benchmark reports any error or a test does not complete.
#
# When it runs keyq itself and redis-server is installed, it then compares the two
# (issue 6): LPUSH and RPOP with 50 clients pipelining 16, against keyq and against
# a redis-server in memory (--save "" --appendonly no), one after the other, and
# prints each server's requests per second and its CPU time per million requests
# (from /proc, less disturbed by other work on the machine than the rate). The
# comparison never fails the script: speed is reported, not checked.
#
# Usage: scripts/redis-benchmark.sh PORT [HOST]   benchmarks a running keyq (or any
#                                                  Redis-speaking server)
#        scripts/redis-benchmark.sh               builds keyq, runs it in memory on
#                                                  free ports, benchmarks it, compares
#                                                  it with redis-server, stops both
# Needs redis-benchmark and redis-cli (Debian's redis-tools), to build, go, and to
# compare, redis-server. COMPARE_REQUESTS sets the requests per compared test
# (default 1000000).
set -euo pipefail

cd "$(dirname "$0")/.."
work=$(mktemp -d)
server_pid=""

redis_pid=""

stop() {
	if [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; then
		kill -TERM "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}

cleanup() {
	stop "$server_pid"
	stop "$redis_pid"
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

# cpu_ticks prints the user and system time of process $1 in clock ticks (the
# fields after the command name, which is in parentheses, of /proc/PID/stat).
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# start_redis starts redis-server in memory on a free port, trying a few.
start_redis() {
	for _ in 1 2 3 4 5; do
		redis_port=$((20000 + RANDOM % 40000))
		redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
			--dir "$work" >"$work/redis.log" 2>&1 &
		redis_pid=$!
		for _ in $(seq 50); do
			if [[ $(redis-cli -p "$redis_port" PING 2>/dev/null) == PONG ]]; then
				return 0
			fi
			kill -0 "$redis_pid" 2>/dev/null || break
			sleep 0.1
		done
		stop "$redis_pid"
		redis_pid=""
	done
	return 1
}

# compare_one runs test $3 against the server on port $2 with pid $4 and prints
# its line of the comparison under the name $1.
compare_one() {
	local name=$1 port=$2 test=$3 pid=$4 before after rps
	before=$(cpu_ticks "$pid")
	rps=$(redis-benchmark -h 127.0.0.1 -p "$port" -t "$test" -c 50 -P 16 -n "$requests" -q \
		2>&1 | tr '\r' '\n' | grep 'requests per second' | tail -n1 | awk '{print $2}')
	after=$(cpu_ticks "$pid")
	awk -v n="$name" -v t="$test" -v r="${rps:-?}" -v c=$((after - before)) \
		-v hz="$(getconf CLK_TCK)" -v m="$requests" \
		'BEGIN { printf "%-6s %-6s %12s %10.3f\n", n, toupper(t), r, c / hz / (m / 1e6) }'
}

compare() {
	if ! command -v redis-server >/dev/null; then
		echo "skip comparison with Redis: no redis-server"
		return
	fi
	if ! start_redis; then
		echo "skip comparison with Redis: redis-server did not start"
		cat "$work/redis.log"
		return
	fi
	requests=${COMPARE_REQUESTS:-1000000}
	echo "== keyq and $(redis-server --version | awk '{print $1, $2, $3}')," \
		"redis-benchmark -c 50 -P 16 -n $requests"
	printf "%-6s %-6s %12s %10s\n" server test "requests/s" "cpu s/1e6"
	# LPUSH then RPOP, so that RPOP takes what LPUSH left; one server after the
	# other, so that they do not share the machine.
	for test in lpush rpop; do
		compare_one keyq "$port" "$test" "$server_pid"
		compare_one redis "$redis_port" "$test" "$redis_pid"
	done
	stop "$redis_pid"
	redis_pid=""
}

run
run -c 50 -P 16
echo "ok   redis-benchmark completed without errors"
if [[ -n $server_pid ]]; then
	compare
fi
