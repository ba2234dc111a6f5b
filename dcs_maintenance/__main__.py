"""`python -m dcs_maintenance`: the local command line (dcs_maintenance/tools/cli.py). Not deployed."""

import sys

from dcs_maintenance.tools.cli import main

sys.exit(main())
