"""Asserting that one action costs about what another does, on a busy machine.

`make test` runs the tests in parallel on a shared machine, so any one run of an
action can be held up many times its own cost (another process on the core, a
garbage collection): a single timing against a few milliseconds of baseline fails
by chance. Noise only ever adds time, so each side's best run is the closest to its
own cost, and the two take turns, so a busy stretch falls on both alike.

After `min_rounds` rounds (so each side has a best of several), a check passes at
the first round in which the action's best is under `factor` times the baseline's,
and fails only when none is, after `rounds` rounds or `budget` seconds. That keeps
the guard sharp: quadratic code hundreds of times slower than the baseline has no
fast run to show, whatever the load, so it fails in about `budget` seconds, while
linear code needs just one quiet moment in up to `rounds`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def assert_as_fast_as(
    action: Callable[[], object],
    baseline: Callable[[], object],
    *,
    factor: float = 10,
    rounds: int = 10,
    min_rounds: int = 3,
    budget: float = 10.0,
) -> None:
    """Assert that `action` takes under `factor` times what `baseline` takes, each
    judged by its best run (module docstring)."""
    best_action = best_baseline = math.inf
    started = time.perf_counter()
    for done in range(1, rounds + 1):
        best_baseline = min(best_baseline, timed(baseline))
        best_action = min(best_action, timed(action))
        if done < min_rounds:
            continue
        if best_action < factor * best_baseline:
            return
        if time.perf_counter() - started > budget:
            break
    raise AssertionError(
        f"best of {done} runs: {best_action:.4f} s, over {factor} times the baseline's "
        f"best, {best_baseline:.4f} s"
    )
