#!/usr/bin/env bash
# Usage: scripts/conformance.sh BINARY — runs the official SDKs against `BINARY emulator`.
set -euo pipefail
BIN="$1"
cd "$(dirname "$0")/.."
if [ ! -d .venv ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q openai anthropic
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" emulator --port "$PORT" --speed-up 2 --rate 1000 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/_emulator/stats"; then break; fi
  sleep 0.1
done
.venv/bin/python scripts/conformance/sdk_conformance.py "http://127.0.0.1:$PORT"
