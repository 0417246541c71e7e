"""Entry point for ``python -m app``."""

import sys

from app.console import exit_status, tell

try:
    from app.cli import PROG, main
except KeyboardInterrupt:  # Ctrl-C while torch and Qt are still loading
    tell("maskwatch", "interrupted")
    sys.exit(130)

sys.exit(exit_status(main(), PROG))
