"""The probe benchmark's coverage count on a real range test of the digits task."""

from __future__ import annotations

from benchmarks.finder_probe import few_pass_floor, pass_coverage
from benchmarks.finder_spread import sweep


def test_every_pass_and_disjoint_pair_is_read_and_the_floor_only_widens_bands():
    curve = sweep("digits", 0, 200)
    passes = len(curve["passes"]) - 1
    with few_pass_floor(1.0):
        bare = pass_coverage(curve)
    floored = pass_coverage(curve)
    assert passes >= 3
    assert {size: n for size, (_, n) in floored.items()} == {1: passes, 2: passes // 2}
    assert all(bare[size][0] <= floored[size][0] <= floored[size][1] for size in (1, 2))
    assert floored[1][0] > 0  # some single pass's band holds the answer of all of them
