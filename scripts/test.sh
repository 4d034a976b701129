#!/usr/bin/env bash
# The whole test suite: lint, types, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check engine runners tui tests benchmarks
scripts/typecheck.sh
scripts/null-sink.sh
exec .venv/bin/python -m pytest "$@"
