"""``python -m sim`` is the same program as ``ledgersim``."""

import sys

from sim.cli.main import main

sys.exit(main())
