"""Acceptance tests for lrtune.schedules: torch equivalence, warm-up, compression, resume, errors.

One shared suite parametrized over every registered schedule (``EXAMPLES`` must name each one,
so a new schedule gets every test for free) and over warm-up wrappers of them.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import io
import json
import math
import pickle
import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as tls

from lrtune.exceptions import InvalidParameterError
from lrtune.schedules import (
    SCHEDULES,
    Constant,
    Cosine,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    OneCycle,
    Polynomial,
    Schedule,
    ScheduledLR,
    Step,
    Warmup,
    WarmupStableDecay,
    make_schedule,
    with_warmup,
)

T = 120
W = 12
LENGTHS = (30, 60, 240, 360)  # T/4, T/2, 2T, 3T: shorter and longer runs
# Step fields below are multiples of 12, and the inverse-sqrt timescale is 40 (it also rescales
# exactly through a warm-up's T - W), so every rescaling to LENGTHS is exact and round-trips;
# awkward lengths are tested separately.
EXAMPLES = {
    "constant": {},
    "step": {"step_size": 36, "gamma": 0.5},
    "multistep": {"milestones": (36, 72, 108), "gamma": 0.5},
    "exponential": {"gamma": 0.98},
    "cosine": {"min_factor": 0.1},
    "linear": {"start_factor": 1.0, "end_factor": 0.1},
    "polynomial": {"power": 2.0},
    "inverse-sqrt": {"timescale": 40},
    "one-cycle": {"pct_start": 0.25},
    "wsd": {"decay_fraction": 0.25, "decay_shape": "sqrt", "min_factor": 0.05},
}
PLAIN = {name: make_schedule(name, T, **params) for name, params in EXAMPLES.items()}
ZOO = {
    **PLAIN,
    **{f"warmup-{n}": Warmup(s, W, 0.1) for n, s in PLAIN.items()},
    "warmup-cos-wsd": Warmup(PLAIN["wsd"], W, 0.0, "cosine"),
    "warmup-of-warmup": Warmup(Warmup(PLAIN["cosine"], 24, 0.5), W),
}
plain = pytest.mark.parametrize("schedule", PLAIN.values(), ids=PLAIN.keys())
every = pytest.mark.parametrize("schedule", ZOO.values(), ids=ZOO.keys())


def test_examples_cover_every_registered_schedule() -> None:
    assert set(EXAMPLES) == set(SCHEDULES)
    assert {type(s) for s in PLAIN.values()} == set(SCHEDULES.values())


# --- 1. torch equivalence ----------------------------------------------------------------------


def _lr_trace(make_scheduler, base_lr: float, steps: int, groups: int = 1) -> list[list[float]]:
    """Train a tiny real model for ``steps`` steps; the lrs of every group used at each step."""
    torch.manual_seed(0)
    model = nn.Linear(3, groups)
    params = [{"params": [model.weight], "lr": base_lr}]
    if groups > 1:
        params.append({"params": [model.bias], "lr": base_lr / 10})
    else:
        params[0]["params"].append(model.bias)
    optimizer = torch.optim.SGD(params, lr=base_lr)
    scheduler = make_scheduler(optimizer)
    x, y = torch.randn(8, 3), torch.randn(8, groups)
    trace = []
    for _ in range(steps):
        trace.append([g["lr"] for g in optimizer.param_groups])
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        scheduler.step()
    return trace


# torch's CosineAnnealingLR, LinearLR and PolynomialLR update the lr recursively (lr *= ratio),
# which accumulates rounding over the run; closed forms (and ours) do not, hence the looser rtol.
RECURSIVE = 1e-6
TORCH_CASES = {
    "step": (Step(137, 30, 0.5), lambda o: tls.StepLR(o, 30, 0.5), 1e-9),
    "multistep": (
        MultiStep(137, (20, 50, 51, 137), 0.3),
        lambda o: tls.MultiStepLR(o, [20, 50, 51, 137], 0.3),
        1e-9,
    ),
    "exponential": (Exponential(137, 0.97), lambda o: tls.ExponentialLR(o, 0.97), 1e-9),
    "cosine": (Cosine(137), lambda o: tls.CosineAnnealingLR(o, 137), RECURSIVE),
    # torch's eta_min is one absolute lr for every group, ours is relative to each group's lr:
    # they agree on a single group (with several, ours keeps the groups' ratios, torch's doesn't).
    "cosine-min": (
        Cosine(137, 0.05),
        lambda o: tls.CosineAnnealingLR(o, 137, eta_min=0.1 * 0.05),
        RECURSIVE,
        1,
    ),
    "linear": (Linear(137, 0.2, 0.9), lambda o: tls.LinearLR(o, 0.2, 0.9, 137), RECURSIVE),
    "linear-down": (Linear(137, 1.0, 0.0), lambda o: tls.LinearLR(o, 1.0, 0.0, 137), RECURSIVE),
    "polynomial": (Polynomial(137, 2.0), lambda o: tls.PolynomialLR(o, 137, 2.0), RECURSIVE),
    "polynomial-sqrt": (Polynomial(137, 0.5), lambda o: tls.PolynomialLR(o, 137, 0.5), RECURSIVE),
}
ONE_CYCLE_CASES = {
    "default": {},
    "linear": {"pct_start": 0.25, "anneal_strategy": "linear"},
    "three-phase": {"pct_start": 0.3, "three_phase": True, "div_factor": 10.0},
    "three-phase-linear": {
        "three_phase": True,
        "anneal_strategy": "linear",
        "final_div_factor": 50.0,
    },
    "short-peak": {"pct_start": 0.05, "div_factor": 5.0},
}


def _assert_traces_close(ours, theirs, rtol: float) -> None:
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for x, y in zip(a, b, strict=False):
            assert math.isclose(x, y, rel_tol=rtol, abs_tol=1e-15), (step, x, y)


@pytest.mark.parametrize("case", TORCH_CASES.values(), ids=TORCH_CASES.keys())
def test_matches_torch_scheduler_at_every_step(case) -> None:
    schedule, make_torch, rtol, *groups = case
    groups = groups[0] if groups else 2
    # T + 1 values: steps 0..T, so the value at the end of the run is compared too.
    ours = _lr_trace(lambda o: ScheduledLR(o, schedule), 0.1, schedule.total_steps + 1, groups)
    theirs = _lr_trace(make_torch, 0.1, schedule.total_steps + 1, groups)
    _assert_traces_close(ours, theirs, rtol)


@pytest.mark.parametrize("kwargs", ONE_CYCLE_CASES.values(), ids=ONE_CYCLE_CASES.keys())
@pytest.mark.parametrize("total", [100, 137])
def test_one_cycle_matches_torch_at_every_step(kwargs: dict, total: int) -> None:
    ours_kwargs = {("anneal" if k == "anneal_strategy" else k): v for k, v in kwargs.items()}
    schedule = OneCycle(total, **ours_kwargs)
    make_torch = lambda o: tls.OneCycleLR(  # noqa: E731
        o, max_lr=0.4, total_steps=total, cycle_momentum=False, **kwargs
    )
    ours = _lr_trace(lambda o: ScheduledLR(o, schedule), 0.4, total)
    theirs = _lr_trace(make_torch, 0.4, total)
    _assert_traces_close(ours, theirs, 1e-9)  # OneCycleLR is closed-form too
    assert ours[-1][0] == pytest.approx(0.4 / schedule.div_factor / schedule.final_div_factor)


def test_warmup_cosine_matches_torch_sequential_lr() -> None:
    total, warm = 137, 15
    schedule = Warmup(Cosine(total), warm, start_factor=0.01)

    def make_torch(o):
        ramp = tls.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=warm)
        cosine = tls.CosineAnnealingLR(o, T_max=total - warm)
        return tls.SequentialLR(o, [ramp, cosine], milestones=[warm])

    ours = _lr_trace(lambda o: ScheduledLR(o, schedule), 0.1, total + 1, groups=2)
    theirs = _lr_trace(make_torch, 0.1, total + 1, groups=2)
    _assert_traces_close(ours, theirs, RECURSIVE)


def test_scheduled_lr_is_a_torch_lr_scheduler_and_keeps_group_ratios() -> None:
    trace = _lr_trace(lambda o: ScheduledLR(o, ZOO["warmup-one-cycle"]), 0.3, T, groups=2)
    assert all(a == pytest.approx(10 * b, rel=1e-12) for a, b in trace)
    expected = ZOO["warmup-one-cycle"].values(0.3)
    assert [a for a, _ in trace] == pytest.approx(expected, rel=1e-12)
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    assert isinstance(ScheduledLR(optimizer, Constant(5)), tls.LRScheduler)


# --- shared behaviour --------------------------------------------------------------------------


@every
def test_values_lr_at_and_factor_agree(schedule: Schedule) -> None:
    values = schedule.values(base_lr=0.5)
    assert values.shape == (T,) and values.dtype == np.float64
    assert values.tolist() == [schedule.lr_at(t, 0.5) for t in range(T)]
    assert values.tolist() == [0.5 * schedule.factor(t) for t in range(T)]
    assert all(0.0 <= schedule.factor(t) <= 1.0 for t in range(T + 1))


@every
def test_factor_holds_its_end_value_after_the_end(schedule: Schedule) -> None:
    end = schedule.factor(T)
    assert [schedule.factor(T + k) for k in (1, 7, 10**9)] == [end] * 3
    assert schedule.factor(np.int64(T + 3)) == end  # numpy ints are steps too


@every
def test_frozen_hashable_and_picklable(schedule: Schedule) -> None:
    clone = pickle.loads(pickle.dumps(schedule))
    assert clone == schedule and hash(clone) == hash(schedule)
    assert clone.values().tolist() == schedule.values().tolist()
    assert len({schedule, copy.deepcopy(schedule)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.total_steps = 5  # type: ignore[misc]


def test_end_values() -> None:
    assert PLAIN["cosine"].factor(T) == pytest.approx(0.1)
    assert PLAIN["linear"].factor(T) == pytest.approx(0.1)
    assert PLAIN["polynomial"].factor(T) == 0.0
    assert PLAIN["multistep"].factor(T) == 0.5**3
    assert PLAIN["exponential"].factor(T) == pytest.approx(0.98**T)
    assert PLAIN["inverse-sqrt"].factor(T) == pytest.approx(1 / math.sqrt(3))
    assert PLAIN["wsd"].factor(T) == pytest.approx(0.05)
    wsd = PLAIN["wsd"]
    assert wsd.factor(90) == 1.0 and wsd.factor(91) == pytest.approx(1 - 0.95 * math.sqrt(1 / 30))


# --- 2. warm-up composes with every schedule ----------------------------------------------------


@plain
@pytest.mark.parametrize("shape", ["linear", "cosine"])
def test_warmup_composes(schedule: Schedule, shape: str) -> None:
    warm = Warmup(schedule, W, start_factor=0.2, shape=shape)
    rest = schedule.compressed(T - W)
    first = schedule.factor(0)
    assert warm.total_steps == T and rest.factor(0) == first
    assert warm.factor(0) == pytest.approx(0.2 * first, rel=1e-12)
    ramp = [warm.factor(t) for t in range(W + 1)]
    # strictly increasing (first > 0)
    assert all(a < b for a, b in zip(ramp, ramp[1:], strict=False))
    if shape == "linear":
        steps = np.diff(ramp)
        assert steps == pytest.approx(np.full(W, 0.8 * first / W), rel=1e-9)
    assert warm.factor(W) == first
    assert warm.factor(T - 1) == rest.factor(T - 1 - W)
    assert [warm.factor(t) for t in range(W, T + 1)] == [rest.factor(t) for t in range(T - W + 1)]
    if not isinstance(schedule, InverseSqrt):  # its timescale is rescaled to T - W (rounded)
        assert warm.factor(T) == pytest.approx(schedule.factor(T), rel=1e-9)


def test_warmup_helpers_and_degenerate_cases() -> None:
    assert with_warmup(Cosine(T), W) == Warmup(Cosine(T), W, 0.0, "linear")
    assert Warmup(Cosine(T), 0).values().tolist() == Cosine(T).values().tolist()
    assert Warmup(Constant(2), 1, 0.5).values().tolist() == [0.5, 1.0]
    # make_schedule: int steps, or a fraction rounded to the nearest step (0.29 * 100 = 28.99..).
    assert make_schedule("cosine", 100, warmup=0.29) == Warmup(Cosine(100), 29)
    assert make_schedule("cosine", 100, warmup=7, warmup_shape="cosine", warmup_start=0.1) == (
        Warmup(Cosine(100), 7, 0.1, "cosine")
    )
    assert make_schedule("cosine", 100, warmup=0.0) == Cosine(100)
    assert make_schedule("cosine", 10, warmup=0.99) == Warmup(Cosine(10), 9)


# --- 3. compression ---------------------------------------------------------------------------


@every
@pytest.mark.parametrize("new", LENGTHS)
def test_compressed_keeps_the_shape(schedule: Schedule, new: int) -> None:
    short = schedule.compressed(new)
    assert type(short) is type(schedule) and short.total_steps == new
    # The same fraction of the run gives the same factor, up to one step of rounding:
    # the value lies within the range the original takes around the matching step.
    reach = math.ceil(T / new) + 1
    for t in range(new + 1):
        u = t * T / new
        steps = range(max(0, math.floor(u) - reach), math.ceil(u) + reach + 1)
        around = [schedule.factor(s) for s in steps]
        assert min(around) - 1e-12 <= short.factor(t) <= max(around) + 1e-12, (t, u)
    assert short.factor(new) == pytest.approx(schedule.factor(T), rel=1e-9)


@every
@pytest.mark.parametrize("new", LENGTHS)
def test_compressed_round_trips(schedule: Schedule, new: int) -> None:
    back = schedule.compressed(new).compressed(T)
    # Equal, except Exponential's gamma ** (T/new) ** (new/T), equal up to float rounding.
    assert _same(back.describe(), schedule.describe())
    assert schedule.compressed(T) is schedule


@every
def test_a_description_rebuilds_the_same_schedule_through_json(schedule: Schedule) -> None:
    stored = json.loads(json.dumps(schedule.describe()))  # as a study's storage keeps it
    rebuilt = Schedule.from_description(stored)
    assert rebuilt == schedule and type(rebuilt) is type(schedule)
    assert [rebuilt.factor(t) for t in range(T + 1)] == [schedule.factor(t) for t in range(T + 1)]


def test_a_description_of_an_unknown_schedule_class_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match=r"a 'type' among \['Constant', "):
        Schedule.from_description({"type": "Cyclic", "total_steps": 10})


DESCRIPTION_ERRORS = {
    "missing-key": (
        {"type": "Cosine"},
        "a description of a Cosine, with the keys 'type', 'total_steps' and optionally "
        "'min_factor' (missing: 'total_steps')",
    ),
    "misspelt-key": (
        {"type": "Cosine", "total_steps": 100, "min_factr": 0.1},
        "a description of a Cosine, with the keys 'type', 'total_steps' and optionally "
        "'min_factor' (unknown: 'min_factr')",
    ),
    "nested-misspelt-key": (
        {"type": "Warmup", "schedule": {"type": "Constant", "total_steps": 9, "gama": 1},
         "warmup_steps": 2},
        "a description of a Constant, with the keys 'type', 'total_steps' (unknown: 'gama')",
    ),
    "warmup-length-disagrees": (
        {**Warmup(Cosine(100), 10).describe(), "total_steps": 120},
        "a description of a Warmup whose 'total_steps' is 100, as its other keys give",
    ),
}


@pytest.mark.parametrize("case", DESCRIPTION_ERRORS.values(), ids=DESCRIPTION_ERRORS.keys())
def test_a_description_with_wrong_keys_is_refused(case) -> None:
    # Before: a raw TypeError, or a key silently dropped (another schedule rebuilt).
    data, requirement = case
    message = re.escape(
        f"The 'data' parameter of Schedule.from_description() must be {requirement}. Got "
    )
    with pytest.raises(InvalidParameterError, match=f"^{message}"):
        Schedule.from_description(data)


def _plain_leaves(value) -> bool:
    if isinstance(value, dict):
        return all(type(k) is str and _plain_leaves(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_leaves(v) for v in value)
    return type(value) in (str, int, float, bool)


def test_numpy_choices_are_stored_as_plain_str_and_checkpoints_load_weights_only() -> None:
    shape, decay = np.array(["linear", "cosine"])[1], np.str_("sqrt")  # e.g. drawn with numpy
    schedule = make_schedule("wsd", 100, warmup=10, warmup_shape=shape, decay_shape=decay)
    assert type(schedule.shape) is str and type(schedule.schedule.decay_shape) is str
    assert type(OneCycle(100, anneal=np.str_("linear")).anneal) is str

    class Shape(str, enum.Enum):  # str() of a member is 'Shape.COSINE', its value 'cosine'
        COSINE = "cosine"

    assert Warmup(Cosine(100), 5, shape=Shape.COSINE).describe()["shape"] == "cosine"
    assert schedule == make_schedule("wsd", 100, warmup=10, warmup_shape="cosine",
                                     decay_shape="sqrt")
    assert _plain_leaves(schedule.describe())
    model, optimizer, scheduler = _setup(schedule)
    _run(optimizer, scheduler, model, 20)
    buffer = io.BytesIO()
    torch.save({"opt": optimizer.state_dict(), "sched": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)  # refused numpy scalars before
    _, optimizer2, scheduler2 = _setup(schedule)
    optimizer2.load_state_dict(checkpoint["opt"])
    scheduler2.load_state_dict(checkpoint["sched"])
    assert scheduler2.last_step == 20 and scheduler2.get_last_lr() == scheduler.get_last_lr()


@every
def test_descriptions_hold_plain_python_types_only(schedule: Schedule) -> None:
    assert _plain_leaves(schedule.describe())


def test_a_numpy_scalar_field_of_a_users_schedule_is_described_as_plain_data() -> None:
    @dataclasses.dataclass(frozen=True)
    class Hold(Schedule):  # a user's own schedule that keeps what it is given
        level: float = 1.0

        def _factor(self, t: int) -> float:
            return float(self.level)

    schedule = Hold(10, np.float64(0.5))
    assert schedule.describe() == {"type": "Hold", "total_steps": 10, "level": 0.5}
    assert _plain_leaves(schedule.describe())
    assert Schedule.from_description(schedule.describe()) == schedule


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a == pytest.approx(b, rel=1e-12)
    return a == b


@plain
@pytest.mark.parametrize("new", [1, 3, 47, 1001])
def test_compressed_to_awkward_lengths_stays_valid(schedule: Schedule, new: int) -> None:
    if isinstance(schedule, MultiStep) and new < 3:
        with pytest.raises(InvalidParameterError, match="one step per milestone"):
            schedule.compressed(new)
        return
    short = schedule.compressed(new)
    assert all(0.0 <= short.factor(t) <= 1.0 for t in range(new + 1))
    if new > 3:
        assert Warmup(schedule, 1).compressed(new).total_steps == new


def test_compressed_rescales_step_fields() -> None:
    assert Step(100, 30).compressed(50) == Step(50, 15)
    assert Step(100, 30).compressed(10) == Step(10, 3)
    assert Step(100, 1).compressed(10) == Step(10, 1)  # step counts stay >= 1
    assert MultiStep(100, (30, 60, 100)).compressed(200) == MultiStep(200, (60, 120, 200))
    assert MultiStep(100, (1, 2, 3)).compressed(4) == MultiStep(4, (1, 2, 3))  # kept apart
    assert MultiStep(100, (98, 99, 100)).compressed(3) == MultiStep(3, (1, 2, 3))
    assert InverseSqrt(100, 10).compressed(25) == InverseSqrt(25, 3)  # 2.5 rounds up
    assert Warmup(Cosine(100), 10).compressed(50) == Warmup(Cosine(50), 5)
    assert Warmup(Cosine(100), 99).compressed(10) == Warmup(Cosine(10), 9)  # stays < total
    assert OneCycle(100, 0.4).compressed(7) == OneCycle(7, 0.4)  # fractions are kept


@pytest.mark.parametrize("new", [7, 47, 120, 1000, 12345])
def test_compressed_exponential_keeps_total_decay(new: int) -> None:
    schedule = Exponential(120, 0.95)
    short = schedule.compressed(new)
    assert short.gamma == pytest.approx(0.95 ** (120 / new), rel=1e-12)
    assert short.factor(new) == pytest.approx(0.95**120, rel=1e-9)


@pytest.mark.parametrize(("total", "gamma"), [(2000, 0.5), (3000, 0.7), (120, 1e-300)])
def test_compressed_exponential_with_an_underflowing_rate_stays_valid(
    total: int, gamma: float
) -> None:
    # gamma ** (total / 1) underflows to 0.0, which Exponential refused as its own rate before.
    short = Exponential(total, gamma).compressed(1)
    assert 0.0 < short.gamma < 1e-300
    assert short.factor(0) == 1.0 and short.factor(1) < 1e-300
    assert Schedule.from_description(short.describe()) == short
    warm = with_warmup(Exponential(total, gamma), 10).compressed(2)
    assert warm.total_steps == 2 and 0.0 <= warm.factor(2) < 1e-300


# --- 4. state_dict resume --------------------------------------------------------------------


def _run(optimizer, scheduler, model, steps: int) -> list[tuple[float, ...]]:
    x, y = torch.randn(8, 3, generator=torch.Generator().manual_seed(1)), torch.ones(8, 2)
    lrs = []
    for _ in range(steps):
        lrs.append(tuple(g["lr"] for g in optimizer.param_groups))
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        scheduler.step()
    return lrs


def _setup(schedule: Schedule):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    groups = [{"params": [model.weight], "lr": 0.3}, {"params": [model.bias], "lr": 0.03}]
    optimizer = torch.optim.AdamW(groups)
    return model, optimizer, ScheduledLR(optimizer, schedule)


# The optimizer's state is always loaded too: it restores the lrs, as with torch's schedulers
# (see test_load_state_dict_leaves_the_optimizer_lrs_alone_like_torch).
RESUME = [pytest.param(s, "optimizer-first", id=n) for n, s in PLAIN.items()] + [
    pytest.param(ZOO[n], order, id=f"{n}-{order}")
    for n in ("warmup-one-cycle", "warmup-of-warmup")
    for order in ("optimizer-first", "scheduler-first")
]


@pytest.mark.parametrize(("schedule", "order"), RESUME)
def test_resume_from_state_dict_continues_the_same_curve(schedule: Schedule, order: str) -> None:
    model, optimizer, scheduler = _setup(schedule)
    expected = _run(optimizer, scheduler, model, T)
    assert all(a == pytest.approx(10 * b, rel=1e-12) for a, b in expected)  # ratio kept

    model, optimizer, scheduler = _setup(schedule)
    first = _run(optimizer, scheduler, model, 60)
    buffer = io.BytesIO()
    torch.save({"opt": optimizer.state_dict(), "sched": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)  # plain data only

    model2, optimizer2, scheduler2 = _setup(schedule)
    model2.load_state_dict(model.state_dict())
    if order == "optimizer-first":
        optimizer2.load_state_dict(checkpoint["opt"])
    scheduler2.load_state_dict(checkpoint["sched"])
    if order == "scheduler-first":
        optimizer2.load_state_dict(checkpoint["opt"])
    assert scheduler2.last_step == 60 and scheduler2.get_last_lr() == list(expected[60])
    rest = _run(optimizer2, scheduler2, model2, T - 60)
    assert first + rest == expected  # exact equality


def _through_torch_save(checkpoint: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("tensor_lr", [False, True], ids=["float-lr", "tensor-lr"])
@pytest.mark.parametrize("make", [lambda o: ScheduledLR(o, Cosine(T)),
                                  lambda o: tls.CosineAnnealingLR(o, T)], ids=["ours", "torch"])
def test_load_state_dict_leaves_the_optimizer_lrs_alone_like_torch(make, tensor_lr: bool) -> None:
    # Inside SequentialLR/ChainedScheduler the lrs may be another scheduler's: the optimizer's
    # own state restores them. Before, ours wrote its own.
    def optimizer():
        lr = torch.tensor(0.5, dtype=torch.float64) if tensor_lr else 0.5  # one per optimizer
        return torch.optim.SGD([nn.Parameter(torch.ones(2))], lr=lr)

    live = optimizer()
    scheduler = make(live)
    for _ in range(30):
        live.step()
        scheduler.step()
    saved = _through_torch_save(scheduler.state_dict())
    fresh = optimizer()
    scheduler2 = make(fresh)
    before = float(fresh.param_groups[0]["lr"])  # the lr of step 0, not of step 30
    scheduler2.load_state_dict(saved)
    assert float(fresh.param_groups[0]["lr"]) == before != float(live.param_groups[0]["lr"])
    assert scheduler2.last_epoch == 30
    assert scheduler2.get_last_lr() == scheduler.get_last_lr()
    assert type(scheduler2.get_last_lr()[0]) is type(scheduler.get_last_lr()[0])


def _composite(kind: str):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    return model, optimizer, COMPOSITES[kind](optimizer)


def _ours_later(o):  # ours waits for its turn: SequentialLR keeps its last_epoch at -1 until then
    return tls.SequentialLR(o, [tls.LinearLR(o, 0.1, 1.0, 4), ScheduledLR(o, Cosine(16, 0.1))], [4])


def _ours_first(o):  # ours is done after the milestone: ExponentialLR sets the lrs
    return tls.SequentialLR(
        o, [ScheduledLR(o, Linear(4, 0.1, 1.0)), tls.ExponentialLR(o, 0.8)], [4]
    )


COMPOSITES = {
    "sequential-ours-later": _ours_later,
    "sequential-ours-first": _ours_first,
    # ours sets base * factor, then ExponentialLR scales it: the lrs are not ours alone
    "chained": lambda o: tls.ChainedScheduler(
        [ScheduledLR(o, Cosine(12)), tls.ExponentialLR(o, 0.9)]
    ),
    # torch's schedulers in ours' place: the behaviour ours must match
    "torch-later": lambda o: tls.SequentialLR(
        o, [tls.LinearLR(o, 0.1, 1.0, 4), tls.CosineAnnealingLR(o, 16, eta_min=0.05)], [4]
    ),
    "torch-first": lambda o: tls.SequentialLR(
        o, [tls.LinearLR(o, 0.1, 1.0, 4), tls.ExponentialLR(o, 0.8)], [4]
    ),
}


@pytest.mark.parametrize("at", [1, 3, 4, 7])  # before, just before, at and after the milestone
@pytest.mark.parametrize("kind", COMPOSITES)
def test_resume_inside_torch_sequential_and_chained_schedulers_is_exact(kind: str, at: int) -> None:
    model, optimizer, scheduler = _composite(kind)
    expected = _run(optimizer, scheduler, model, 14)

    model, optimizer, scheduler = _composite(kind)
    first = _run(optimizer, scheduler, model, at)
    state = {"model": model.state_dict(), "opt": optimizer.state_dict()}
    checkpoint = _through_torch_save({**state, "sched": scheduler.state_dict()})
    model2, optimizer2, scheduler2 = _composite(kind)
    model2.load_state_dict(checkpoint["model"])
    optimizer2.load_state_dict(checkpoint["opt"])
    scheduler2.load_state_dict(checkpoint["sched"])  # before: raised (step -1) or set its own lr
    for live, resumed in zip(scheduler._schedulers, scheduler2._schedulers, strict=True):
        assert resumed.last_epoch == live.last_epoch
        assert resumed.get_last_lr() == live.get_last_lr()
    rest = _run(optimizer2, scheduler2, model2, 14 - at)
    assert first + rest == expected  # exact equality


@pytest.mark.parametrize(("ours", "theirs"), [("sequential-ours-later", "torch-later"),
                                              ("sequential-ours-first", "torch-first")])
def test_inside_sequential_lr_ours_follows_the_curve_of_torchs_twin(ours: str, theirs: str) -> None:
    a = _run(*_reorder(_composite(ours)), 14)
    b = _run(*_reorder(_composite(theirs)), 14)
    _assert_traces_close(a, b, RECURSIVE)


def _reorder(built):
    model, optimizer, scheduler = built
    return optimizer, scheduler, model


def test_state_dict_is_plain_and_describes_the_schedule() -> None:
    _, optimizer, scheduler = _setup(ZOO["warmup-multistep"])
    state = scheduler.state_dict()
    assert state["base_lrs"] == [0.3, 0.03] and state["last_epoch"] == 0
    assert state["schedule"]["type"] == "Warmup"
    assert state["schedule"]["schedule"] == {
        "type": "MultiStep", "total_steps": T, "milestones": [36, 72, 108], "gamma": 0.5
    }


@pytest.mark.parametrize(
    "saved",
    [Step(T, 36, 0.5), Cosine(T + 1, 0.1), Cosine(T, 0.2), Warmup(Cosine(T, 0.1), 1)],
    ids=["other-type", "other-length", "other-param", "wrapped"],
)
def test_loading_the_state_of_another_schedule_raises(saved: Schedule) -> None:
    _, _, source = _setup(saved)
    _, optimizer, scheduler = _setup(PLAIN["cosine"])
    message = (
        r"The 'state_dict' parameter of ScheduledLR.load_state_dict\(\) must be the state of a "
        r"ScheduledLR following Cosine\(total_steps=120, min_factor=0.1\). Got \{'type': "
    )
    with pytest.raises(InvalidParameterError, match=message):
        scheduler.load_state_dict(source.state_dict())
    assert scheduler.last_step == 0  # nothing was changed


def test_loading_a_foreign_state_dict_raises() -> None:
    _, optimizer, scheduler = _setup(PLAIN["cosine"])
    foreign = tls.CosineAnnealingLR(torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1), 10)
    with pytest.raises(InvalidParameterError, match="must be a dict from ScheduledLR.state_dict"):
        scheduler.load_state_dict(foreign.state_dict())


# --- 5. bad input ------------------------------------------------------------------------------


def _msg(name: str, owner: str, requirement: str, got: str) -> str:
    return re.escape(f"The '{name}' parameter of {owner} must be {requirement}. Got {got} instead.")


_MILESTONES = "a non-empty, strictly increasing sequence of ints in [1, 100]"
_names = ", ".join(repr(n) for n in sorted(SCHEDULES))
BAD_INPUT = {
    "total-zero": (lambda: Constant(0), _msg("total_steps", "Constant()", "an int >= 1", "0")),
    "total-negative": (lambda: Cosine(-5), _msg("total_steps", "Cosine()", "an int >= 1", "-5")),
    "total-bool": (lambda: Cosine(True), _msg("total_steps", "Cosine()", "an int >= 1", "True")),
    "total-float": (
        lambda: make_schedule("cosine", 100.0),
        _msg("total_steps", "make_schedule()", "an int >= 1", "100.0"),
    ),
    "gamma-negative": (
        lambda: Exponential(100, gamma=-1),
        _msg("gamma", "Exponential()", "a float in (0, 1]", "-1"),
    ),
    "gamma-zero": (
        lambda: Step(100, 10, gamma=0.0),
        _msg("gamma", "Step()", "a float in (0, 1]", "0.0"),
    ),
    "step-size-zero": (lambda: Step(100, 0), _msg("step_size", "Step()", "an int >= 1", "0")),
    "milestone-beyond-end": (
        lambda: MultiStep(100, [50, 101]),
        _msg("milestones", "MultiStep()", _MILESTONES, "(50, 101)"),
    ),
    "milestones-not-increasing": (
        lambda: MultiStep(100, (60, 30)),
        _msg("milestones", "MultiStep()", _MILESTONES, "(60, 30)"),
    ),
    "milestones-repeated": (
        lambda: MultiStep(100, (30, 30)),
        _msg("milestones", "MultiStep()", _MILESTONES, "(30, 30)"),
    ),
    "warmup-too-long": (
        lambda: Warmup(Cosine(100), 100),
        _msg(
            "warmup_steps",
            "Warmup()",
            "an int in [0, 99] (the schedule has 100 steps; no warm-up longer than the schedule)",
            "100",
        ),
    ),
    "make-warmup-too-long": (
        lambda: make_schedule("cosine", 100, warmup=100),
        re.escape("The 'warmup' parameter of make_schedule() must be an int in [0, 99] or a float")
        + ".*no warm-up longer than the schedule.*Got 100 instead",
    ),
    "warmup-fraction-1.5": (
        lambda: make_schedule("cosine", 100, warmup=1.5),
        _msg(
            "warmup",
            "make_schedule()",
            "an int in [0, 99] or a float fraction in [0, 1) (no warm-up longer than the schedule)",
            "1.5",
        ),
    ),
    # A warm-up leaving the wrapped schedule too few steps names what the user passed, not
    # MultiStep.compressed() and the 2 steps left (before).
    "warmup-leaves-too-few-steps": (
        lambda: Warmup(MultiStep(10, (3, 6, 9)), 8),
        _msg(
            "warmup_steps",
            "Warmup()",
            "an int that leaves the wrapped MultiStep enough steps "
            "(a warm-up of 8 of the 10 steps leaves it 2: too few)",
            "8",
        ),
    ),
    "make-warmup-leaves-too-few-steps": (
        lambda: make_schedule("multistep", 10, warmup=0.8, milestones=(3, 6, 9)),
        _msg(
            "warmup",
            "make_schedule()",
            "a warm-up that leaves the 'multistep' schedule enough steps "
            "(a warm-up of 8 of the 10 steps leaves it 2: too few)",
            "0.8",
        ),
    ),
    "compressed-too-short-for-warmup": (
        lambda: with_warmup(MultiStep(10, (3, 6, 9)), 2).compressed(3),
        _msg(
            "total_steps",
            "Warmup.compressed()",
            "an int long enough for the warm-up and the wrapped MultiStep after it",
            "3",
        ),
    ),
    "nested-warmup-compressed-too-short": (
        lambda: Warmup(Warmup(MultiStep(10, (3, 6, 9)), 2), 3).compressed(4),
        _msg(
            "total_steps",
            "Warmup.compressed()",
            "an int long enough for the warm-up and the wrapped Warmup after it",
            "4",
        ),
    ),
    "warmup-start-negative": (
        lambda: Warmup(Cosine(100), 10, start_factor=-0.1),
        _msg("start_factor", "Warmup()", "a float in [0, 1]", "-0.1"),
    ),
    "make-warmup-start-negative": (
        lambda: make_schedule("cosine", 100, warmup=5, warmup_start=-0.5),
        _msg("warmup_start", "make_schedule()", "a float in [0, 1]", "-0.5"),
    ),
    "unknown-name": (
        lambda: make_schedule("cosin", 100),
        _msg("name", "make_schedule()", f"one of {_names}", "'cosin'"),
    ),
    "unknown-param": (
        lambda: make_schedule("cosine", 100, gamma=0.5),
        _msg(
            "gamma", "make_schedule()", "a parameter of the 'cosine' schedule ('min_factor')", "0.5"
        ),
    ),
    "param-of-constant": (
        lambda: make_schedule("constant", 100, min_factor=0.5),
        _msg(
            "min_factor",
            "make_schedule()",
            "a parameter of the 'constant' schedule (it takes none)",
            "0.5",
        ),
    ),
    "missing-param": (
        lambda: make_schedule("step", 100),
        _msg("step_size", "make_schedule()", "given: the 'step' schedule requires it", "None"),
    ),
    "bad-decay-shape": (
        lambda: WarmupStableDecay(100, decay_shape="exp"),
        _msg("decay_shape", "WarmupStableDecay()", "one of 'cosine', 'linear', 'sqrt'", "'exp'"),
    ),
    "bad-warmup-shape": (
        lambda: with_warmup(Cosine(100), 5, shape="exp"),
        _msg("shape", "Warmup()", "one of 'cosine', 'linear'", "'exp'"),
    ),
    "min-factor-above-1": (
        lambda: Cosine(100, min_factor=1.5),
        _msg("min_factor", "Cosine()", "a float in [0, 1]", "1.5"),
    ),
    "pct-start-zero": (
        lambda: OneCycle(100, pct_start=0.0),
        _msg("pct_start", "OneCycle()", "a float in (0, 1)", "0.0"),
    ),
    "pct-start-one": (
        lambda: OneCycle(100, pct_start=1.0),
        _msg("pct_start", "OneCycle()", "a float in (0, 1)", "1.0"),
    ),
    "pct-start-three-phase": (
        lambda: OneCycle(100, pct_start=0.6, three_phase=True),
        _msg("pct_start", "OneCycle()", "a float in (0, 0.5)", "0.6"),
    ),
    "compressed-zero": (
        lambda: Cosine(100).compressed(0),
        _msg("total_steps", "Cosine.compressed()", "an int >= 1", "0"),
    ),
    "factor-negative": (
        lambda: Cosine(100).factor(-1),
        _msg("step", "Cosine.factor()", "an int >= 0", "-1"),
    ),
    "factor-float": (
        lambda: Cosine(100).factor(1.5),
        _msg("step", "Cosine.factor()", "an int >= 0", "1.5"),
    ),
    "warmup-not-a-schedule": (
        lambda: Warmup("cosine", 5),
        _msg("schedule", "Warmup()", "a Schedule", "'cosine'"),
    ),
    "scheduler-not-a-schedule": (
        lambda: ScheduledLR(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1), "cosine"),
        _msg("schedule", "ScheduledLR()", "an lrtune Schedule", "'cosine'"),
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_raises_invalid_parameter_error(case) -> None:
    build, message = case
    with pytest.raises(InvalidParameterError, match=f"^{message}") as caught:
        build()
    assert isinstance(caught.value, ValueError)


def test_registry_is_read_only_and_abstract_base_cannot_be_built() -> None:
    with pytest.raises(TypeError):
        SCHEDULES["mine"] = Constant  # type: ignore[index]
    with pytest.raises(TypeError):
        Schedule(10)  # type: ignore[abstract]
