#!/usr/bin/env bash
# One-time (idempotent) set-up: a virtual environment in .venv with descend, its
# development tools, the tune extra (Optuna, the PostgreSQL driver) and the explore
# extra (FastAPI, uvicorn, plotly, Playwright). torch is pinned by constraints.txt to
# the local CPU wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -c constraints.txt -e '.[dev,tune,explore]'
