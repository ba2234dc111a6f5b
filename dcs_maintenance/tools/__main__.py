"""`python -m dcs_maintenance.tools`: the local command line (see cli.py)."""

import sys

from dcs_maintenance.tools.cli import main

sys.exit(main())
