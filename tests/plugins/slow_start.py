"""A plugin that takes 4 s to import inside a worker (as torch and CUDA can on a loaded machine)."""

import os
import sys
import time

if os.environ.get("VBENCH_SLOW_IMPORT") and sys.argv[0].endswith("worker.py"):
    time.sleep(4)
