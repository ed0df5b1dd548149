"""Run one claimed proposal through the user's objective and record how it ended. Never raises
for what the objective does: a NaN, a divergence or an exception becomes the trial's verdict.

Seeds: every trial gets the study's seed, whichever worker runs it and however often it is
re-run (common random numbers). All configurations then see the same initialisation and data
order, so differences between LRs are not drowned in seed noise, a re-run of a lost trial
reproduces the result it would have had, and a study's results do not depend on which worker
ran what. A trial's identity (tag, params, steps) already tells trials apart; a seed derived
from it would only add noise between the configurations being compared.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from numbers import Real

import torch

from lrtune._failure import describe
from lrtune.strategies import Proposal, RunningTrial, Strategy
from lrtune.strategies._base import stop_of
from lrtune.exceptions import ObjectiveError, ObjectiveFailedError, StrategyError
from lrtune.records import TrialRecord, TrialState
from lrtune.study._heartbeat import Heartbeat
from lrtune.study._schema import downsample_history
from lrtune.study._study import Study
from lrtune.trial import Trial, TrialStopped

PROGRESS_SECONDS = 1.0  # at most one intermediate value a second reaches the storage
_TAKEN = "lost"  # TrialStopped reason: another worker declared this one dead and took the trial
SAME_FAILURES = 3  # a study whose first trials all failed alike this many times stops ...
LR_SPAN = 10.0  # ... at LRs this factor apart, down to the lower half of the range


def run_trial(study: Study, objective: Callable[[Trial], float], proposal: Proposal,
              trial_id: int, number: int) -> TrialRecord | None:
    """Train the claimed trial ``trial_id`` while its heartbeat runs; its record, or None when
    the trial was taken from this worker (presumed dead) and its result therefore dropped."""
    with Heartbeat(study, trial_id) as heartbeat:
        return _run(study, objective, proposal, trial_id, number, heartbeat)


def _run(study: Study, objective: Callable[[Trial], float], proposal: Proposal, trial_id: int,
         number: int, heartbeat: Heartbeat) -> TrialRecord | None:
    prunes = type(study.strategy).should_stop is not Strategy.should_stop
    last_report = -math.inf
    strategy_failed: StrategyError | None = None  # raised inside the objective, which may catch

    def checkpoint(trial: Trial) -> bool:
        nonlocal last_report, strategy_failed
        if time.monotonic() - last_report >= PROGRESS_SECONDS:
            last_report = time.monotonic()
            steps, losses = trial.monitor.steps, trial.monitor.losses
            if not study.report_progress(trial_id, int(steps[-1]), float(losses[-1])):
                heartbeat.taken = True
        if heartbeat.taken:
            raise TrialStopped(_TAKEN, f"trial {number} was declared lost by another worker")
        if not prunes:
            return False
        try:
            return stop_of(study.strategy, study.context(), RunningTrial.of(trial))
        except StrategyError as err:
            strategy_failed = err
            raise

    trial = Trial(number, proposal.params, proposal.steps, study.seed, study.space,
                  full_steps=study.steps, checkpoint=checkpoint)
    start = time.perf_counter()
    value, error, contract_broken, raised, returned = None, None, False, None, False
    try:
        result = objective(trial)
        returned = True
        trial.monitor.flush()  # values reported last are checked here, as the objective's doing
        state, value, error = _judge(result)
        if state is not TrialState.FAILED and trial.steps_done > proposal.steps:
            state, value, error = TrialState.FAILED, None, (
                f"it trained past trial.steps: it reported step {trial.steps_done - 1} in a "
                f"trial of {proposal.steps} steps (train for trial.steps steps: the strategy "
                "sets each trial's length; what it trained is counted in the budget)")
        contract_broken = state is TrialState.FAILED
    except TrialStopped as stop:
        if stop.reason == _TAKEN:
            return None
        state = TrialState.DIVERGED if stop.reason == "diverged" else TrialState.PRUNED
    except Exception as err:  # noqa: BLE001 - the objective's own failure is the trial's verdict
        state, error, raised = TrialState.FAILED, describe(err), err
    except BaseException as err:  # interrupted: the config runs again on resume, then re-raise
        _lose(study, trial_id, trial, f"lost: interrupted ({type(err).__name__})", start)
        raise
    if strategy_failed is not None:  # the strategy's bug: its trial runs again once it is fixed
        _lose(study, trial_id, trial, "lost: the strategy failed while it trained", start)
        raise strategy_failed
    diagnosis = trial.diagnose(value) if len(trial.monitor.losses) else None
    if state is TrialState.COMPLETED and diagnosis is not None and diagnosis.diverged:
        state, value = TrialState.DIVERGED, None  # blew up but the objective swallowed it
    # what it trained: a completed run, or one that returned without reporting (a NaN
    # evaluation), ran its length; a stopped or failed one what it reported (at least a step)
    trained_all = state is TrialState.COMPLETED or (returned and trial.steps_done == 0)
    steps_done = max(trial.steps_done, proposal.steps if trained_all else 1)
    recorded = study.finish_trial(
        trial_id, state, value,
        steps_done=steps_done,
        diagnosis=diagnosis.to_dict() if diagnosis is not None else None,
        error=error,
        history=downsample_history(trial.monitor.steps, trial.monitor.losses),
        wall_time=time.perf_counter() - start,
    )
    if not recorded:
        return None
    if contract_broken:
        raise ObjectiveError(f"The objective passed to tune() broke its contract in trial "
                             f"{number}: {error}.")
    if raised is not None:
        stop_on_repeated_failure(study, raised)
    return study.record(trial_id)


def _lose(study: Study, trial_id: int, trial: Trial, error: str, start: float) -> None:
    study.finish_trial(trial_id, TrialState.LOST, None, steps_done=trial.steps_done, error=error,
                       history=downsample_history(trial.monitor.steps, trial.monitor.losses),
                       wall_time=time.perf_counter() - start)


def stop_on_repeated_failure(study: Study, raised: Exception) -> None:
    """Raise when every trial that ended so far failed, at least ``SAME_FAILURES`` of them, with
    one exception at one place, at LRs a decade or more apart reaching into the lower half of
    the range (log scale): a bug that every configuration hits. A failure of the LR's own doing
    (a user's NaN check, out-of-memory at a large LR) happens above some LR, so a search that
    starts at the top of the range (``auto``'s scan walks down from it) goes on until it has
    failed low as well: an objective that raised above 0.02 of a range 1e-5..1 stopped the
    study at its fourth trial, 0.1, before it reached an LR that trains."""
    ended = [t for t in study.trials if t.state.finished]
    if len(ended) >= SAME_FAILURES and all(
            t.state is TrialState.FAILED and t.error == ended[0].error for t in ended):
        lrs = [t.lr for t in ended]
        lr_range = study.space.lr_range
        low_half = min(lrs) <= math.sqrt(lr_range.low * lr_range.high)
        if (max(lrs) >= LR_SPAN * min(lrs) and low_half) or not study.space.searches_lr:
            raise ObjectiveFailedError(
                f"The objective failed the same way in all {len(ended)} trials of the study "
                f"{study.name!r} so far, at LRs from {min(lrs):.3g} to {max(lrs):.3g}, so it "
                f"would fail in every one: {ended[0].error}. The study stops; fix the objective "
                "and run again to resume.") from raised


def _judge(result: object) -> tuple[TrialState, float | None, str | None]:
    if isinstance(result, torch.Tensor) and result.numel() == 1:  # `return loss`, as reported
        result = result.item()
    if isinstance(result, bool) or not isinstance(result, Real):
        return TrialState.FAILED, None, (
            f"the objective must return a number (the loss to minimise); it returned {result!r}")
    try:
        value = float(result)
    except OverflowError:  # past the largest float: a blown-up loss, like inf
        return TrialState.DIVERGED, None, "the objective returned a number too large for a float"
    if not math.isfinite(value):
        return TrialState.DIVERGED, None, f"the objective returned {result}"
    return TrialState.COMPLETED, value, None


