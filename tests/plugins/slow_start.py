"""A plugin that takes 4 s to import inside a worker (as torch and CUDA can on a loaded machine)."""

import os
import time

if os.environ.get("VBENCH_SLOW_IMPORT") and os.environ.get("VBENCH_WORKER"):
    time.sleep(4)
