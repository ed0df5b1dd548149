"""``lrtune tune``: search the LR of the user's objective from the command line."""

from __future__ import annotations

import warnings
from contextlib import ExitStack
from typing import Annotated, Any, Optional

import typer

from lrtune.cli._app import app, console
from lrtune.cli._loading import load_function
from lrtune.cli._options import as_option, objective_words
from lrtune.diagnostics._direction import reads_as_score, score_hint
from lrtune.exceptions import (
    InvalidParameterError, LrtuneError, ObjectiveError, ObjectiveFailedError, StudyExtendedWarning,
)
from lrtune.progress import Progress
from lrtune.records import TrialState
from lrtune.schedules import SCHEDULES
from lrtune.space import BUILT_BY_NAME, Space
from lrtune.strategies import STRATEGIES
from lrtune.study import Study, load_study, tune
from lrtune.study._storage import StorageError
from lrtune.study._worker import interrupt_on_sigterm

@app.command("tune")
def tune_command(
    target: Annotated[str, typer.Argument(
        metavar="TARGET",
        help="The objective, as module:function or file.py:function; it takes an lrtune.Trial "
             "and returns the validation loss.")],
    steps: Annotated[int, typer.Option(help="Length of one full training run, in steps.")],
    budget: Annotated[float, typer.Option(help="Total compute, in full runs.")] = 2.0,
    strategy: Annotated[str, typer.Option(
        help=f"Search strategy: {', '.join(sorted(STRATEGIES))}.")] = "auto",
    lr_min: Annotated[Optional[float], typer.Option(
        help="Lowest LR to search (default: the optimizer family's).")] = None,
    lr_max: Annotated[Optional[float], typer.Option(
        help="Highest LR to search (default: the optimizer family's).")] = None,
    optimizer: Annotated[list[str], typer.Option(help="Optimizer family (repeat for a choice).")] = ["adamw"],  # noqa: B006,E501
    schedule: Annotated[list[str], typer.Option(
        help=f"Schedule: {', '.join(BUILT_BY_NAME)} (repeat for a choice).")] = ["constant"],  # noqa: B006,E501
    warmup: Annotated[list[float], typer.Option(
        help="Warm-up, as a fraction of each run (repeat for a choice).")] = [0.0],  # noqa: B006
    weight_decay: Annotated[float, typer.Option(help="Weight decay.")] = 0.0,
    storage: Annotated[Optional[str], typer.Option(
        help="Study storage URL, e.g. sqlite:///lrtune.db (default: in memory).")] = None,
    study: Annotated[Optional[str], typer.Option(
        help="Study name (reopened if it exists).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the search.")] = 0,
    workers: Annotated[Optional[int], typer.Option(
        help="Worker processes to train in (more than one needs --storage); with --ray, Ray "
             "workers (default: as many as the cluster places).")] = None,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", is_flag=False, flag_value="local", metavar="[ADDRESS]",
        help="Run the workers as Ray tasks: on the cluster at ADDRESS (host:port, or 'auto' "
             "for the one running here), or on a new local cluster when ADDRESS is left out. "
             "Needs --storage.")] = None,
    gpus: Annotated[float, typer.Option(help="GPUs per Ray worker (with --ray).")] = 0.0,
    cpus: Annotated[float, typer.Option(help="CPUs per Ray worker (with --ray).")] = 1.0,
    trial_timeout: Annotated[Optional[float], typer.Option(
        help="Fail a trial that runs longer than this many seconds (a hung objective).")] = None,
) -> None:
    """Search the learning rate of TARGET within a compute budget; shows every trial."""
    _check_schedules(schedule)
    try:
        space = Space(lr=_lr_range(lr_min, lr_max, optimizer), optimizer=optimizer,
                      schedule=schedule, warmup=warmup, weight_decay=weight_decay)
    except InvalidParameterError as err:
        raise as_option(err) from None
    objective = load_function(target, "TARGET", "a function of one argument, the trial", 1)
    if ray is not None and storage is None:
        raise typer.BadParameter("--ray needs --storage: a URL every Ray node reaches "
                                 "(sqlite:///lrtune.db on one node, postgresql://... across nodes)")
    if (workers or 1) > 1 and storage is None:  # said here in the options' words, not tune()'s
        raise InvalidParameterError(f"--workers {workers} needs --storage: the worker processes "
                                    "share the study through it (e.g. sqlite:///lrtune.db).")
    run: dict[str, Any] = dict(steps=steps, budget=budget, strategy=strategy, space=space,
                               storage=storage, study_name=study, seed=seed, workers=workers,
                               trial_timeout=trial_timeout)
    interrupt_on_sigterm()  # a scheduler's preemption stops like Ctrl-C: trials marked lost
    earlier = _stored(storage, study)
    if earlier is not None and earlier.reopens_with(  # not before a refusal of the settings
            space=space, steps=steps, budget=budget, strategy=strategy, seed=seed):
        grows = f"; the budget grows to {budget:g} runs" if budget > earlier.budget else ""
        console.print(f"resuming: {_kept(earlier)} trials, {earlier.spent:.2f} of "
                      f"{earlier.budget:g} runs spent{grows}")
    try:
        with ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            # the line above says so when the budget grows: no Python warning with a source line
            warnings.simplefilter("ignore", StudyExtendedWarning)
            if ray is not None:
                from lrtune.study._ray import connected

                stack.enter_context(connected(ray))
                run.update(executor="ray", resources={"num_cpus": cpus, "num_gpus": gpus})
            progress = stack.enter_context(Progress(console))
            result = tune(progress.watch(objective), callbacks=[progress], **run)
    except InvalidParameterError as err:
        raise as_option(err) from None
    except (ObjectiveError, ObjectiveFailedError) as err:
        raise LrtuneError(objective_words(str(err), target,
                                          kept=storage is not None and study is not None)) from None
    except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C, SIGTERM
        console.print(_interrupted(storage, study))
        # typer types the code as int; a SystemExit's code (int, str or None) passes through
        code = 130 if isinstance(stop, KeyboardInterrupt) else stop.code
        raise typer.Exit(code) from None  # type: ignore[arg-type]
    best = result.best
    if best is None:
        raise LrtuneError(_nothing_completed(result))
    console.print(f"\n[bold green]best lr {best.lr:.4g}[/] (value {best.value:.5g}, trial "
                  f"{best.number}, {_steps(best.steps)}); spent {result.spent:.2f} of {budget:g} "
                  "runs")
    for line in summary_lines(result):
        console.print(line)


