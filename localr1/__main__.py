"""`python -m localr1` runs the command line."""

import sys

try:
    from localr1.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is still being imported
    sys.stderr.write("localr1: interrupted\n")
    sys.exit(130)

sys.exit(main())
