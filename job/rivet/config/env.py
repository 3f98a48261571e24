"""Integer tuning knobs from the process environment (RIVET_*): one parse for all of them."""

from __future__ import annotations

import os


def env_int(name: str, default: int, floor: int) -> int:
    """`name` as an integer, raised to at least `floor`; `default` when unset, blank or not an integer."""
    raw = os.environ.get(name, "").strip()
    try:
        return max(floor, int(raw)) if raw else default
    except ValueError:
        return default
