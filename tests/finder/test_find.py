"""Acceptance tests for lrtune.find: exact restore, divergence stop, NaN, batches, accumulation,
AMP,
param-group ratios, bad input, the result object and the CLI. Real tiny training on digits."""

from __future__ import annotations

import itertools
import json
import math
import random
import re

import numpy as np
import pytest
import torch
from torch import nn

from lrtune.exceptions import InvalidParameterError
from lrtune.finder import FinderResult, LRTriple, Verdict, find
from lrtune.finder._analysis import FEW_PASS_SPREAD, analyse, divergence_onset, schedule_factor
from lrtune.schedules import Constant, Cosine, ScheduledLR, make_schedule
from lrtune.tasks import get_task

ITERS = 60
TASK = get_task("digits")


def bn_setup(seed: int = 0):
    """A digits MLP with BatchNorm and dropout (buffers and RNG use), Adam, a scheduler, a
    scaler."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = ScheduledLR(optimizer, make_schedule("cosine", 200, warmup=10))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=5)
    loader = TASK.train_loader(seed)
    return model, optimizer, scheduler, scaler, loader


def train_steps(model, optimizer, scheduler, scaler, loader, steps):
    """The user's own loop: losses per step plus draws from every global RNG."""
    losses, batches = [], iter(loader)
    for _ in range(steps):
        batch = next(batches, None)
        if batch is None:  # next epoch
            batches = iter(loader)
            batch = next(batches)
        x, y = batch
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        losses.append(loss.detach())
    return losses, (random.random(), float(np.random.rand()), torch.rand(3))


def tensors_of(model, optimizer):
    out = [t for t in model.state_dict().values()]
    for state in optimizer.state_dict()["state"].values():
        out += [v for v in state.values() if isinstance(v, torch.Tensor)]
    return out


def test_training_after_find_is_bitwise_identical():
    train_steps(*bn_setup(), steps=2)  # first-use lazy imports draw from Python's RNG: not ours
    runs = []
    for with_find in (False, True):
        random.seed(1), np.random.seed(1)
        setup = bn_setup()
        train_steps(*setup, steps=12)  # optimizer, scheduler and scaler state exist by now
        model, optimizer, scheduler, scaler, loader = setup
        model.eval()  # a mode find() must put back
        before = [t.clone() for t in tensors_of(model, optimizer)]
        if with_find:
            result = find(model, optimizer, loader, nn.functional.cross_entropy, num_iter=ITERS,
                          scheduler=scheduler, scaler=scaler)
            assert result.steps > 20
            after = tensors_of(model, optimizer)
            assert len(after) == len(before)
            assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
            assert not model.training and not model[1].training
            assert all(p.grad is not None for p in model.parameters())  # grads from the loop kept
        state = (scheduler.state_dict(), scaler.state_dict(),
                 [g["lr"] for g in optimizer.param_groups])
        model.train()
        runs.append((train_steps(*setup, steps=25), tensors_of(model, optimizer), state))
    (losses_a, rng_a), tensors_a, state_a = runs[0]
    (losses_b, rng_b), tensors_b, state_b = runs[1]
    assert all(torch.equal(a, b) for a, b in zip(losses_a, losses_b, strict=False))
    assert rng_a[:2] == rng_b[:2] and torch.equal(rng_a[2], rng_b[2])
    assert all(torch.equal(a, b) for a, b in zip(tensors_a, tensors_b, strict=False))
    assert state_a == state_b


def digits_setup(seed: int = 0, lr: float = 0.1):
    model = TASK.make_model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return model, optimizer, TASK.train_loader(seed)


