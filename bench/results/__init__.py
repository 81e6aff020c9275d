"""Torch-free: records, the column registry, rows, results on disk, checks, settings, merge, compare."""
