"""Run diagnostics: is a run healthy, diverged, oscillating, stagnant, or are its gradients off?

>>> monitor = RunMonitor()
>>> for step in range(steps):
...     loss = train_step()
...     monitor.update(step, loss)          # tensors are fine: read back every 16 steps
...     if monitor.diverged:
...         break
>>> print(monitor.diagnose())
"""

from lrtune.diagnostics._classify import Thresholds, classify
from lrtune.diagnostics._monitor import RunMonitor
from lrtune.diagnostics._standing import Standing, standing, standings
from lrtune.diagnostics._verdict import Diagnosis, Finding, Status

__all__ = ["Diagnosis", "Finding", "RunMonitor", "Standing", "Status", "Thresholds", "classify",
           "standing", "standings"]
