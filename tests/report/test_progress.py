"""Live progress: a panel on a terminal, one plain line per trial elsewhere, silence by default."""

import io
import pickle
import re

import torch
from rich.console import Console

import lrtune
from lrtune.progress import Progress
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
    for line, trial in zip(lines, study.trials):
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


def test_the_library_is_silent_unless_asked(capsys):
    _tune(None)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_watched_objective_travels_to_worker_processes_without_its_display():
    watched = Progress(Console(file=io.StringIO())).watch(len)
    copy = pickle.loads(pickle.dumps(watched))
    assert copy.progress is None and copy.objective is len


def test_tensor_losses_are_read_back_a_few_times_a_second_not_every_step():
    reads = 0

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
    with Progress(console) as progress:
        lrtune.tune(progress.watch(fast_objective), steps=2000, budget=1.0, strategy="grid",
                    space=lrtune.Space(lr=(0.01, 0.1)), callbacks=[progress])
    assert 1 <= reads < 200  # the trial's monitor reads in batches; the panel only sometimes


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
