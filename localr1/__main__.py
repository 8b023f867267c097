"""`python -m localr1` runs the command line."""

import sys

from localr1.cli import main

sys.exit(main())
