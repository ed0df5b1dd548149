"""``lrtune find``: run the LR range test on a built-in task or on the user's own setup."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from lrtune._validation import check_choice, fail
from lrtune.cli._app import app, console
from lrtune.cli._loading import load_function
from lrtune.cli._options import FIND_OPTION_OF, as_option, find_words
from lrtune.exceptions import InvalidParameterError
from lrtune.finder import FinderResult, find
from lrtune.finder._plan import PROBE_BATCHES
from lrtune.optimizers import build_optimizer, get_optimizer_spec
from lrtune.tasks import TASKS, get_task

BUDGET = 0.2  # default range test on a built-in task: a fifth of a full run
SETUP_KEYS = ("model", "optimizer", "data")
OPTIONAL_KEYS = ("loss_fn", "step_fn", "schedule", "scheduler", "scaler", "grad_clip",
                 "accumulation_steps")

HELP = (f"""Run the LR range test and print the suggested learning rate.

Without SETUP it runs on the built-in task named by --task ({", ".join(TASKS)}).

"""
        "SETUP is MODULE:FUNCTION or FILE.py:FUNCTION, a function of no arguments that builds your "
        "own training setup (MODULE is imported from the current directory; a FILE may import "
        "modules beside it). It returns either a tuple (model, optimizer, data, loss_fn) for "
        "(inputs, targets) batches, or a dict with the keys model, optimizer, data and one of "
        "loss_fn / step_fn (batch -> loss), plus any of schedule (the lrtune Schedule you will "
        "train with: recommended), scheduler, scaler, grad_clip, accumulation_steps."
        """

Your model, optimizer, scheduler, scaler and RNGs are restored exactly afterwards.
""")


@app.command("find", help=HELP)
def find_command(
    setup_target: Annotated[str | None, typer.Argument(
        metavar="SETUP",
        help="MODULE:FUNCTION or FILE.py:FUNCTION that builds your setup.")] = None,
    task: Annotated[str, typer.Option(
        help="Built-in task to run on when no SETUP is given.")] = "digits",
    iters: Annotated[int | None, typer.Option(
        "--iters", help="Optimizer steps the test may take: a coarse sweep, then as many "
        "fixed-rate fine passes as they pay for; more steps narrow the band without moving the "
        "suggestion (default: 20% of a full run for a built-in task, else 150).")] = None,
    start_lr: Annotated[float, typer.Option(help="First LR of the sweep.")] = 1e-7,
    end_lr: Annotated[float, typer.Option(help="Last LR of the sweep (it stops earlier if the "
                                          "loss diverges).")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of a built-in task's model and data order, "
                                      "of the test's random draws (dropout) and of the "
                                      "bootstrap.")] = 0,
    probe_batches: Annotated[int, typer.Option(
        help="Fixed batches whose loss a fine pass reads after each step (a forward pass each "
             "per step); 0 reads the trained batches' noisier losses at no extra cost.")
    ] = PROBE_BATCHES,
    out: Annotated[Path | None, typer.Option(
        help="Write the figure to this file (.png, .svg, ...).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the history and "
                                                   "reading as JSON to this file.")] = None,
) -> None:
    try:
        if setup_target is None:
            check_choice(task, "task", "lrtune find", TASKS)
            setup = _builtin(task, seed)
            iters = int(BUDGET * get_task(task).steps) if iters is None else iters
        else:
            setup = _user_setup(setup_target)
            iters = 150 if iters is None else iters
        _check_figure(out)
        _make_folders({"--out": out, "--json": json_path})
        result = find(setup.pop("model"), setup.pop("optimizer"), setup.pop("data"),
                      start_lr=start_lr, end_lr=end_lr, num_iter=iters, seed=seed,
                      probe_batches=probe_batches, **setup)
    except InvalidParameterError as err:
        raise as_option(err, FIND_OPTION_OF) from None
    _report(result)
    if out is not None:
        result.plot(out)
        console.print(f"Figure written to {out}")
    if json_path is not None:
        result.to_json(json_path)
        console.print(f"History written to {json_path}")


def _check_figure(path: Path | None) -> None:
    """Refuse a figure format matplotlib cannot write before the test runs, not after it."""
    if path is None or not path.suffix:
        return
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise InvalidParameterError(
            f"--out {str(path)!r}: matplotlib cannot write {path.suffix!r} figures; name a file "
            f"ending in one of {', '.join('.' + f for f in sorted(formats))}.")


def _make_folders(files: dict[str, Path | None]) -> None:
    """Create the missing folders of the files to write, as ``lrtune report -o`` does; before
    the test runs, so a folder that cannot be made costs no training."""
    for option, path in files.items():
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InvalidParameterError(f"{option}: cannot create the folder "
                                        f"{str(path.parent)!r} ({err.strerror}).") from None


def _builtin(name: str, seed: int) -> dict[str, Any]:
    task = get_task(name)
    model = task.make_model(seed)
    spec = get_optimizer_spec(task.optimizer)
    return {
        "model": model,
        "optimizer": build_optimizer(task.optimizer, model.parameters(), spec.default_lr,
                                     task.weight_decay),
        "data": task.train_loader(seed),
        "step_fn": task.step_fn(model),
        "grad_clip": task.grad_clip,
        "schedule": task.schedule(task.steps),
    }


def _user_setup(target: str) -> dict[str, Any]:
    builder = load_function(target, "SETUP", "a function of no arguments", 0)
    built = builder()
    if isinstance(built, tuple) and len(built) == 4:
        return dict(zip(("model", "optimizer", "data", "loss_fn"), built, strict=True))
    if isinstance(built, Mapping) and all(k in built for k in SETUP_KEYS):
        unknown = set(built) - set(SETUP_KEYS) - set(OPTIONAL_KEYS)
        if not unknown:
            return dict(built)
    requirement = ("a tuple (model, optimizer, data, loss_fn) or a dict with keys "
                   f"{', '.join(SETUP_KEYS)} and optionally {', '.join(OPTIONAL_KEYS)}")
    got = (f"a tuple of {len(built)}" if isinstance(built, tuple)
           else f"a dict with keys {', '.join(map(str, built))}" if isinstance(built, Mapping)
           else type(built).__name__)
    raise fail("setup", "lrtune find", f"a function returning {requirement}", got)


def _report(result: FinderResult) -> None:
    low, high = result.band
    triple = result.triple
    clear = result.verdict.value == "clear"  # green only for a suggestion usable as is
    console.print(f"[bold {'green' if clear else 'yellow'}]Suggested lr: "
                  f"{result.suggestion:.3g}[/]  "
                  f"(80% band {low:.3g} - {high:.3g})")
    console.print(f"  safe {triple.safe:.3g}   default {triple.default:.3g}   "
                  f"aggressive {triple.aggressive:.3g}")
    diverged = "never" if result.diverged_lr is None else f"at lr {result.diverged_lr:.3g}"
    scale = result.suggestion / result.knee_lr
    console.print(f"  read from the curve's knee at lr {result.knee_lr:.3g} (80% of its fall; "
                  f"minimum at {result.min_lr:.3g}), times {scale:.2g} for a full run with this "
                  "schedule and optimizer")
    fine = len(result.passes) - 1
    console.print(f"  diverged {diverged}; "
                  f"{result.steps} steps: a coarse sweep and {fine} fine "
                  f"pass{'' if fine == 1 else 'es'} ({result.stop_reason})")
    colour = "green" if clear else "yellow"
    console.print(f"  verdict: [{colour}]{result.verdict.value}[/] - {find_words(result.hint)}")
