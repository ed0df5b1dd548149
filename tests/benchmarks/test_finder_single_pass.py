"""The single-pass benchmark reads every fine pass of a real digits range test alone."""

from __future__ import annotations

from benchmarks.finder_single_pass import single_pass_readings
from benchmarks.finder_spread import read, sweep


def test_each_fine_pass_is_read_alone_with_the_coarse_sweep():
    curve = sweep("digits", 0, 200)
    whole, alone = single_pass_readings(curve)
    assert len(alone) == len(curve["passes"]) - 1 >= 3
    assert whole == read(curve)["suggestion"]
    first = read({**curve, "passes": curve["passes"][:2]})["suggestion"]  # a 50-step test's
    assert alone[0] == first
    assert len(set(alone)) > 1  # passes differ: each is its own reading, not the whole's
    assert all(0.5 < r / whole < 2.0 for r in alone)  # digits' passes agree (RESULTS.md: 1.11)
