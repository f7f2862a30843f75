#!/usr/bin/env bash
# Runs keyq side by side with Redis, beanstalkd, NATS JetStream and RabbitMQ on this
# machine and rewrites the generated block of docs/BENCHMARKS.md, docs/benchmarks.svg
# and docs/benchmarks.json. Missing servers are installed from Debian's packages
# (run as root, or pass -no-install). Flags go to bench/compare, for example:
#
#   bench/compare.sh -duration 5s
#   bench/compare.sh -systems keyq,redis -modes memory -duration 2s -md /tmp/b.md
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d "${TMPDIR:-/tmp}/keyq-compare.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/keyq-compare" ./bench/compare
"$bin/keyq-compare" "$@"
