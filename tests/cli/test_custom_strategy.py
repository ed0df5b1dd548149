"""A study created with a strategy of the user's own, run by ``lrtune worker`` and read by
``lrtune report`` / ``show`` in fresh processes that know the strategy only as a stored name."""

import subprocess
import sys
import textwrap

import pytest

import lrtune
from lrtune.cli._loading import load_object
from lrtune.records import TrialState
from lrtune.study import join_study
from lrtune.study._study import Study

TRAIN = textwrap.dedent("""
    from lrtune.strategies import FINISHED, Proposal, Strategy, register
    from lrtune.tasks import get_task, objective as task_objective


    class Pair(Strategy):
        '''Two full runs, at 0.1 then 0.03.'''

        name = "cli-pair"

        def ask(self, context):
            if len(context.trials) == 2:
                return FINISHED
            lr = (0.1, 0.03)[len(context.trials)]
            return Proposal(context.space.config(lr), context.full_steps, "pair")


    register(Pair)  # importing the objective's module registers its strategy
    objective = task_objective(get_task("digits"))
""")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lrtune.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.fixture
def study_of_pair(tmp_path):
    """A study created here with the user's strategy (train.py's Pair); its URL."""
    (tmp_path / "train.py").write_text(TRAIN)
    url = f"sqlite:///{tmp_path}/mine.db"
    pair = load_object(f"{tmp_path}/train.py:Pair")
    Study.open(storage=url, study_name="mine", space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"),
               steps=60, budget=3.0, strategy=pair(), seed=0)
    return url


def test_worker_rebuilds_a_custom_strategy_by_its_name(study_of_pair, tmp_path):
    worker = _cli("worker", "train.py:objective", "--storage", study_of_pair, "--study", "mine",
                  cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    assert "this worker ran 2 trials" in worker.stdout
    study = lrtune.load_study("mine", study_of_pair)
    assert [(t.tag, t.lr, t.steps, t.state) for t in study.trials] == [
        ("pair", 0.1, 60, TrialState.COMPLETED), ("pair", 0.03, 60, TrialState.COMPLETED)]
    assert study.spent == 2.0


@pytest.fixture
def worked(study_of_pair, tmp_path):
    """The study, worked here as the worker would (the worker's own process is tested above)."""
    objective = load_object(f"{tmp_path}/train.py:objective")
    pair = load_object(f"{tmp_path}/train.py:Pair")
    join_study(objective, storage=study_of_pair, study_name="mine", strategy=pair())
    return study_of_pair


def test_report_names_an_unknown_strategy_and_rebuilds_it_when_told(worked, tmp_path):
    unknown = _cli("report", "mine", "--storage", worked, cwd=tmp_path)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "strategy 'cli-pair', which this process does not know" in unknown.stderr
    assert "@lrtune.strategies.register" in unknown.stderr and "--strategy" in unknown.stderr

    report = _cli("report", "mine", "--storage", worked, "--strategy", "train.py:Pair",
                  "-o", "mine.html", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "cli-pair" in (tmp_path / "mine.html").read_text()


def test_show_rebuilds_a_custom_strategy_when_told(worked, tmp_path):
    show = _cli("show", "mine", "--storage", worked, "--strategy", "train.py:Pair", cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "strategy cli-pair" in show.stdout and show.stdout.count(" pair ") == 2
