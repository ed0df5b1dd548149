"""``lrtune tune``: search the LR of the user's objective from the command line."""

from __future__ import annotations

from contextlib import ExitStack
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
) -> None:
    """Search the learning rate of TARGET within a compute budget; shows every trial."""
    objective = load_object(target)
    if (lr_min is None) != (lr_max is None):
        raise typer.BadParameter("give both --lr-min and --lr-max, or neither")
    space = Space(lr=(lr_min, lr_max) if lr_min is not None else None, optimizer=optimizer,
                  schedule=schedule, warmup=warmup, weight_decay=weight_decay)
    if ray is not None and storage is None:
        raise typer.BadParameter("--ray needs --storage: a URL every Ray node reaches "
                                 "(sqlite:///lrtune.db on one node, postgresql://... across nodes)")
    run = dict(steps=steps, budget=budget, strategy=strategy, space=space, storage=storage,
               study_name=study, seed=seed, workers=workers)
    with ExitStack() as stack:
        if ray is not None:
            from lrtune.study._ray import connected

            stack.enter_context(connected(ray))
            run.update(executor="ray", resources={"num_cpus": cpus, "num_gpus": gpus})
        progress = stack.enter_context(Progress(console))
        result = tune(progress.watch(objective), callbacks=[progress], **run)
    best = result.best
    if best is None:
        console.print("[red]No trial completed.[/]")
        raise typer.Exit(1)
    console.print(f"\n[bold green]best lr {best.lr:.4g}[/] (value {best.value:.5g}, trial "
                  f"{best.number}, {best.steps} steps); spent {result.spent:.2f} of {budget:g} runs")
