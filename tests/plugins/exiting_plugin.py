"""A plugin that calls sys.exit while it is imported (vbench must say so in one line)."""

import sys

sys.exit(4)
