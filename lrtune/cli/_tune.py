"""``lrtune tune``: search the LR of the user's objective from the command line."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lrtune.cli._app import app, console
from lrtune.cli._loading import load_object
from lrtune.progress import Progress
from lrtune.space import Space
from lrtune.strategies import STRATEGIES
from lrtune.study import tune


@app.command("tune")
def tune_command(
    target: Annotated[str, typer.Argument(
        help="The objective, as module:function or file.py:function; it takes an lrtune.Trial "
             "and returns the validation loss.")],
    steps: Annotated[int, typer.Option(help="Length of one full training run, in steps.")],
    budget: Annotated[float, typer.Option(help="Total compute, in full runs.")] = 2.0,
    strategy: Annotated[str, typer.Option(
        help=f"Search strategy: {', '.join(sorted(STRATEGIES))}.")] = "auto",
    lr_min: Annotated[Optional[float], typer.Option(help="Lowest LR to search.")] = None,
    lr_max: Annotated[Optional[float], typer.Option(help="Highest LR to search.")] = None,
    optimizer: Annotated[list[str], typer.Option(help="Optimizer family (repeat for a choice).")] = ["adamw"],  # noqa: B006,E501
    schedule: Annotated[list[str], typer.Option(help="Schedule name (repeat for a choice).")] = ["constant"],  # noqa: B006,E501
    warmup: Annotated[float, typer.Option(help="Warm-up, as a fraction of each run.")] = 0.0,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.")] = 0.0,
    storage: Annotated[Optional[str], typer.Option(
        help="Study storage URL, e.g. sqlite:///lrtune.db (default: in memory).")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name (reopened if it exists).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the search.")] = 0,
    workers: Annotated[int, typer.Option(
        help="Worker processes to train in (more than one needs --storage).")] = 1,
) -> None:
    """Search the learning rate of TARGET within a compute budget; shows every trial."""
    objective = load_object(target)
    if (lr_min is None) != (lr_max is None):
        raise typer.BadParameter("give both --lr-min and --lr-max, or neither")
    space = Space(lr=(lr_min, lr_max) if lr_min is not None else None, optimizer=optimizer,
                  schedule=schedule, warmup=warmup, weight_decay=weight_decay)
    with Progress(console) as progress:
        result = tune(progress.watch(objective), steps=steps, budget=budget, strategy=strategy,
                      space=space, storage=storage, study_name=study, seed=seed,
                      callbacks=[progress], workers=workers)
    best = result.best
    if best is None:
        console.print("[red]No trial completed.[/]")
        raise typer.Exit(1)
    console.print(f"\n[bold green]best lr {best.lr:.4g}[/] (value {best.value:.5g}, trial "
                  f"{best.number}, {best.steps} steps); spent {result.spent:.2f} of {budget:g} runs")
