"""``lrtune worker``: join a stored study and run its trials until its budget is spent.

Start one per process on as many hosts as the storage reaches; each shows the trials it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from lrtune.cli._app import app, console
from lrtune.cli._loading import load_function
from lrtune.cli._options import objective_words
from lrtune.cli._strategy_option import StrategyOption, register_strategy
from lrtune.exceptions import LrtuneError, ObjectiveError, ObjectiveFailedError
from lrtune.progress import Progress
from lrtune.records import TrialRecord
from lrtune.study import Study, join_study
from lrtune.study._worker import interrupt_on_sigterm


@app.command("worker")
def worker_command(
    target: Annotated[str, typer.Argument(
        metavar="TARGET",
        help="The objective, as module:function or file.py:function (the one the study was "
             "created for).")],
    storage: Annotated[str, typer.Option(
        help="Storage URL of the study, e.g. postgresql://user:password@dbhost/lrtune.")],
    study: Annotated[str, typer.Option(help="Name of the study to join.")],
    strategy: StrategyOption = None,
) -> None:
    """Join the stored study STUDY and run its trials until it is done."""
    # first: its module may register the study's strategy
    objective = load_function(target, "TARGET", "a function of one argument, the trial", 1)
    register_strategy(strategy)
    interrupt_on_sigterm()
    ran: list[TrialRecord] = []

    def count(_study: Study, record: TrialRecord) -> None:
        ran.append(record)

    try:
        with Progress(console) as progress:
            result = join_study(progress.watch(objective), storage=storage, study_name=study,
                                callbacks=[progress, count])
    except (ObjectiveError, ObjectiveFailedError) as err:
        raise LrtuneError(objective_words(str(err), target, kept=True)) from None
    except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C, SIGTERM
        console.print("stopped: the running trial is marked lost and will run again")
        code = stop.code if isinstance(stop, SystemExit) else 130
        raise typer.Exit(code if isinstance(code, int) else 1) from None
    best = result.best
    best_text = (f"best lr {best.lr:.4g} (value {best.value:.5g})" if best is not None
                 else "no trial completed")
    console.print(f"\nstudy {result.name!r} done: this worker ran {len(ran)} trials; {best_text}; "
                  f"spent {result.spent:.2f} of {result.budget:g} runs")