def test_sweeps_stop_at_divergence_and_the_fine_passes_are_read():
    model, optimizer, loader = digits_setup()
    result = find(model, optimizer, loader, step_fn=TASK.step_fn(model), start_lr=1e-5,
                  end_lr=100.0, num_iter=120, schedule=TASK.schedule(TASK.steps))
    coarse, *fine = result.passes
    assert len(fine) >= 3 and all(p.stop_reason == "diverged" for p in fine)
    assert coarse.losses[-1] > 10 * coarse.losses[0]  # the coarse sweep saw the blow-up
    longest = max(fine, key=lambda p: len(p.lrs))
    assert all(np.array_equal(p.lrs, longest.lrs[:len(p.lrs)]) for p in fine)  # one window
    assert longest.lrs[0] < longest.lrs[-1] / 100  # each pass starts well below its blow-up
    assert result.steps == sum(len(p.losses) for p in result.passes) <= 120
    assert np.array_equal(result.lrs, longest.lrs)
    assert 0.2 < result.diverged_lr < 10  # SGD on digits blows up around 0.4-1
    assert len(result.smoothed) == result.usable <= len(result.lrs)
    assert result.verdict is Verdict.CLEAR
    low, high = result.band
    assert low <= result.suggestion <= high
    assert 0.02 < result.suggestion < 0.3  # grid best 0.063 (benchmarks/RESULTS.md)
    assert result.safe < result.default < result.aggressive < result.diverged_lr


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_loss_ends_each_pass_at_that_step(bad):
    model, optimizer, loader = digits_setup()
    initial = [p.clone() for p in model.parameters()]
    limit = 0.05  # as if the loss overflowed at every LR above this one

    def step_fn(batch):
        loss = TASK.forward_loss(model, *batch)
        return loss * bad if optimizer.param_groups[0]["lr"] > limit else loss

    result = find(model, optimizer, loader, step_fn=step_fn, num_iter=100)
    assert len(result.passes) >= 3
    for sweep in result.passes:
        assert sweep.stop_reason == "diverged" and sweep.lrs[-1] > limit >= sweep.lrs[-2]
        assert not math.isfinite(sweep.losses[-1]) and np.isfinite(sweep.losses[:-1]).all()
    assert result.diverged_lr == pytest.approx(result.passes[1].lrs[-1])
    assert np.isfinite(result.losses).all()  # past its blow-up a pass counts as untrained
    assert result.suggestion < limit
    assert json.loads(result.to_json())["passes"][0]["loss"][-1] is None
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), initial, strict=False))


def test_negative_losses_read_like_positive_ones():
    model, optimizer, loader = digits_setup()
    plain = find(model, optimizer, loader, step_fn=TASK.step_fn(model), num_iter=ITERS)
    shifted = find(model, optimizer, loader, num_iter=ITERS,
                   step_fn=lambda batch: TASK.forward_loss(model, *batch) - 3.0)
    assert (shifted.losses[:20] < 0).all()
    np.testing.assert_allclose(shifted.losses[:20] + 3.0, plain.losses[:20], rtol=1e-6)
    assert shifted.verdict is plain.verdict
    assert 1 / 1.5 < shifted.suggestion / plain.suggestion < 1.5


class DictBatches:
    """A loader of dict batches (like Hugging Face datasets) over the digits loader."""

    def __init__(self, loader):
        self.loader = loader
        self.generator = loader.generator

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        return ({"pixels": x, "label": y} for x, y in self.loader)


def test_step_fn_with_dict_batches_matches_tuple_batches():
    model, optimizer, loader = digits_setup()
    tuples = find(model, optimizer, loader, nn.functional.cross_entropy, num_iter=ITERS)
    dicts = find(model, optimizer, DictBatches(loader), num_iter=ITERS,
                 step_fn=lambda b: nn.functional.cross_entropy(model(b["pixels"]), b["label"]))
    np.testing.assert_array_equal(tuples.losses, dicts.losses)
    assert tuples.suggestion == dicts.suggestion


