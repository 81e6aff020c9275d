"""Measuring inside a worker: counting, timing, latency, breakdown, roofline, contention, environment."""
