#!/usr/bin/env bash
# End-to-end check of keyq's HTTP API with curl: put a file and get it back byte for
# byte, list and describe queues, refuse bad names and oversized bodies, wait, delete,
# and read /metrics, /healthz and /readyz.
#
# Usage: scripts/http-e2e.sh            builds keyq, runs it on free ports, stops it
#        KEYQ_HTTP=http://host:port scripts/http-e2e.sh   checks a running server
#                                       (it must use the default 1 MiB message limit)
# Needs curl, jq, cmp and, without KEYQ_HTTP, go.
set -euo pipefail

cd "$(dirname "$0")/.."
work=$(mktemp -d)
server_pid=""
server_log=""
starts=0

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
	if [[ -n $server_log && -f $server_log ]]; then
		echo "--- server log" >&2
		tail -n 20 "$server_log" >&2
	fi
	exit 1
}

passed=0
ok() {
	passed=$((passed + 1))
	echo "ok   $*"
}

# start_server builds keyq once and runs it with the HTTP API on a free port and its
# log in $work/data, reading the address it got from its JSON start line.
start_server() {
	[[ -x $work/keyq ]] || go build -o "$work/keyq" ./cmd/keyq
	starts=$((starts + 1))
	server_log="$work/server-$starts.log"
	"$work/keyq" serve --addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-format json \
		--data-dir "$work/data" \
		>"$server_log" 2>&1 &
	server_pid=$!

	local addr=""
	for _ in $(seq 1 200); do
		addr=$(jq -r 'select(.msg == "listening") | .http_addr // empty' \
			"$server_log" 2>/dev/null | head -n 1)
		[[ -n $addr ]] && break
		kill -0 "$server_pid" 2>/dev/null || fail "keyq serve exited"
		sleep 0.05
	done
	[[ -n $addr ]] || fail "no http_addr in the start line of the server log"
	KEYQ_HTTP="http://$addr"
}

# status METHOD PATH [curl args...] prints the HTTP status; the body goes to $work/body.
status() {
	local method=$1 path=$2
	shift 2
	curl -sS -X "$method" -o "$work/body" -w '%{http_code}' "$@" "$KEYQ_HTTP$path"
}

expect() {
	local what=$1 want=$2 got=$3
	[[ $got == "$want" ]] || fail "$what: got $got, want $want ($(head -c 300 "$work/body"))"
	ok "$what"
}

if [[ -z ${KEYQ_HTTP:-} ]]; then
	start_server
fi
echo "testing $KEYQ_HTTP"
run=$$
q="e2e-$run"

# A binary file, put and got back byte for byte.
head -c 300000 /dev/urandom >"$work/in.bin"
code=$(status POST "/v1/queues/$q/messages" --data-binary "@$work/in.bin" \
	-H 'Content-Type: application/octet-stream')
expect "put a 300 kB file" 201 "$code"
id=$(jq -r .id "$work/body")

code=$(status POST "/v1/queues/$q/get" -D "$work/headers")
expect "get it back" 200 "$code"
cmp -s "$work/in.bin" "$work/body" || fail "the file came back changed"
ok "same bytes"
got_id=$(tr -d '\r' <"$work/headers" | awk -F': ' 'tolower($1) == "keyq-message-id" { print $2 }')
expect "message id header" "$id" "$got_id"

expect "empty queue" 204 "$(status POST "/v1/queues/$q/get")"
expect "wait runs out" 204 "$(status POST "/v1/queues/$q/get?wait=200ms")"

# An empty message is a message.
expect "put an empty message" 201 "$(status POST "/v1/queues/$q/messages" --data-binary '')"
code=$(status POST "/v1/queues/$q/get")
[[ $code == 200 && ! -s $work/body ]] || fail "empty message: got $code"
ok "empty message comes back empty"

# An awkward but valid name, encoded as one segment.
odd="e2e a/b?#% $run"
enc=$(jq -rn --arg q "$odd" '$q|@uri')
for m in one two; do
	expect "put on \"$odd\"" 201 \
		"$(status POST "/v1/queues/$enc/messages" --data-binary "$m")"
done
expect "describe it" 200 "$(status GET "/v1/queues/$enc")"
expect "its name" "$odd" "$(jq -r .name "$work/body")"
expect "its length" 2 "$(jq -r .messages "$work/body")"

expect "list" 200 "$(status GET /v1/queues)"
expect "listed with its stats" 2 \
	"$(jq --arg q "$odd" '.queue_stats[] | select(.name == $q) | .messages' "$work/body")"

# Bad names and bodies.
expect "NUL in a name" 400 "$(status POST /v1/queues/a%00b/messages --data-binary x)"
expect "its code" "invalid_key 20" "$(jq -r '"\(.error.code) \(.error.status)"' "$work/body")"
expect "empty name" 400 "$(status POST /v1/queues//get)"
expect "list still works" 200 "$(status GET /v1/queues)"
head -c $((1024 * 1024 + 1)) /dev/zero >"$work/big.bin"
expect "body over 1 MiB" 413 \
	"$(status POST "/v1/queues/$q/messages" --data-binary "@$work/big.bin")"
expect "its code" message_too_large "$(jq -r .error.code "$work/body")"

# Metrics see what happened.
expect "metrics" 200 "$(status GET /metrics)"
puts=$(awk -v q="$q" '$1 == "keyq_queue_puts_total{queue=\"" q "\"}" { print $2 }' \
	"$work/body")
expect "puts counted in /metrics" 2 "$puts"
grep -q '^keyq_request_duration_seconds_count{door="http",op="put",result="ok"}' \
	"$work/body" || fail "no http put latency series"
ok "request latency series"
grep -q '^go_goroutines ' "$work/body" || fail "no Go runtime metrics"
ok "runtime metrics"

expect "delete" 200 "$(status DELETE "/v1/queues/$enc")"
expect "deleted count" 2 "$(jq -r .deleted "$work/body")"
expect "healthz" 200 "$(status GET /healthz)"
expect "readyz" 200 "$(status GET /readyz)"

stop_server() {
	kill -TERM "$server_pid"
	wait "$server_pid" || fail "keyq serve exited with status $? on SIGTERM"
	server_pid=""
	ok "clean shutdown"
}

# With our own server: the odd name and its message survive a restart of the log.
if [[ -n $server_pid ]]; then
	expect "put before restart" 201 \
		"$(status POST "/v1/queues/$enc/messages" --data-binary "@$work/in.bin")"
	stop_server
	start_server
	expect "list after restart" 200 "$(status GET /v1/queues)"
	expect "name and length kept" 1 \
		"$(jq --arg q "$odd" '.queue_stats[] | select(.name == $q) | .messages' "$work/body")"
	expect "get after restart" 200 "$(status POST "/v1/queues/$enc/get")"
	cmp -s "$work/in.bin" "$work/body" || fail "the file came back changed after restart"
	ok "same bytes after restart"
	stop_server
fi
echo "http-e2e: $passed passed, 0 failed"