def test_gradient_accumulation_counts_optimizer_steps():
    model, optimizer, loader = digits_setup()
    counts = {"batches": 0, "steps": 0}
    optimizer.register_step_post_hook(lambda *_: counts.__setitem__("steps", counts["steps"] + 1))

    def step_fn(batch):
        counts["batches"] += 1
        return TASK.forward_loss(model, *batch)

    result = find(model, optimizer, loader, step_fn=step_fn, num_iter=ITERS, accumulation_steps=3,
                  end_lr=1e-2, probe_batches=0)  # no divergence: every planned step is taken
    assert result.steps == counts["steps"] == sum(len(p.lrs) for p in result.passes)
    assert ITERS - len(result.passes[-1].lrs) < result.steps <= ITERS  # no room for one more
    assert counts["batches"] == 3 * result.steps
    assert all(p.lrs[-1] == pytest.approx(1e-2) for p in result.passes)


def test_the_seed_not_the_callers_draws_decides_dropouts_masks():
    """A dropout model's test is the same whatever the caller drew before, and its own seed
    changes it (the masks): a benchmark that ran other work first got another coarse sweep."""

    def coarse_losses(draws: int, seed: int) -> np.ndarray:
        model, optimizer, _, _, loader = bn_setup()
        torch.rand(draws), random.random(), np.random.rand()  # the caller's own use of the RNGs
        after_draws = torch.get_rng_state()
        result = find(model, optimizer, loader, nn.functional.cross_entropy, num_iter=ITERS,
                      seed=seed)
        assert torch.equal(torch.get_rng_state(), after_draws)  # the caller's stream is back
        return result.passes[0].losses

    first = coarse_losses(draws=1, seed=0)
    assert np.array_equal(first, coarse_losses(draws=1000, seed=0))
    assert not np.array_equal(first, coarse_losses(draws=1, seed=1))


def test_fine_passes_read_a_probe_that_moves_only_with_the_weights():
    """At LRs too small to move the weights, the training batches' losses still jump with the
    batch drawn and dropout's masks; the probe's (fixed batches, the same masks each time) do
    not."""
    model, optimizer, _, _, loader = bn_setup()

    def jumps(probe_batches: int) -> float:
        result = find(model, optimizer, loader, nn.functional.cross_entropy, num_iter=ITERS,
                      end_lr=1e-4, probe_batches=probe_batches)  # Adam's steps: at most 2e-6
        return float(np.median(np.abs(np.diff(result.passes[1].losses[:10]))))

    assert jumps(4) < 0.01 * jumps(0)


@pytest.mark.parametrize("batches", [13, 15])  # the coarse sweep's 13 steps, then 2 for the probe
def test_data_that_runs_out_before_a_fine_pass_is_read_from_the_coarse_sweep(batches):
    model, optimizer, loader = digits_setup()
    result = find(model, optimizer, itertools.islice(iter(loader), batches),
                  nn.functional.cross_entropy, num_iter=ITERS)
    assert result.stop_reason == "data exhausted" and len(result.passes) == 1
    assert result.steps == 13 and np.isfinite(result.suggestion)
    assert result.probe_batches == 0  # drawn, but no curve was read on them


def test_a_stop_iteration_from_the_users_code_is_not_the_end_of_the_data():
    """Only the data running out ends a pass; a StopIteration the forward raises (``next()`` of
    an empty iterator) reaches the caller, as it would from their own loop."""
    model, optimizer, loader = digits_setup()
    before = [t.clone() for t in tensors_of(model, optimizer)]
    calls = iter(range(20))

    def step_fn(batch):
        next(calls)  # the 21st call raises StopIteration: the user's bug, not the data's end
        return TASK.step_fn(model)(batch)

    with pytest.raises(StopIteration):
        find(model, optimizer, loader, step_fn=step_fn, num_iter=ITERS)
    assert all(torch.equal(a, b) for a, b in zip(tensors_of(model, optimizer), before,
                                                  strict=True))


def test_numpy_integers_and_a_no_grad_caller_are_taken_as_they_would_be_in_a_loop():
    model, optimizer, loader = digits_setup()
    plain = find(model, optimizer, loader, nn.functional.cross_entropy, num_iter=ITERS, seed=1)
    with torch.no_grad():
        other = find(model, optimizer, loader, nn.functional.cross_entropy,
                     num_iter=np.int64(ITERS), seed=np.int64(1))
    assert other.suggestion == plain.suggestion and other.steps == plain.steps


