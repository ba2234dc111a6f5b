"""Local tools: the command line, the demo, the local HTTP server, the event harness, the package builder.

None of this is deployed: `package` ships `handler.py` and the `dcs_maintenance` package without this
sub-package (and without `dcs_maintenance/__main__.py`, the `python -m` entry). Nothing in the function imports it.
"""