def summary_lines(study: Study) -> list[str]:
    """What the study says beyond its best trial: a warning when its own run went wrong (and,
    when it learned nothing while the values rise as the training loss falls, whether TARGET
    returns a score), failed trials, values the LR did not change, the estimated full-length
    best LR with its interval, a warning when the answer sits at an edge of the range, a note
    when the move of the best LR with the run's length was assumed, and why budget is left."""
    lines = []
    best = study.best
    if best is not None and best.diagnosis and best.verdict != "healthy":
        # the answer's own run went wrong (collapsed, stagnant, ...): say so beside the answer
        findings = best.diagnosis["findings"]
        seen = next((f for f in findings if f.get("status") == best.verdict), findings[0])
        score = ("; " + score_hint("it", "TARGET's value")
                 if best.verdict == "stagnant" and reads_as_score(study.trials) else "")
        lines.append(f"[bold yellow]warning:[/] the best trial ({best.number}) was "
                     f"{best.verdict}: {seen['evidence']}{score}")
    failed = [t for t in study.trials if t.state is TrialState.FAILED]
    if failed:  # an answer read from the trials that did not fail: say how many did, and why
        lines.append(f"[bold yellow]warning:[/] {len(failed)} of {len(study.trials)} trials "
                     f"failed, the last at lr {failed[-1].lr:.3g} with: {failed[-1].error}")
    completed = [t for t in study.trials if t.state is TrialState.COMPLETED]
    if len(completed) >= 3 and len({t.value for t in completed}) == 1:
        lrs = [t.lr for t in completed]
        lines.append(f"[bold yellow]warning:[/] all {len(completed)} completed trials returned "
                     f"{completed[0].value:.5g}, at LRs from {min(lrs):.3g} to {max(lrs):.3g}: "
                     "the LR changed nothing, so no LR is better than another; check that "
                     "TARGET trains with the trial's optimizer (or trial.lr) and steps its "
                     "scheduler")
    estimate = study.estimate
    if estimate is not None and estimate.low is not None:
        lines.append(f"estimated full-length best lr {estimate.describe()}")
    for kind, text in estimate.notices() if estimate is not None else ():
        lines.append(f"[bold yellow]{kind}:[/] {text}")
    left = study.budget - study.spent
    if left >= 0.05:
        # steps are given back only by runs that stopped early; else the strategy's plan left
        # less than one more trial
        stopped = sum(t.state.finished and t.steps_done < t.steps for t in study.trials)
        why = (f" ({stopped} runs stopped early and gave back their steps)" if stopped > 1
               else " (1 run stopped early and gave back its steps)" if stopped else "")
        lines.append(f"{left:.2f} runs left unspent: less than the next trial the "
                     f"{study.strategy.name!r} strategy would run{why}")
    return lines