def test_grad_scaler_skipped_steps_are_not_counted():
    model, optimizer, loader = digits_setup()
    scaler = torch.amp.GradScaler("cpu")
    counts = {"calls": 0, "steps": 0}
    optimizer.register_step_post_hook(lambda *_: counts.__setitem__("steps", counts["steps"] + 1))

    def step_fn(batch):
        counts["calls"] += 1
        loss = TASK.forward_loss(model, *batch)
        if counts["calls"] in (5, 6, 20):  # finite loss, infinite gradients: the scaler skips
            loss.register_hook(lambda grad: grad * math.inf)
        return loss

    result = find(model, optimizer, loader, step_fn=step_fn, num_iter=ITERS, end_lr=1e-2,
                  scaler=scaler, grad_clip=1.0, probe_batches=0)  # every call is a step's
    assert result.steps == counts["steps"] == sum(len(p.lrs) for p in result.passes)
    assert counts["calls"] == result.steps + 3
    assert np.isfinite(result.losses).all()
    assert scaler.get_scale() == 65536.0  # restored


def test_param_groups_are_swept_by_one_factor():
    model = TASK.make_model(0)
    first, second = list(model.children())[0], list(model.children())[2]
    optimizer = torch.optim.SGD([{"params": first.parameters(), "lr": 0.1},
                                 {"params": second.parameters(), "lr": 0.01}], momentum=0.9)
    seen = []

    def step_fn(batch):
        seen.append([g["lr"] for g in optimizer.param_groups])
        return TASK.forward_loss(model, *batch)

    result = find(model, optimizer, TASK.train_loader(0), step_fn=step_fn, num_iter=ITERS,
                  probe_batches=0)  # every call is a step's
    ratios = np.array([a / b for a, b in seen])
    np.testing.assert_allclose(ratios, 10.0, rtol=1e-12)
    np.testing.assert_allclose([a for a, _ in seen],
                               np.concatenate([p.lrs for p in result.passes]), rtol=1e-12)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.01]


def test_a_tensor_lr_comes_back_as_the_same_tensor_with_its_value():
    """A tensor LR (what fused and capturable optimizers keep on their device) is the user's
    object, perhaps driven by their own code: ``load_state_dict`` alone leaves a CPU copy."""
    model, _, loader = digits_setup()
    lr = torch.tensor(0.05)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    result = find(model, optimizer, loader, nn.functional.cross_entropy, num_iter=ITERS)
    assert len(result.passes) > 1  # the fine passes rewound the optimizer too
    assert optimizer.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(0.05)


def empty_generator():
    return iter(())


def vector_loss(model):
    return lambda batch: nn.functional.cross_entropy(model(batch[0]), batch[1], reduction="none")


