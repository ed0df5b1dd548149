"""The LR range test: sweep the LR upward in short passes, read their curve, suggest an LR.

>>> from lrtune.finder import find
>>> result = find(model, optimizer, train_loader, torch.nn.functional.cross_entropy,
...               schedule=make_schedule("cosine", total_steps))
>>> result.suggestion, result.band, result.verdict, result.hint
>>> result.plot("range_test.png"); result.to_json("range_test.json")

Everything the test touched (weights, buffers, optimizer, scheduler, scaler, RNGs, the loader's
shuffling) is restored exactly, so the training run that follows is the one you would have had.
"""

from lrtune.finder._analysis import Verdict
from lrtune.finder._find import find
from lrtune.finder._plot import plot_result
from lrtune.finder._result import FinderResult, LRTriple, Pass

__all__ = ["FinderResult", "LRTriple", "Pass", "Verdict", "find", "plot_result"]
