"""Differential correctness harness: exported rows vs source rows, as multisets (see harness.py)."""