BAD_INPUTS = [
    ({"model": "net"}, r"'model' parameter of find\(\) must be a torch.nn.Module"),
    ({"optimizer": None}, r"'optimizer' parameter of find\(\) must be a torch.optim.Optimizer"),
    ({"data": []},
     r"'data' parameter of find\(\) must be a non-empty iterable.*Got 'an empty list'"),
    ({"data": "generator"}, r"'data' parameter of find\(\) must be a non-empty iterable"),
    ({"start_lr": 1.0, "end_lr": 0.1},
     r"'end_lr' parameter of find\(\) must be a float > start_lr"),
    ({"start_lr": -1e-3}, r"'start_lr' parameter of find\(\) must be a float > 0. Got -0.001"),
    ({"end_lr": 0.0}, r"'end_lr' parameter of find\(\) must be a float > 0. Got 0.0"),
    ({"num_iter": 49}, r"'num_iter' parameter of find\(\) must be an int >= 50 \(the coarse "
                       r"sweep over 8.0 decades of LR and one fine pass\)"),
    ({"step_fn": "vector"}, r"loss .* must be a scalar tensor .*Got \(64,\)"),
    ({"step_fn": "no grad"}, r"loss .* must require grad"),
    ({"loss_fn": None}, r"find\(\) needs exactly one of 'loss_fn' .* and 'step_fn'"),
    ({"step_fn": "both"}, r"find\(\) needs exactly one of 'loss_fn'"),
    ({"accumulation_steps": 0}, r"'accumulation_steps' parameter of find\(\) must be an int >= 1"),
    ({"grad_clip": -1.0}, r"'grad_clip' parameter of find\(\) must be a float > 0"),
    ({"schedule": "cosine"}, r"'schedule' parameter of find\(\) must be an lrtune Schedule"),
    ({"probe_batches": -1}, r"'probe_batches' parameter of find\(\) must be an int >= 0"),
    ({"probe_batches": True}, r"'probe_batches' parameter of find\(\) must be an int >= 0"),
    ({"seed": 2**32}, r"'seed' parameter of find\(\) must be an int from 0 to 4294967295"),
    ({"data": "dicts"}, r"'data' parameter of find\(\) must be an iterable of \(inputs, targets"),
    ({"data": "two", "accumulation_steps": 3},
     r"'data' parameter of find\(\) must be an iterable of at least 3 batches .*Got '2 batches'"),
    ({"optimizer": "no lr"}, r"'optimizer' parameter of find\(\) must be an optimizer whose "
                             r"param groups each have a numeric 'lr'.*Got 'lr=\[None\]'"),
    ({"start_lr": 1e-320, "num_iter": 60}, r"'num_iter' parameter of find\(\) must be an int "
                                           r">= \d+ \(the coarse sweep over 321.0 decades"),
    ({"inference_mode": True}, r"find\(\) trains the model, which torch.inference_mode\(\) "
                               r"forbids"),
]


@pytest.mark.parametrize(("change", "message"), BAD_INPUTS,
                         ids=[re.sub(r"\W+", "-", str(c))[:40] for c, _ in BAD_INPUTS])
