#!/usr/bin/env bash
# Set up what is missing, then run MaskWatch with the given flags (window by default).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m app "$@"
