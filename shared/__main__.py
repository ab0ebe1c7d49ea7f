"""`python -m shared` runs the footprint command."""

import sys

from shared.cli import main

sys.exit(main())
