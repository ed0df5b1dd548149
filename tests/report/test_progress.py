"""Live progress: a panel on a terminal, one plain line per trial elsewhere, silence by default."""

import io
import pickle
import re

import torch
from rich.console import Console

import lrtune
from lrtune.progress import Progress, clock_time, trial_line
from lrtune.records import TrialRecord, TrialState
from lrtune.tasks import get_task, objective, task_space

TASK = get_task("digits")


def _tune(progress: Progress | None, budget: float = 1.25) -> lrtune.Study:
    target = objective(TASK)
    return lrtune.tune(progress.watch(target) if progress else target, steps=TASK.steps,
                       budget=budget, space=task_space(TASK),
                       callbacks=[progress] if progress else [])


def test_plain_output_is_one_line_per_trial_with_the_best_so_far():
    out = io.StringIO()
    with Progress(Console(file=out, width=200)) as progress:  # not a terminal: no panel
        study = _tune(progress)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(study.trials)
    for line, trial in zip(lines, study.trials, strict=True):
        assert line.startswith(f"trial {trial.number:3d} {trial.tag}")
        assert f"lr={trial.lr:9.3e}" in line and trial.verdict in line
        assert f"steps={trial.steps_done}/{trial.steps}" in line
    assert f"best lr {study.best.lr:.3g}" in lines[-1]
    assert "\x1b[" not in out.getvalue()


def test_on_a_terminal_a_live_panel_shows_the_running_trial_and_the_budget():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with Progress(console) as progress:
        assert progress.live
        study = _tune(progress, budget=1.5)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    final = study.trials[-1]
    assert re.search(rf"trial {final.number}\s+lr {final.lr:.3e}", screen)  # the running trial
    assert re.search(r"\d+/600 steps", screen) and "loss " in screen
    assert re.search(r"compute\s.*/1\.5 runs", screen)  # against the budget
    assert "best so far" in screen
    assert sum(f"trial {t.number:3d} " in screen for t in study.trials) == len(study.trials)


def test_a_log_file_at_the_default_width_keeps_one_line_per_trial():
    out = io.StringIO()
    with Progress(Console(file=out)) as progress:  # a file: 80 columns, and no terminal
        study = _tune(progress)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(study.trials) and max(map(len, lines)) > 80  # long, not wrapped
    assert all(line.startswith("trial ") for line in lines)


class StepClock:
    """A clock that the objective moves: ``tick`` seconds per reported step."""

    def __init__(self, tick: float) -> None:
        self.tick, self.now = tick, 1000.0

    def __call__(self) -> float:
        return self.now

    def watch(self, objective):
        def ticking(trial):
            report = trial.report

            def report_and_tick(loss, step=None):
                self.now += self.tick
                report(loss, step)

            trial.report = report_and_tick
            return objective(trial)

        return ticking


def test_the_panel_shows_the_elapsed_time_and_an_eta_from_the_budget_left():
    clock, seen = StepClock(0.125), []
    console = Console(file=io.StringIO(), force_terminal=True, width=120)

    def panel_now(study, record):
        text = Console(file=io.StringIO(), width=120, record=True)
        text.print(progress.__rich__())
        seen.append((clock.now - 1000.0, study.spent, text.export_text()))

    with Progress(console, clock=clock) as progress:
        study = lrtune.tune(progress.watch(clock.watch(objective(TASK))), steps=TASK.steps,
                            budget=1.5, space=task_space(TASK), callbacks=[progress, panel_now])
    assert len(seen) == len(study.trials) >= 3
    for elapsed, spent, screen in seen:  # each step took 1/8 s of the injected clock
        left = elapsed * (1.5 - spent) / spent
        assert f"elapsed {clock_time(elapsed)}  eta {clock_time(left)}" in screen
    elapsed, spent, _ = seen[0]  # the first trial trained its steps_done at 8 steps a second
    assert elapsed == study.trials[0].steps_done / 8 and 0 < spent < 1.5


def test_clock_times_read_as_minutes_and_hours():
    assert [clock_time(s) for s in (0, 59.6, 61, 3599, 3600, 7385)] == \
        ["0:00", "1:00", "1:01", "59:59", "1:00:00", "2:03:05"]


def test_the_library_is_silent_unless_asked(capfd):  # capfd: Optuna logs to the real stderr
    _tune(None)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_watched_objective_travels_to_worker_processes_without_its_display():
    watched = Progress(Console(file=io.StringIO())).watch(len)
    copy = pickle.loads(pickle.dumps(watched))
    assert copy.progress is None and copy.objective is len


def test_tensor_losses_are_read_back_a_few_times_a_second_not_every_step():
    reads, clock = 0, StepClock(1 / 64)  # exact in binary: every 16th step is 1/4 s later

    class Counting(torch.Tensor):
        def __float__(self):
            nonlocal reads
            reads += 1
            return super().__float__()

    def fast_objective(trial):
        for step in range(trial.steps):
            trial.report(torch.tensor(1.0 / (step + 1)).as_subclass(Counting), step)
        return 0.1

    console = Console(file=io.StringIO(), force_terminal=True)
    with Progress(console, clock=clock) as progress:
        lrtune.tune(progress.watch(clock.watch(fast_objective)), steps=2000, budget=1.0,
                    strategy="grid", space=lrtune.Space(lr=(0.01, 0.1)), callbacks=[progress])
    # the trial's monitor reads in batches (no float() at all); the panel 4 times a second
    assert reads == 2000 // 16


def test_a_range_test_shows_its_sweep():
    out = io.StringIO()
    model = TASK.make_model(0)
    optimizer = lrtune.build_optimizer("sgd", model.parameters(), 1e-3, TASK.weight_decay)
    with Progress(Console(file=out, force_terminal=True, width=120)) as progress:
        step_fn = progress.watch_range_test(TASK.step_fn(model), optimizer, num_iter=60)
        result = lrtune.find(model, optimizer, TASK.train_loader(0), step_fn=step_fn, num_iter=60)
        panel = progress.__rich__()  # what the panel shows now, at the end of the sweep
    text = Console(file=io.StringIO(), width=120, record=True)
    text.print(panel)
    screen = text.export_text()
    assert re.search(rf"range test\s+lr {re.escape(f'{result.lrs[-1]:.3e}')}", screen)
    assert f"{result.steps}/60 steps" in screen


def test_a_tag_is_shown_as_written_never_obeyed_by_the_terminal():
    """A strategy's phase tag (a custom strategy names its own) reached the terminal raw: an
    ESC sequence cleared the screen, a bidi override reversed the line."""
    record = TrialRecord(number=0, params={"lr": 0.01}, steps=10, state=TrialState.COMPLETED,
                         value=1.0, steps_done=10, tag="scan\x1b[2J\u202e[red]")
    out = io.StringIO()
    Console(file=out, width=200).print(trial_line(record, record))
    assert out.getvalue().startswith(r"trial   0 scan\x1b[2J\u202e[red] lr=1.000e-02")
