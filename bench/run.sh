#!/usr/bin/env bash
# Dinghuo load benchmark — one command: bench/run.sh [--runs 3] [--keep] [--duration 15] ...
# Runs bench/run.py with the project's venv (see bench/README.md for what it does).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" bench/run.py "$@"
