"""Space: what a user may write is checked up front, and what it keeps is plain data."""

import io
import math

import numpy as np
import pytest
import torch

import lrtune
from lrtune.exceptions import InvalidParameterError


def test_names_are_kept_as_plain_str():
    space = lrtune.Space(lr=0.1, optimizer=[np.str_("sgd")], schedule=np.str_("cosine"))
    params = space.config(0.1)
    assert type(params["optimizer"]) is str and type(params["schedule"]) is str
    buffer = io.BytesIO()  # a checkpoint holding the params loads without trusting NumPy
    torch.save({"params": params}, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["params"] == params


def test_each_choice_is_checked_then_kept_once():
    space = lrtune.Space(optimizer=["sgd", "sgd", "rmsprop"], warmup=[0, 0.0, 0.05],
                         weight_decay=[0, 1e-4, 0.0], momentum=[0.9, 0.9])
    assert space.optimizer == ("sgd", "rmsprop")
    assert space.warmup == (0.0, 0.05) and space.weight_decay == (0.0, 1e-4)
    assert space.momentum == (0.9,) and len(space.choices()) == 8  # 2 x 2 x 2


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": np.array(["sgd", "adam"])},
     r"The 'optimizer' parameter of Space\(\) must be one of 'adagrad', .*Got array"),
    ({"optimizer": "SGD"}, r"The 'optimizer' parameter of Space\(\) must be one of .*Got 'SGD'"),
    ({"optimizer": "sgd", "momentum": [torch.tensor([0.1, 0.2]), 0.1]},
     r"The 'momentum' parameter of Space\(\) must be a float in \[0, 1\)\. Got tensor"),
    ({"optimizer": "sgd", "momentum": True}, r"The 'momentum' parameter .* Got True"),
    ({"optimizer": "sgd-nesterov", "momentum": [0.0, 0.9]},
     r"The 'momentum' parameter of Space\(\) must be > 0 with sgd-nesterov .*Got \[0\.0, 0\.9\]"),
    ({"optimizer": ["sgd", "adamw"], "momentum": 0.9},
     r"must be None with an optimizer that has no momentum \(adamw"),
    ({"lr": [1e-3, 1e-1]},
     r"The 'lr' parameter of Space\(\) must be a float > 0 or a \(low, high\) tuple"),
    ({"lr": (1e-3, 1e-3)}, r"0 < low < high \(a single value fixes it\)\. "
                           r"Got \(0\.001, 0\.001\) instead"),
    ({"lr": (1.0, 1e-5)}, r"0 < low < high .*Got \(1\.0, 1e-05\) instead"),
    ({"lr": (1e-5, math.inf)}, r"The 'lr' parameter of Space\(\) must be a float > 0\. Got inf"),
    ({"lr": (1e-5, 1e-3, 1e-1)}, r"a float > 0 or a \(low, high\) tuple\. Got \(1e-05, 0\.001"),
    ({"lr": np.nan}, r"The 'lr' parameter of Space\(\) must be a float > 0\. Got nan"),
    ({"weight_decay": (0.0, 0.1)}, r"The 'weight_decay' parameter of Space\(\) must be a "
                                   r"\(low, high\) tuple with 0 < low < high: a log scale never "
                                   r"reaches 0 \(a list of choices .*Got \(0\.0, 0\.1\) instead"),
    ({"weight_decay": (-1e-4, 0.1)}, r"The 'weight_decay' parameter .* float > 0\. Got -0\.0001"),
    ({"schedule": "step"}, r"The 'schedule' parameter of Space\(\) must be a schedule its name "
                           r"alone builds"),
    ({"warmup": []}, r"The 'warmup' parameter of Space\(\) must be a value or a non-empty list"),
])
def test_bad_space(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        lrtune.Space(**kwargs)


def test_numpy_numbers_become_floats():
    space = lrtune.Space(lr=(np.float32(1e-3), np.float64(0.1)), optimizer="sgd",
                         weight_decay=(np.float32(1e-5), 1e-2), momentum=np.float64(0.9))
    values = (space.lr_range.low, space.lr_range.high, space.weight_decay.low,
              space.weight_decay.high, *space.momentum)
    assert all(type(v) is float for v in values)
    assert lrtune.Space.from_description(space.describe()) == space


def test_a_fixed_lr_has_a_position_in_its_range():
    lr_range = lrtune.Space(lr=0.1).lr_range
    assert lr_range.unit(0.1) == 0.0 and lr_range.value(lr_range.unit(0.1)) == 0.1


SPACE = lrtune.Space(lr=(1e-3, 1.0), optimizer=["sgd", "rmsprop"], warmup=[0.0, 0.05],
                     weight_decay=(1e-5, 1e-2), momentum=[0.0, 0.9])


def test_config_gives_the_spaces_own_values():
    params = SPACE.config(np.float64(0.01), unit_weight_decay=1.0, optimizer=np.str_("rmsprop"),
                          momentum=0.9, weight_decay=1e-3)
    assert params == {"optimizer": "rmsprop", "schedule": "constant", "warmup": 0.0,
                      "momentum": 0.9, "weight_decay": 1e-3, "lr": 0.01}
    assert type(params["optimizer"]) is str and type(params["lr"]) is float
    assert SPACE.config(1.0, unit_weight_decay=1.0)["weight_decay"] == 1e-2  # the range's ends
    assert SPACE.config(1e-3)["lr"] == 1e-3


@pytest.mark.parametrize("lr, choice, message", [
    (0.01, {"optimiser": "sgd"}, r"The 'choice' parameter of Space\.config\(\) must be keyword "
                                 r"arguments among optimizer, schedule, warmup, momentum, "
                                 r"weight_decay\. Got \['optimiser'\] instead"),
    (0.01, {"optimizer": "adamw"}, r"The 'optimizer' parameter of Space\.config\(\) must be one "
                                   r"of the space's choices \['sgd', 'rmsprop'\]\. Got 'adamw'"),
    (0.01, {"warmup": 0.1}, r"The 'warmup' parameter .* choices \[0\.0, 0\.05\]\. Got 0\.1"),
    (0.01, {"weight_decay": 0.1}, r"The 'weight_decay' parameter of Space\.config\(\) must be a "
                                  r"float in \[1e-05, 0\.01\]\. Got 0\.1"),
    (0.0, {}, r"The 'lr' parameter of Space\.config\(\) must be a float > 0\. Got 0\.0"),
    (math.nan, {}, r"The 'lr' parameter of Space\.config\(\) must be a float > 0\. Got nan"),
])
def test_config_refuses_what_the_space_does_not_hold(lr, choice, message):
    # a strategy's mistake, named where it is made rather than by the storage it reaches
    with pytest.raises(InvalidParameterError, match=message):
        SPACE.config(lr, **choice)


@pytest.mark.parametrize("warmup, steps", [(0.05, 1), (0.05, 5), (0.05, 50), (0.5, 1), (0.99, 7)])
def test_a_schedule_object_warms_up_as_its_name_would(warmup, steps):
    # the same warm-up fraction, whether the schedule came by name or as an object; a one-step
    # trial (or a warm-up of 99%) still leaves the schedule a step instead of failing
    by_name = lrtune.Space(lr=0.1, schedule="cosine", warmup=warmup)
    as_object = lrtune.Space(lr=0.1, schedule=lrtune.make_schedule("cosine", 600), warmup=warmup)
    expected = by_name.schedule_for(by_name.config(0.1), steps)
    got = as_object.schedule_for(as_object.config(0.1), steps)
    assert [got.factor(i) for i in range(steps)] == [expected.factor(i) for i in range(steps)]
