#!/usr/bin/env bash
# Transport benchmark: `freight send` of N events to the local sandbox (a separate process,
# recording no event bodies) in 1000-event batches, against `freight prepare` of the same
# file (parse + prepare + serialize, no network). Prints wall time, events/s and peak RSS.
#
#   bash bench/transport.sh 100000
#   bash bench/transport.sh 1000000      # the bounded-memory check
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
WORK=$(mktemp -d)
trap 'kill "${SB_PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build -q --release -p freight-cli
BIN=target/release/freight
python3 bench/gen_events.py "$N" > "$WORK/events.jsonl"
echo "input: $N events, $(du -h "$WORK/events.jsonl" | cut -f1)"

cat > "$WORK/sandbox.json" <<JSON
{"tokens": {"bench-token": {"datasets": ["*"]}}, "record_events": false,
 "max_recorded_body_bytes": 0}
JSON
"$BIN" sandbox --port 0 --config "$WORK/sandbox.json" > "$WORK/sandbox.out" &
SB_PID=$!
for _ in $(seq 50); do [ -s "$WORK/sandbox.out" ] && break; sleep 0.1; done
URL=$(head -1 "$WORK/sandbox.out")

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/time" "$@" > "$WORK/out" 2> "$WORK/err" || true
  read -r secs kb user sys < "$WORK/time"
  awk -v l="$label" -v s="$secs" -v kb="$kb" -v n="$N" -v u="$user" -v y="$sys" \
    'BEGIN { cpu = u + y; printf "%-8s %7.2f s wall  %9.0f events/s  %6.2f s CPU (client)  peak RSS %6.1f MiB\n", l, s, n / s, cpu, kb / 1024 }'
}
measure prepare "$BIN" prepare "$WORK/events.jsonl"
FREIGHT_ACCESS_TOKEN=bench-token measure send \
  "$BIN" send "$WORK/events.jsonl" --pixel-id 1234567890 --graph-url "$URL"
tail -1 "$WORK/out"
echo "sandbox process CPU: $(ps -o cputime= -p "$SB_PID")"
