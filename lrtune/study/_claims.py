"""Claiming a proposal: how workers that ask at the same moment never train the same config twice.

Strategies are pure functions of the study's history, so two workers that read the same history
get the same proposal. A claim first looks whether trials appeared while the strategy was
thinking (then the worker asks again, having written nothing); then it creates the trial (the
storage numbers trials in commit order, atomically) and reads the study again. The claim is
withdrawn before any training when a trial the proposing strategy had *not* seen, with a lower
number, already claimed

- the same configuration (tag, params and steps): the lowest number wins, every other worker
  retires its copy and asks again, now seeing the winner as running; or
- the remaining budget: together they would overspend what the strategy believed was left.

Only unseen trials count, so a strategy that repeats a configuration on purpose still can, and
a retried ask always sees what beat it: no worker loops. A withdrawn claim costs three small
writes, is marked ``lrtune:retired`` and is left out of the study's trials.
"""

from __future__ import annotations

from lrtune.records import TrialRecord
from lrtune.strategies import Context, Proposal
from lrtune.study._heartbeat import WorkerId
from lrtune.study._study import Study


def claim(study: Study, proposal: Proposal, seen: Context,
          worker: WorkerId) -> tuple[int, int] | None:
    """Create the trial for ``proposal`` (proposed from ``seen``); returns (trial id, number),
    or None when a concurrent worker got there first and the caller should ask again."""
    known = {t.number for t in seen.trials}
    if any(t.number not in known for t in study.context().trials):
        return None  # others claimed while the strategy thought: ask again before writing
    trial_id, number = study.start_trial(proposal.params, proposal.steps, proposal.tag,
                                         worker.as_attr())
    reason = _conflict(study, seen, number)
    if reason is None:
        return trial_id, number
    study.retire(trial_id, reason)
    return None


def _conflict(study: Study, seen: Context, number: int) -> str | None:
    now = study.context()
    mine = next(t for t in now.trials if t.number == number)
    known = {t.number for t in seen.trials}
    earlier = [t for t in now.live if t.number < number]
    unseen = [t for t in earlier if t.number not in known]
    key = (mine.tag, mine.params, mine.steps)
    twin = next((t for t in unseen if (t.tag, t.params, t.steps) == key), None)
    if twin is not None:
        return f"trial {twin.number} claimed the same configuration at the same moment"
    if unseen and _overspent(now, earlier + [mine]) and not _overspent(
            now, [t for t in earlier if t.number in known] + [mine]):
        return (f"trials {[t.number for t in unseen]} claimed the rest of the budget at the "
                "same moment")
    return None


def _overspent(context: Context, trials: list[TrialRecord]) -> bool:
    return Context(context.space, context.full_steps, context.budget, context.seed,
                   tuple(trials)).remaining_steps < 0
