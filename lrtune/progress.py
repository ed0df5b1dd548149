"""Live progress of a search or a range test, for people watching a terminal.

lrtune never prints on its own: progress is shown only by a :class:`Progress` you create.

>>> with Progress() as progress:
...     study = lrtune.tune(progress.watch(objective), steps=2000, callbacks=[progress])

On a terminal it draws a live panel (the running trial's LR, step, loss and verdict, the
compute spent against the budget, the best trial so far) above which each finished trial leaves
one line; anything else printed on the same console appears above the panel too. Elsewhere (CI
logs, files, pipes) only the per-trial lines are printed, plain and unwrapped (one line each).

The panel is drawn a few times a second, and at once when a trial starts or ends, so each
trial's first and last state always reach the screen however busy the machine is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from lrtune._failure import transparent
from lrtune._visible import visible
from lrtune.diagnostics import Standing, standing
from lrtune.records import TrialRecord
from lrtune.trial import Trial

if TYPE_CHECKING:
    from lrtune.study import Study

REFRESH_PER_SECOND = 4
VERDICT_STYLE = {"healthy": "green", "completed": "green", "diverged": "bold red",
                 "exploding_gradients": "red", "oscillating": "yellow", "stagnant": "blue",
                 "vanishing_gradients": "blue"}


@dataclass
class _Run:
    """What the panel shows of the run in progress (plain floats: the panel thread reads them)."""

    title: str
    lr: float
    total: int
    step: int = 0
    loss: float | None = None
    diverged: bool = False
    full_steps: int | None = None  # one full run, for a search's compute


class Progress:
    """Shows a search (or range test) as it runs; see the module docstring for the wiring.

    ``console`` defaults to a new one on standard error. ``live`` forces the live panel on or
    off (default: on when the console is a terminal). ``clock`` (seconds, monotonic) times the
    elapsed time, the ETA and how often a loss is read back; tests pass their own.
    """

    def __init__(self, console: Console | None = None, *, live: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.live = self.console.is_terminal if live is None else live
        self._clock = clock
        self._started = clock()
        self._run: _Run | None = None
        self._spent = 0.0  # full runs, as of the last finished trial
        self._budget: float | None = None
        self._best: TrialRecord | None = None
        self._last_read = 0.0
        self._display: Live | None = None

    # -- wiring ----------------------------------------------------------------------------------
    def watch(self, objective: Callable[[Trial], float]) -> Callable[[Trial], float]:
        """``objective``, showing each trial's steps and losses as it calls ``trial.report``.

        Picklable: sent to worker processes (``tune(workers=N)``) it is the bare objective
        there, and the panel shows what the callbacks report in this process.
        """
        return _Watched(objective, self)

    def watch_range_test(self, loss_fn: Callable[..., torch.Tensor],
                         optimizer: torch.optim.Optimizer,
                         num_iter: int) -> Callable[..., torch.Tensor]:
        """``loss_fn`` (or ``step_fn``) for :func:`lrtune.find`, showing the sweep's LR and loss.

        Only calls with gradients count as steps: ``find`` also evaluates its probe batches
        through the same function, without them."""
        self._run = _Run("range test", optimizer.param_groups[0]["lr"], num_iter)
        calls = 0

        def watched(*args: Any, **kwargs: Any) -> torch.Tensor:
            nonlocal calls
            loss = loss_fn(*args, **kwargs)
            if not torch.is_grad_enabled():  # a probe evaluation, not a training step
                return loss
            calls += 1
            if self._run is not None:
                self._run.lr = optimizer.param_groups[0]["lr"]
            self._show_step(min(calls, num_iter), loss, False)
            return loss

        return watched

    def __call__(self, study: Study, record: TrialRecord) -> None:
        """The per-trial callback for :func:`lrtune.tune`: one line per finished trial."""
        self._spent, self._budget, self._best = study.spent, study.budget, study.best
        self._run = None
        # off a terminal nothing re-flows a wrapped line: keep one line per trial at any width
        self.console.print(trial_line(record, self._best, standing(record, study.trials)),
                           soft_wrap=not self.console.is_terminal)
        self._refresh()

    # -- live panel ------------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        self._started = self._clock()
        if self.live:
            self._display = Live(self, console=self.console, transient=True,
                                 refresh_per_second=REFRESH_PER_SECOND)
            self._display.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def _start_trial(self, trial: Trial) -> None:
        self._run = _Run(f"trial {trial.number}", trial.lr, trial.steps,
                         full_steps=trial.full_steps)
        self._refresh()

    def _refresh(self) -> None:
        """Draw now, not at the next tick: a short trial may start and end between two."""
        if self._display is not None:
            self._display.refresh()

    def _show_step(self, step: int, loss: float | torch.Tensor, diverged: bool) -> None:
        run = self._run
        if run is None or self._display is None:
            return
        run.step, run.diverged = step, diverged
        now = self._clock()
        if now - self._last_read >= 1 / REFRESH_PER_SECOND:  # a tensor costs a device sync:
            self._last_read = now  # read one back a few times a second, not every step
            run.loss = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)

    def __rich__(self) -> Group:
        """The panel, rebuilt at each refresh from the plain values above."""
        grid = Table.grid(padding=(0, 1))
        for _ in range(4):
            grid.add_column()
        run = self._run
        if run is not None:
            verdict = Text("diverged", "bold red") if run.diverged else Text("running", "cyan")
            loss = f"loss {run.loss:.4g}" if run.loss is not None and math.isfinite(run.loss) \
                else "loss -"
            grid.add_row(Text(f"{run.title}  lr {run.lr:.3e}", "bold"),
                         ProgressBar(total=max(run.total, 1), completed=run.step, width=30),
                         f"{run.step}/{run.total} steps", Text.assemble(loss, "  ", verdict))
        if self._budget is not None:  # a search: its compute and its best trial so far
            spent = self._spent + (run.step / run.full_steps if run and run.full_steps else 0.0)
            grid.add_row(Text("compute", "dim"),
                         ProgressBar(total=self._budget, completed=min(spent, self._budget),
                                     width=30),
                         f"{spent:.2f}/{self._budget:g} runs", self._times(spent))
            best = self._best
            grid.add_row(Text("best so far", "dim"), f"lr {best.lr:.3e}" if best else "-",
                         f"loss {best.value:.4g}" if best and best.value is not None else "", "")
        return Group(grid)

    def _times(self, spent: float) -> str:
        """Elapsed time, and the time left if the rest of the budget goes at the pace so far."""
        elapsed = self._clock() - self._started
        if spent <= 0 or self._budget is None:
            return f"elapsed {clock_time(elapsed)}  eta -"
        left = elapsed * max(self._budget - spent, 0.0) / spent
        return f"elapsed {clock_time(elapsed)}  eta {clock_time(left)}"


def clock_time(seconds: float) -> str:
    """``seconds`` as m:ss, or h:mm:ss from an hour on."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Watched:
    """An objective whose trials show their progress (see :meth:`Progress.watch`)."""

    def __init__(self, objective: Callable[[Trial], float], progress: Progress | None) -> None:
        self.objective = objective
        self.progress = progress

    @transparent  # a failure to call the objective is not this line's
    def __call__(self, trial: Trial) -> float:
        progress = self.progress
        if progress is None:
            return self.objective(trial)
        progress._start_trial(trial)
        report = trial.report

        def report_and_show(loss: float | torch.Tensor, step: int | None = None,
                            val_loss: float | torch.Tensor | None = None) -> None:
            try:
                report(loss, step, val_loss)
            finally:
                progress._show_step(trial.steps_done, loss, trial.monitor.diverged)

        trial.report = report_and_show  # type: ignore[method-assign]  # this trial only: the Trial class is untouched
        return self.objective(trial)

    def __getstate__(self) -> dict[str, Any]:
        return {"objective": self.objective, "progress": None}  # a display stays in its process


def shown(text: str) -> str:
    """User text for a console: shown as it is, never obeyed by the terminal (a strategy's tag
    with an ESC), never read as rich markup (a study named ``[red]x``)."""
    return escape(visible(text))


def trial_line(record: TrialRecord, best: TrialRecord | None,
               placed: Standing | None = None) -> str:
    """One finished trial in one line (rich markup): LR, budget, outcome, the best so far, and
    where the trial stands against the study's best (when the study has mapped enough)."""
    value = f"{record.value:.5g}" if record.value is not None else record.state.value
    style = VERDICT_STYLE.get(record.verdict, "dim")
    best_text = (f"best lr {best.lr:.3g} ({best.value:.5g})"
                 if best is not None and best.value is not None else "no best yet")
    return (f"trial {record.number:3d} {shown(record.tag):8s} lr={record.lr:9.3e} "
            f"steps={record.steps_done}/{record.steps} -> {value:>10s} "
            f"[{style}]{shown(record.verdict):12s}[/] | {best_text}"
            + (f" | {shown(str(placed))}" if placed is not None else ""))
