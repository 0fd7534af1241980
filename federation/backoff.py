"""Exponential backoff with jitter and a cap (pure).

After the n-th consecutive failure the next attempt waits a random time in
[d/2, d], where d = min(cap, initial * 2**(n-1)): the delays double, never
exceed the cap, and peers that failed together do not retry in lockstep. A
success resets the count to zero.
"""

from __future__ import annotations

import random


def backoff_delay(failures: int, initial: float, cap: float, rng: random.Random | None = None) -> float:
    if failures <= 0:
        return 0.0
    ceiling = min(cap, initial * 2 ** min(failures - 1, 62))
    return (rng or random).uniform(ceiling / 2, ceiling)
