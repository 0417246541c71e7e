"""Entry point for ``python -m app``."""

import sys

from app.console import tell

try:
    from app.cli import main
except KeyboardInterrupt:  # Ctrl-C while torch and Qt are still loading
    tell("maskwatch", "interrupted")
    sys.exit(130)

sys.exit(main())
