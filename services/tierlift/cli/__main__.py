"""`python -m tierlift.cli ...`, as the `tierlift` command (the stack starts its combined
request-path process this way)."""

import sys

from tierlift.cli import main

sys.exit(main())
