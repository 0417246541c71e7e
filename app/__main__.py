"""Entry point for ``python -m app``."""

import sys

try:
    from app.cli import main
except KeyboardInterrupt:  # Ctrl-C while torch and Qt are still loading
    print("maskwatch: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
