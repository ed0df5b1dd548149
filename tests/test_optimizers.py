"""The optimizer registry builds real optimizers that train at their default LR."""

import io
import pickle

import numpy as np
import pytest
import torch

from lrtune.exceptions import InvalidParameterError
from lrtune.optimizers import OPTIMIZERS, build_optimizer, get_optimizer_spec


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_family_trains_digits_at_its_default_lr(name, digits):
    spec = OPTIMIZERS[name]
    low, high = spec.lr_range
    assert 0 < low < spec.default_lr < high
    model = digits.make_model(0)
    opt = build_optimizer(name, model.parameters(), spec.default_lr, weight_decay=1e-4)
    assert opt.param_groups[0]["lr"] == spec.default_lr
    assert opt.param_groups[0]["weight_decay"] == 1e-4
    x, y = digits.data.x_train[:256], digits.data.y_train[:256]
    first = digits.forward_loss(model, x, y).item()
    for _ in range(100):  # RAdam rectifies its first steps: give every family the same 100
        loss = digits.forward_loss(model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert digits.forward_loss(model, x, y).item() < 0.75 * first


def test_families_carry_their_defaults_and_accept_overrides():
    params = [torch.nn.Parameter(torch.zeros(2))]
    nesterov = build_optimizer("sgd-nesterov", params, 0.1)
    assert nesterov.defaults["momentum"] == 0.9 and nesterov.defaults["nesterov"] is True
    assert build_optimizer("sgd", params, 0.1, momentum=0.5).defaults["momentum"] == 0.5


def test_param_group_ratios_are_kept():
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]},
              {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.01}]
    opt = build_optimizer("adam", groups, 0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]


def test_numpy_lr_and_weight_decay_are_kept_as_floats():
    model = torch.nn.Linear(3, 2)
    opt = build_optimizer("adamw", model.parameters(), np.float32(1e-3), np.float64(1e-2))
    group = opt.param_groups[0]
    assert type(group["lr"]) is float and type(group["weight_decay"]) is float
    buffer = io.BytesIO()  # so its state_dict loads without trusting NumPy
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["param_groups"][0]["lr"] == group["lr"]


def test_registered_defaults_are_read_only():
    spec = OPTIMIZERS["sgd-nesterov"]
    with pytest.raises(TypeError):
        spec.defaults["momentum"] = 0.5  # type: ignore[index]
    assert build_optimizer("sgd-nesterov", [torch.nn.Parameter(torch.zeros(1))],
                           0.1).defaults["momentum"] == 0.9
    assert pickle.loads(pickle.dumps(spec)) == spec  # an objective holding one still pickles


@pytest.mark.parametrize("call, message", [
    (lambda p: build_optimizer(np.array("sgd"), p, 0.1),
     r"The 'name' parameter of build_optimizer\(\) must be one of .*Got array\('sgd'"),
    (lambda p: build_optimizer("adamax", p, 0.1),
     r"The 'name' parameter of build_optimizer\(\) must be one of 'adagrad', 'adam', 'adamw'"),
    (lambda p: build_optimizer("sgd", p, 0.0),
     r"The 'lr' parameter of OptimizerSpec\('sgd'\)\.build\(\) must be a float > 0\. Got 0\.0"),
    (lambda p: build_optimizer("adam", p, 1e-3, weight_decay=-1),
     r"The 'weight_decay' parameter of .* must be a float >= 0\. Got -1"),
    (lambda p: build_optimizer("adam", p, 1e-3, momentum=0.9),
     r"The 'options' parameter of .* must be keyword arguments accepted by Adam\. "
     r"Got \['momentum'\]"),
    (lambda p: get_optimizer_spec("lion"),
     r"The 'name' parameter of get_optimizer_spec\(\) must be one of"),
])
def test_bad_optimizer_input(call, message):
    with pytest.raises(InvalidParameterError, match=message):
        call([torch.nn.Parameter(torch.zeros(1))])
