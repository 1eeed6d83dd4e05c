#!/usr/bin/env bash
# The C suite: compile tests/c/test_freight.c with strict flags against include/freight.h
# (and tests/c/test_cpp.cpp against include/freight.hpp, for C++ callers),
# link it once with the shared and once with the static library, and run both under valgrind
# (errors and leaks fail) against a `freight sandbox`. Expects `cargo build -p freight-ffi
# -p freight-cli` to have run (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=${CARGO_TARGET_DIR:-target}/debug
WORK=$(mktemp -d)
trap 'kill "${SB_PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 tests/c/fixtures_to_tsv.py normalization > "$WORK/norm.tsv"
python3 tests/c/fixtures_to_tsv.py events > "$WORK/events.tsv"
python3 tests/c/fixtures_to_tsv.py segment > "$WORK/segment.tsv"
python3 tests/c/fixtures_to_tsv.py click_ids > "$WORK/click_ids.tsv"

"$TARGET/freight" sandbox --port 0 > "$WORK/sandbox.out" &
SB_PID=$!
for _ in $(seq 100); do [ -s "$WORK/sandbox.out" ] && break; sleep 0.05; done
URL=$(head -1 "$WORK/sandbox.out")

CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic -g -Iinclude)
cc "${CFLAGS[@]}" tests/c/test_freight.c -o "$WORK/test_shared" \
  -L"$TARGET" -lfreight -Wl,-rpath,"$PWD/$TARGET" -pthread
cc "${CFLAGS[@]}" tests/c/test_freight.c -o "$WORK/test_static" \
  "$TARGET/libfreight.a" -pthread -ldl -lm

# C++ callers include freight.hpp (C linkage); it must compile strictly and link.
c++ -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude tests/c/test_cpp.cpp -o "$WORK/test_cpp" \
  -L"$TARGET" -lfreight -Wl,-rpath,"$PWD/$TARGET" -pthread
"$WORK/test_cpp"

VALGRIND=(valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite)
echo "== C suite, shared library, under valgrind"
"${VALGRIND[@]}" "$WORK/test_shared" "$WORK/norm.tsv" "$WORK/events.tsv" "$URL" 300 "$WORK/segment.tsv" "$WORK/click_ids.tsv"
echo "== C suite, static library, under valgrind"
"${VALGRIND[@]}" "$WORK/test_static" "$WORK/norm.tsv" "$WORK/events.tsv" "$URL" 300 "$WORK/segment.tsv" "$WORK/click_ids.tsv"
echo "== C suite, random input (5000 rounds, shared library)"
"$WORK/test_shared" "$WORK/norm.tsv" "$WORK/events.tsv" "$URL" 5000
