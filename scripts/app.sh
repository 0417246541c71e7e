#!/usr/bin/env bash
# Set up what is missing, then run MaskWatch with the given flags (window by default).
# The app runs in the caller's folder, so relative paths (--source clip.mp4) mean what they say.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
(cd "$repo" && bash scripts/setup.sh)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$repo/.venv/bin/python" -m app "$@"