def test_bad_input_is_refused_and_leaves_everything_untouched(change, message):
    model, optimizer, loader = digits_setup()
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(TASK.data.x_train[:8]), TASK.data.y_train[:8]).backward()
    optimizer.step()  # some optimizer state to protect
    kwargs = {"model": model, "optimizer": optimizer, "data": loader,
              "loss_fn": nn.functional.cross_entropy, "num_iter": ITERS}
    kwargs.update(change)
    special = {"generator": empty_generator(), "dicts": DictBatches(loader),
               "two": itertools.islice(iter(TASK.train_loader(1)), 2)}
    if isinstance(kwargs["data"], str):
        kwargs["data"] = special[kwargs["data"]]
    if kwargs["optimizer"] == "no lr":  # Adafactor's relative step keeps lr=None
        kwargs["optimizer"] = torch.optim.SGD(model.parameters(), lr=0.1)
        kwargs["optimizer"].param_groups[0]["lr"] = None
    inference = kwargs.pop("inference_mode", False)
    if isinstance(kwargs.get("step_fn"), str):
        kind = kwargs["step_fn"]
        kwargs["step_fn"] = {
            "vector": vector_loss(model),
            "no grad": lambda batch: torch.tensor(1.0),
            "both": TASK.step_fn(model),
        }[kind]
        if kind != "both":
            kwargs["loss_fn"] = None
    before = [t.clone() for t in tensors_of(model, optimizer)]
    generator_state = loader.generator.get_state()
    rng_state = torch.get_rng_state()
    with pytest.raises(InvalidParameterError, match=message) as info, \
            torch.inference_mode(inference):
        find(**kwargs)
    assert isinstance(info.value, ValueError)
    assert all(torch.equal(a, b)
               for a, b in zip(tensors_of(model, optimizer), before, strict=False))
    assert torch.equal(loader.generator.get_state(), generator_state)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_result_is_plain_data_and_plots(tmp_path):
    model, optimizer, loader = digits_setup()
    result = find(model, optimizer, loader, step_fn=TASK.step_fn(model), num_iter=ITERS,
                  schedule=Cosine(600))
    assert isinstance(result, FinderResult) and isinstance(result.triple, LRTriple)
    assert result.schedule_factor == pytest.approx(math.sqrt(2), rel=1e-2)
    history = json.loads(result.to_json(tmp_path / "history.json"))
    assert json.loads((tmp_path / "history.json").read_text()) == history
    assert history["suggestion"] == result.suggestion and history["knee_lr"] == result.knee_lr
    assert history["verdict"] == result.verdict.value and history["band"] == list(result.band)
    assert len(history["lr"]) == len(history["loss"]) == len(result.lrs)
    assert sum(len(p["loss"]) for p in history["passes"]) == result.steps
    assert len(history["smoothed"]) == result.usable
    result.plot(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_schedule_factor_rewards_decay_by_the_root_of_its_mean():
    assert schedule_factor(None) == schedule_factor(Constant(100)) == 1.0
    assert schedule_factor(Cosine(1000)) == pytest.approx(1 / math.sqrt(0.5), rel=1e-2)
    assert schedule_factor(TASK.schedule(600)) == pytest.approx(1 / math.sqrt(0.5275), rel=1e-2)


def test_verdicts_for_a_flat_curve_and_an_immediate_blow_up():
    model, optimizer, loader = digits_setup()
    flat = find(model, optimizer, loader, step_fn=TASK.step_fn(model), num_iter=ITERS,
                start_lr=1e-9, end_lr=1e-6)
    assert flat.verdict is Verdict.NO_CLEAR_DESCENT and "lrtune.tune" in flat.hint
    blown = find(model, optimizer, loader, step_fn=TASK.step_fn(model), num_iter=ITERS,
                 start_lr=10.0, end_lr=1e4)
    assert blown.verdict is Verdict.DIVERGED_IMMEDIATELY and blown.steps < 10
    narrow = find(model, optimizer, loader, step_fn=TASK.step_fn(model), num_iter=ITERS,
                  start_lr=1e-4, end_lr=0.05)  # the loss still falls at the top of the range
    assert narrow.verdict is Verdict.RANGE_TOO_NARROW and "raise end_lr" in narrow.hint


def test_suggestion_is_steady_across_seeds_and_iterations():
    suggestions = []
    for seed, iters in ((0, 120), (1, 120), (2, 90)):
        model, optimizer, loader = digits_setup(seed)
        suggestions.append(find(model, optimizer, loader, step_fn=TASK.step_fn(model),
                                num_iter=iters, schedule=TASK.schedule(600), seed=seed).suggestion)
    assert max(suggestions) / min(suggestions) < 2.0


def test_cli_find_prints_the_suggestion_and_writes_the_files(tmp_path):
    from typer.testing import CliRunner

    from lrtune.cli import app

    figure, history = tmp_path / "curve.png", tmp_path / "history.json"
    outcome = CliRunner().invoke(app, ["find", "--task", "digits", "--iters", "200",
                                       "--out", str(figure), "--json", str(history)])
    assert outcome.exit_code == 0, outcome.output
    assert "Suggested lr:" in outcome.output and "verdict: clear" in outcome.output
    assert "safe" in outcome.output and "aggressive" in outcome.output
    saved = json.loads(history.read_text())
    assert f"knee at lr {saved['knee_lr']:.3g}" in outcome.output  # what the suggestion is read at
    assert figure.stat().st_size > 10_000
    assert saved["verdict"] == "clear" and saved["probe_batches"] == 8


def test_cli_find_can_read_the_trained_batches_instead_of_a_probe(tmp_path):
    from typer.testing import CliRunner

    from lrtune.cli import app

    history = tmp_path / "history.json"
    outcome = CliRunner().invoke(app, ["find", "--task", "digits", "--iters", "60",
                                       "--probe-batches", "0", "--json", str(history)])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(history.read_text())["probe_batches"] == 0


def test_cli_find_reports_bad_input_in_one_line(monkeypatch, capsys):
    from lrtune.cli import main

    monkeypatch.setattr("sys.argv", ["lrtune", "find", "--task", "digits", "--start-lr", "-1"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    assert "The 'start_lr' parameter of find() must be a float > 0" in capsys.readouterr().err



def test_a_larger_budget_narrows_the_band_but_does_not_move_the_suggestion():
    readings = {}
    for iters in (50, 100, 400):
        model, optimizer, loader = digits_setup()
        readings[iters] = find(model, optimizer, loader, step_fn=TASK.step_fn(model),
                               num_iter=iters, schedule=TASK.schedule(TASK.steps))
    fine = [len(r.passes) - 1 for r in readings.values()]  # the fine passes each budget bought
    assert fine[0] == 1 and fine[0] < fine[1] < fine[2]
    assert readings[50].verdict is Verdict.WIDE_BAND  # one pass: no spread to trust yet
    assert readings[400].verdict is Verdict.CLEAR
    width = {n: r.band[1] / r.band[0] for n, r in readings.items()}
    assert width[400] < width[100] and width[400] <= 3
    assert 1 / 1.5 < readings[100].suggestion / readings[400].suggestion < 1.5
    low, high = readings[400].band
    assert low <= readings[400].suggestion <= high


def test_a_second_minimum_after_the_loss_climbed_back_above_its_start_is_not_read():
    model, optimizer, loader = digits_setup()
    sweep = find(model, optimizer, loader, step_fn=TASK.step_fn(model), start_lr=1e-5,
                 end_lr=100.0, num_iter=60).passes[1]
    n = divergence_onset(sweep.losses, probe=True)  # the real curve up to where it diverged
    alone = analyse(sweep.lrs[:n], [sweep.losses[:n]])
    assert alone.verdict in (Verdict.CLEAR, Verdict.WIDE_BAND)
    # past it, the loss climbs back above its start, but less far than the divergence rule's
    # limit (start + best), then settles lower than ever, as a BatchNorm net under Adam can
    best = float(sweep.losses[:n].min())
    losses = np.concatenate([sweep.losses[:n], np.full(12, sweep.losses[0] + 0.75 * best),
                             np.full(30, 0.1 * best)])
    lrs = sweep.lrs[0] * (sweep.lrs[1] / sweep.lrs[0]) ** np.arange(len(losses))  # the sweep's
    assert divergence_onset(losses) is None
    reading = analyse(lrs, [losses])
    assert n < reading.usable <= n + 12 and reading.diverged_lr is not None
    assert reading.suggestion < lrs[n]
    assert 1 / 1.5 < reading.suggestion / alone.suggestion < 1.5


def test_a_band_from_one_or_two_passes_spans_at_least_the_few_pass_spread():
    model, optimizer, loader = digits_setup()
    for num_iter, passes in ((ITERS, 1), (75, 2)):  # passes of 31 steps after a coarse 9
        result = find(model, optimizer, loader, nn.functional.cross_entropy, num_iter=num_iter,
                      end_lr=1e-2)
        assert len(result.passes) - 1 == passes
        low, high = result.band
        assert low <= result.suggestion / FEW_PASS_SPREAD * (1 + 1e-9)
        assert high >= result.suggestion * FEW_PASS_SPREAD * (1 - 1e-9)
        assert result.verdict is not Verdict.CLEAR


def test_a_probe_loss_above_the_limit_once_is_a_blow_up():
    """Batch losses need three in a row above the limit (one noisy batch is not a blow-up); a
    probe has no batch noise, and a network that spiked and came back to chance level is gone."""
    spike = np.array([2.3] * 5 + [2.0, 1.6, 1.2, 1.0, 0.9, 9.0, 2.3, 2.2, 2.4, 2.3])
    assert divergence_onset(spike) is None
    assert divergence_onset(spike, probe=True) == 10
    sustained_rise = np.concatenate([spike[:10], [9.0, 9.5, 12.0]])
    assert divergence_onset(sustained_rise) == divergence_onset(sustained_rise, probe=True) == 10
