#!/usr/bin/env bash
# The tests: set up what is missing, then run the whole pytest suite.
#   bash tools/run_tests.sh [pytest args]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
VENV=$(bash tools/setup_env.sh | sed -n 's/^VENV=//p')
export PATH="$VENV/bin:$PATH"
exec python -m pytest tests "$@"
