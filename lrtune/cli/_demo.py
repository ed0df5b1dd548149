"""``lrtune demo``: tune a built-in task for real with the ``auto`` strategy and show the work."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from lrtune.cli._app import app, console
from lrtune.cli._options import OPTION_OF, as_option
from lrtune.exceptions import InvalidParameterError
from lrtune.progress import Progress
from lrtune.records import TrialState
from lrtune.study import Study, tune
from lrtune.tasks import EpochLog, get_task, objective, task_space
from lrtune.trial import Trial

DEMO_BUDGET = 2.0


@app.command()
def demo(
    task: Annotated[str, typer.Option(
        help="Built-in task: digits, mnist1d, diabetes, charlm.")] = "digits",
    seed: Annotated[int, typer.Option(help="Seed of the data order and initialisation.")] = 0,
    budget: Annotated[float, typer.Option(
        help="Compute budget in full training runs.")] = DEMO_BUDGET,
    storage: Annotated[Optional[str], typer.Option(
        help="Keep the study in this storage URL (e.g. sqlite:///demo.db) to report on.")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name in --storage.")] = None,
) -> None:
    """Tune the learning rate of a built-in task for real and explain the choice."""
    try:
        run_demo(task, seed, budget, console, storage=storage, study_name=study)
    except InvalidParameterError as err:
        raise as_option(err, {**OPTION_OF, "name": "--task"}) from None


def run_demo(task_name: str, seed: int, budget: float, console: Console, *,
             storage: str | None = None, study_name: str | None = None) -> Study:
    task = get_task(task_name)
    console.print(f"[bold]{task.description}[/]: {task.steps} steps per full run, "
                  f"budget {budget:g} runs, strategy 'auto'\n")

    def show_epoch(trial: Trial, log: EpochLog) -> None:
        if trial.is_full_length:  # printed above the live panel
            console.print(f"    epoch {log.epoch:3d}  step {log.step:5d}  lr {log.lr:.3e}  "
                          f"train loss {log.train_loss:.4f}  val loss {log.val_loss:.4f}")

    with Progress(console) as progress:
        study = tune(progress.watch(objective(task, on_epoch=show_epoch)), steps=task.steps,
                     budget=budget, strategy="auto", space=task_space(task), storage=storage,
                     study_name=study_name, seed=seed, callbacks=[progress])
    console.print()
    console.print(explain(study))
    return study


def explain(study: Study) -> str:
    """One paragraph on what the search saw and why it recommends its LR."""
    best = study.best
    if best is None:
        return "[red]No trial completed: every LR tried diverged or failed.[/]"
    trials = study.trials
    diverged = [t for t in trials if t.state is TrialState.DIVERGED]
    lines = [f"[bold green]Recommended lr: {best.lr:.3g}[/] (validation loss {best.value:.4f} "
             f"after a full run; {len(trials)} trials, {study.spent:.2f} runs of compute)."]
    if diverged:
        low = min(diverged, key=lambda t: t.lr)
        why = low.diagnosis["findings"][0]["evidence"] if low.diagnosis else low.error
        lines.append(f"Runs diverged from lr={low.lr:.3g} up ({why}), so the answer stays "
                     "below that cliff.")
    if best.diagnosis:
        lines.append(f"The final run was {best.verdict}: "
                     f"{best.diagnosis['findings'][0]['evidence']}. "
                     f"{best.diagnosis['hint']}")
    return "\n".join(lines)