def _steps(steps: int) -> str:
    return f"{steps} step{'' if steps == 1 else 's'}"


def _check_schedules(names: list[str]) -> None:
    """Only the schedules a name builds: Space()'s own error lists every registered one, then
    asks for a Schedule object, which no option can give."""
    for name in names:
        if name not in BUILT_BY_NAME:
            needs = (f"; {name!r} needs parameters beyond its length (call lrtune.tune() with "
                     f"make_schedule({name!r}, steps, ...) from Python for it)"
                     if name in SCHEDULES else "")
            raise InvalidParameterError(f"--schedule must be one of {', '.join(BUILT_BY_NAME)}"
                                        f"{needs}. Got {name!r} instead.")


def _lr_range(low: float | None, high: float | None,
              optimizers: list[str]) -> tuple[float, float] | None:
    """The searched range; a bound left out is the optimizer family's default one."""
    if low is None and high is None:
        return None
    for option, value in (("--lr-min", low), ("--lr-max", high)):
        if value is not None and not value > 0:
            raise InvalidParameterError(f"{option} must be a float > 0. Got {value!r} instead.")
    default = Space(optimizer=optimizers).lr_range
    low = default.low if low is None else low
    high = default.high if high is None else high
    if low >= high:
        raise InvalidParameterError(
            f"--lr-min must be below --lr-max (a bound not given is the family's default, "
            f"{default.low:g} - {default.high:g}). Got {low:g} - {high:g} instead.")
    return low, high


def _stored(storage: str | None, name: str | None) -> Study | None:
    """The stored study this command continues, if there is one."""
    if storage is None or name is None:
        return None
    try:
        return load_study(name, storage)
    except StorageError:  # none yet (tune() reports a storage that does not open)
        return None


def _kept(study: Study) -> int:
    return sum(t.state.finished for t in study.trials)


def _interrupted(storage: str | None, name: str | None) -> str:
    study = _stored(storage, name)
    if study is None:
        return "interrupted: nothing kept (--storage and --study keep a study to resume)"
    return f"interrupted: {_kept(study)} trials kept; run the same command to resume"


def _nothing_completed(study: Study) -> str:
    counts = {s: sum(t.state is s for t in study.trials) for s in TrialState}
    seen = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    failed = [t for t in study.trials if t.state is TrialState.FAILED]
    last = f"; the last failure: {failed[-1].error}" if failed else ""
    if study.trials and all(t.state is TrialState.DIVERGED for t in study.trials):
        lowest = min(t.lr for t in study.trials)  # the range sits above the cliff: point below
        advice = (f"every LR tried diverged, down to {lowest:.3g}: search below it, e.g. "
                  f"--lr-max {lowest / 10:.3g}")
    else:
        advice = "a lower --lr-max helps when every LR diverged"
    return (f"No trial completed ({seen or 'no trial ran'}){last}. See each trial with "
            f"'lrtune show' on a stored study; {advice}.")
