"""The schedule a stored trial applied, rebuilt from what the study kept of it.

A study stores a named schedule by name and a schedule object by its ``repr``
(``MultiStep(total_steps=600, milestones=(300, 450), gamma=0.1)``). Reopened from storage, only
the names come back as schedules, so a report reads the ``repr`` back itself: a small literal
parser that accepts lrtune's schedule classes and plain constants, and never evaluates code.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from lrtune import schedules
from lrtune.schedules import SCHEDULES, Schedule
from lrtune.space import Space

_CLASSES: dict[str, type[Schedule]] = {
    name: obj for name in schedules.__all__
    if isinstance(obj := getattr(schedules, name), type) and issubclass(obj, Schedule)
}


def trial_schedule(space: Space, params: Mapping[str, Any], steps: int) -> Schedule | None:
    """The schedule (warm-up included) of a trial with ``params`` laid over ``steps`` steps.

    None when the stored schedule is not one lrtune can rebuild (then the report leaves that
    trial out of the schedule figure rather than guess).
    """
    schedule = params.get("schedule", "constant")
    if isinstance(schedule, str) and schedule not in SCHEDULES:
        schedule = parse_schedule(schedule)
        if schedule is None:
            return None
    try:
        return space.schedule_for({**params, "schedule": schedule,
                                   "warmup": params.get("warmup", 0.0)}, steps)
    except (TypeError, ValueError):  # an inconsistent stored description
        return None


def parse_schedule(text: str) -> Schedule | None:
    """The schedule whose ``repr`` is ``text``, or None if it is not one."""
    try:
        value = _literal(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, TypeError):
        return None
    return value if isinstance(value, Schedule) else None


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_literal(item) for item in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _CLASSES and not node.args):
        cls = _CLASSES[node.func.id]
        accepted = {f.name for f in fields(cls) if f.init}
        return cls(**{kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg in accepted})
    raise ValueError(f"not a schedule literal: {ast.dump(node)[:60]}")
