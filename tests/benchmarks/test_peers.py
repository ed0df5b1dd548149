"""The benchmark's peers on real tiny tasks: choices inside the range, budgets kept, sane losses.

Imports ``benchmarks.peers`` from the repository root (``python -m pytest`` puts it on the path).
"""

from __future__ import annotations

import math
from inspect import signature

import pytest
import torch

from benchmarks.peers import PEERS
from lrtune.finder import find
from lrtune.optimizers import OPTIMIZERS
from lrtune.tasks import get_task


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Models this small gain nothing from a second thread and, on a busy machine, lose 10x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_grid_search_on_digits_keeps_the_better_of_two_cell_centres():
    low, high = OPTIMIZERS["sgd"].lr_range
    choice = PEERS["grid-search"]("digits", 2.0, 0)
    upper_centre = math.exp(math.log(low) + 0.75 * (math.log(high) - math.log(low)))
    assert choice.lr == pytest.approx(upper_centre)  # the lower centre (1.3e-3) crawls on SGD
    assert choice.val_loss < 0.15
    assert choice.runs_spent == 2.0


def test_hyperband_spends_exactly_its_step_budget():
    choice = PEERS["optuna-tpe-hyperband"]("diabetes", 1.5, 0)
    low, high = OPTIMIZERS["adamw"].lr_range
    assert choice.runs_spent == 1.5  # the trial that would overrun is cut at the budget
    assert low <= choice.lr <= high
    assert math.isfinite(choice.val_loss)


def test_schedule_free_is_scored_by_its_own_run_at_its_averaged_weights():
    pytest.importorskip("schedulefree")
    choice = PEERS["schedulefree-adamw"]("diabetes", 2.0, 0)
    assert choice.lr is None and choice.runs_spent == 1.0
    assert 0.3 < choice.val_loss < 0.8  # standardised targets: 1.0 is predicting the mean


def test_a_peer_run_with_dropout_repeats_whatever_the_process_drew_before():
    pytest.importorskip("prodigyopt")
    task = "cancer-noisy-mlp-dropout-adam-linear"  # dropout draws from torch's global RNG
    first = PEERS["prodigy"](task, 1.0, 0).val_loss
    torch.rand(1000)  # another run, or anything else, moved the global RNG
    assert PEERS["prodigy"](task, 1.0, 0).val_loss == first


@pytest.mark.parametrize("method, module", [("torch-lr-finder", "torch_lr_finder"),
                                            ("lrtune-find", "lrtune.finder")])
def test_range_tests_suggest_inside_their_sweep_and_count_the_final_run(method, module):
    pytest.importorskip(module)
    task = get_task("digits")
    low, high = OPTIMIZERS[task.optimizer].lr_range
    choice = PEERS[method]("digits", 2.0, 0)
    assert low <= choice.lr <= high
    default = 100 if method == "torch-lr-finder" else signature(find).parameters["num_iter"].default
    assert 1.0 < choice.runs_spent <= 1.0 + default / task.steps
