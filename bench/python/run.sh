#!/usr/bin/env bash
# Creates bench/python's own environment (facebook-business 26.x from PyPI + freight built
# from this checkout in release mode) and runs the side-by-side benchmark.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "facebook-business>=26,<27"
"$VENV/bin/pip" install -q --force-reinstall --no-deps ./bindings/python
"$VENV/bin/python" bench/python/bench.py "$@"
