#!/usr/bin/env bash
# Set up what is missing, then run the test suite (Qt offscreen). Extra flags go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
