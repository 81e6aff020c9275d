"""vbench's measuring side: counting, timing, running, reporting, comparing, the CLI.

``bench`` reaches models only through the :mod:`archs` registry.
"""

__version__ = "0.1.0"
