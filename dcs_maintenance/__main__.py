"""`python -m dcs_maintenance`: the local command line (see cli.py)."""

import sys

from dcs_maintenance.cli import main

sys.exit(main())
