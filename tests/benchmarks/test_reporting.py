"""How benchmark results become RESULTS.md: grid summaries, per-recipe tables, stale-cache rules
and the stamp on every section."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import asdict

import numpy as np
import pytest
import torch

from benchmarks import noise_floor, results_md, suite, tune_benchmark
from benchmarks.peers import Choice
from benchmarks.reference import GridReference
from benchmarks.stamp import stamp
from benchmarks.tune_benchmark import Record, method_version, recipe_rows, suite_markdown

INF = math.inf


def grid(per_seed) -> GridReference:
    per_seed = np.array(per_seed, dtype=float)
    return GridReference("synthetic", np.geomspace(1e-3, 1.0, len(per_seed)), (0, 1), per_seed)


def test_a_basin_has_its_best_inside_and_the_first_diverged_lr_above_it_as_its_cliff():
    s = suite.GridSummary.of(grid([[1.0, 1.0], [0.5, 0.6], [0.2, 0.3], [0.4, INF], [INF, INF]]))
    assert s.best_lr == pytest.approx(grid([[0]] * 5).lrs[2])
    assert s.best_loss == pytest.approx(0.25)
    assert s.cliff_lr == pytest.approx(grid([[0]] * 5).lrs[3])  # one diverged seed is enough
    assert s.basin


def test_a_run_that_collapses_to_chance_without_a_nan_is_a_cliff_too():
    s = suite.GridSummary.of(grid([[2.3, 2.3], [0.5, 0.5], [0.9, 0.9], [2.2, 2.2]]))
    assert s.cliff_lr == pytest.approx(grid([[0]] * 4).lrs[3])  # 94% of the gain given back
    assert s.basin
    # the grid's lowest LR may sit above chance (an initial loss of 2.35 on 10 classes)
    above_chance = suite.GridSummary.of(grid([[2.35, 2.35], [1.0, 1.0], [2.0, 2.0], [2.32, 2.32]]))
    assert above_chance.cliff_lr == pytest.approx(grid([[0]] * 4).lrs[3])


def test_a_best_lr_at_the_edge_or_without_a_cliff_is_no_basin():
    at_top = suite.GridSummary.of(grid([[1.0, 1.0], [0.5, 0.5], [0.2, 0.2]]))
    no_cliff = suite.GridSummary.of(grid([[1.0, 1.0], [0.2, 0.2], [0.5, 0.5]]))
    assert not at_top.basin and at_top.cliff_lr is None
    assert not no_cliff.basin and no_cliff.cliff_lr is None


def record(method: str, task: str, seed: int, runs: float = 2.0) -> Record:
    return Record(Choice(method, task, seed, 0.01, 0.5, runs), 2.0, 1.0, "v", None, "m")


def test_per_recipe_rows_give_each_seed_and_the_worst_one():
    scored = [(record("lrtune-auto", "a", s), r) for s, r in enumerate([0.01, 0.30, 0.02])]
    scored += [(record("lrtune-auto", "b", s), r) for s, r in enumerate([0.05, 0.04, 0.06])]
    rows = recipe_rows(scored)
    assert [(r["task"], r["median"], r["worst"], r["worst_seed"]) for r in rows] == [
        ("a", 0.02, 0.30, 1), ("b", 0.05, 0.06, 2)]
    text = suite_markdown(rows, (0, 1, 2))
    # median over recipes of the per-recipe medians; worst recipe by its median; worst pair
    assert "| lrtune-auto | 2 | 0.035 | 0.050 (b) | 0.300 (a, seed 1) | 2.00 |" in text
    assert "| a | lrtune-auto | 2 | 0.010 | 0.300 | 0.020 | 0.020 | 1 |" in text


def test_the_share_of_intervals_holding_the_grid_best_lr_is_reported(monkeypatch):
    # the grid's best LR is 0.1 (of 1e-3, 1e-2, 0.1, 1): two of three intervals hold it
    monkeypatch.setattr(tune_benchmark, "grid_reference",
                        lambda task: grid([[1.0, 1.0], [0.6, 0.6], [0.5, 0.5], [0.9, 0.9]]))
    intervals = [(0.05, 0.2), (0.01, 0.05), (0.1, 0.3)]
    scored = [(Record(Choice("lrtune-auto", "a", s, 0.1, 0.5, 2.0, 0.1, interval), 2.0, 1.0, "v",
                      None, "m"), 0.0) for s, interval in enumerate(intervals)]
    scored.append((record("lrtune-grid", "a", 0), 0.0))  # states no interval
    text = suite_markdown(recipe_rows(scored), (0, 1, 2))
    assert "| lrtune-auto | 2 | 0.000 | 0.000 (a) | 0.000 (a, seed 0) | 2.00 | 2/3 |" in text
    assert "| a | lrtune-auto | 2 | 0.000 | 0.000 | 0.000 | 0.000 | 0 | 2/3 |" in text
    assert "| lrtune-grid | 2 | 0.000 | 0.000 (a) | 0.000 (a, seed 0) | 2.00 | - |" in text


def test_a_cached_choice_from_other_method_code_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(tune_benchmark, "CACHE", tmp_path / "cache.json")
    current = Record(Choice("lrtune-auto", "digits", 0, 0.05, 0.1, 2.0), 2.0, 1.0,
                     tune_benchmark.task_version("digits"), None, method_version("lrtune-auto"))
    stale = Record(**{**asdict(current), "choice": Choice("lrtune-auto", "digits", 1, 0.05, 0.1,
                                                          2.0), "method_version": "0ld"})
    tune_benchmark.CACHE.write_text(json.dumps({"fresh": asdict(current), "old": asdict(stale)}))
    assert list(tune_benchmark.load_cache()) == ["fresh"]


def test_editing_the_strategy_code_changes_the_method_key(tmp_path, monkeypatch):
    copy = tmp_path / "lrtune"
    shutil.copytree(tune_benchmark.LRTUNE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(tune_benchmark, "LRTUNE", copy)
    before = method_version("lrtune-auto"), method_version("random-search")
    auto = copy / "strategies" / "_auto.py"
    auto.write_text(auto.read_text() + "\n# an edit\n")
    assert method_version("lrtune-auto") != before[0]
    assert method_version("random-search") == before[1]  # a peer does not run lrtune's search
    after_auto = method_version("lrtune-auto")
    monitor = next((copy / "diagnostics").glob("*.py"))
    monitor.write_text(monitor.read_text() + "\n# an edit\n")  # both watch runs with it
    assert method_version("lrtune-auto") != after_auto
    assert method_version("random-search") != before[1]


def test_every_published_section_is_stamped_under_its_heading(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results_md, "OUT", tmp_path)
    results_md.publish("## Probe", "## Probe\n\n| a |\n", "probe.json", {"x": 1}, write=False)
    printed = capsys.readouterr().out
    head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True,
                          text=True, cwd=results_md.RESULTS.parent).stdout.strip()
    assert printed.startswith(f"## Probe\n\n{stamp()}\n\n| a |")
    assert f"commit `{head}" in stamp() and f"torch {torch.__version__}" in stamp()
    assert f"{torch.get_num_threads()} torch thread" in stamp()
    assert json.loads((tmp_path / "probe.json").read_text()) == {"x": 1}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_stamp_calls_a_commit_dirty_for_code_but_not_for_results_md(tmp_path, monkeypatch):
    from benchmarks import stamp as stamp_module

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "benchmarks").mkdir()
    for name in ("benchmarks/RESULTS.md", "code.py"):
        (tmp_path / name).write_text("v1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    monkeypatch.setattr(stamp_module, "ROOT", tmp_path)
    clean = stamp_module.commit()
    (tmp_path / "benchmarks/RESULTS.md").write_text("a section published\n")
    assert stamp_module.commit() == clean and not clean.endswith("+dirty")
    (tmp_path / "code.py").write_text("v2\n")
    assert stamp_module.commit() == clean + "+dirty"


def test_suite_option_selects_a_set_and_publish_refuses_a_partial_task_list(capsys):
    from benchmarks.recipes import recipe_names

    assert tune_benchmark.parse_args(["--suite", "dev"]).tasks == recipe_names("dev")
    assert tune_benchmark.parse_args(["--suite", "fresh"]).tasks == recipe_names("fresh")
    assert (tune_benchmark.parse_args(["--suite", "dev-constant"]).tasks
            == recipe_names("dev-constant"))
    with pytest.raises(SystemExit):
        tune_benchmark.parse_args(["--tasks", "digits", "--publish"])
    assert "for a whole --suite set" in capsys.readouterr().err


def test_a_method_can_have_budgets_of_its_own(capsys):
    args = tune_benchmark.parse_args(["--suite", "dev", "--methods", "lrtune-auto,optuna-tpe",
                                      "--budgets", "4", "--budgets-of", "optuna-tpe=4,8"])
    assert args.budgets == [4.0] and args.budgets_of == {"optuna-tpe": [4.0, 8.0]}
    for bad in ("random-search=4", "optuna-tpe=four", "optuna-tpe"):
        with pytest.raises(SystemExit):
            tune_benchmark.parse_args(["--methods", "lrtune-auto,optuna-tpe", "--budgets-of", bad])
        assert "--budgets-of" in capsys.readouterr().err


def test_the_horizon_table_gives_each_length_its_best_lr_against_the_full_runs_and_its_progress():
    from benchmarks import horizon

    lrs = [0.001, 0.01, 0.1]
    lengths = {"8": [2.0, 1.8, None], "12": [1.9, 1.5, 1.7], "25": [1.6, 1.2, 1.4],
               "50": [1.2, 1.0, 1.1], "100": [0.6, 1.0, None]}  # the full run: best at 0.001
    rows = {"r": {"lrs": lrs, "steps": 100, "untrained": 2.6, "recipe": "sgd, constant",
                  "lengths": lengths}}
    table = horizon.markdown("## Horizon", "dev", rows, "cmd")
    row = next(line for line in table.splitlines() if line.startswith("| r |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[3] == "0.001"
    # T/16 is 8 steps (the floor): best 0.01, 10x the full run's, 0.8 of the 2.0 the full run
    # fell; a diverged LR (None) is never the best
    assert cells[4:] == ["10 (0.40)", "10 (0.55)", "10 (0.70)", "10 (0.80)", "1 (1.00)"]


def test_a_suite_benchmark_names_the_command_that_writes_its_section(tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setattr(results_md, "OUT", tmp_path)
    results_md.publish_suite("noise_floor", "fresh", "## Probe", {"r": {"x": 1}},
                             lambda title, suite, rows, command: f"{title}\n\n`{command}`\n",
                             write=False)
    assert ("`nice -n 10 .venv/bin/python -m benchmarks.noise_floor --suite fresh --publish`"
            in capsys.readouterr().out)
    assert json.loads((tmp_path / "noise_floor_fresh.json").read_text()) == {"r": {"x": 1}}


def test_the_noise_of_a_scored_mean_is_read_near_the_best_in_regret_units():
    # best mean 1.0, random-LR mean 2.02; the two LRs near the best (regret under 0.2) spread
    # their seeds by sd 0.3 and 0.6, the three far ones are not counted
    per_seed = np.array([[2.9, 3.0, 3.1], [0.7, 1.0, 1.3], [0.5, 1.1, 1.7], [2.5, 3.5, 3.0],
                         [2.0, 2.0, 2.0]])
    ref = GridReference("probe", np.array([1e-3, 1e-2, 1e-1, 1.0, 10.0]), (0, 1, 2), per_seed)
    scale = ref.random_loss - ref.best_loss
    near = [row for row in per_seed if (row.mean() - ref.best_loss) / scale < noise_floor.NEAR]
    assert len(near) == 2
    assert noise_floor._mean_noise(ref) == pytest.approx(
        np.median([0.3 / math.sqrt(3), 0.6 / math.sqrt(3)]) / scale)
