#!/usr/bin/env bash
# mypy on the installed layout: breeze.engine and breeze.runners are the repository's engine/
# and runners/ folders, linked under .venv/typecheck/breeze.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .venv/typecheck/breeze
for part in engine runners tui assets; do
  ln -sfn "$PWD/$part" ".venv/typecheck/breeze/$part"
done
exec .venv/bin/mypy "$@"
