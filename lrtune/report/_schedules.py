"""The schedule a stored trial applied, rebuilt from what the study kept of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrtune.schedules import SCHEDULES, Schedule
from lrtune.space import Space


def trial_schedule(space: Space, params: Mapping[str, Any], steps: int) -> Schedule | None:
    """The schedule (warm-up included) of a trial with ``params`` laid over ``steps`` steps.

    None when the stored schedule is not one this process can rebuild (a schedule class it has
    not imported): the report then leaves that trial out of the schedule figure rather than guess.
    """
    schedule = params.get("schedule", "constant")
    if not isinstance(schedule, Schedule) and schedule not in SCHEDULES:
        return None
    try:
        return space.schedule_for({**params, "schedule": schedule,
                                   "warmup": params.get("warmup", 0.0)}, steps)
    except (TypeError, ValueError):  # an inconsistent stored description
        return None
