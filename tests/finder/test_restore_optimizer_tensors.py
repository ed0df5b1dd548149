"""Fault-sweep case 2: ``find`` puts back every tensor the optimizer steps, in the model or not."""

import torch
from torch import nn

from lrtune.finder import find
from lrtune.tasks import get_task

TASK = get_task("digits")


def test_a_parameter_outside_the_model_is_restored_bit_for_bit():
    model = TASK.make_model(0)
    bias = torch.tensor([0.5, -0.25], requires_grad=True)  # a learnable logit shift, not in model

    def loss_fn(logits, y):
        shifted = logits + torch.cat([bias, bias.new_zeros(8)])
        return nn.functional.cross_entropy(shifted, y)

    optimizer = torch.optim.SGD(list(model.parameters()) + [bias], lr=0.1, momentum=0.9)
    x, y = next(iter(TASK.train_loader(0)))
    loss_fn(model(x), y).backward()  # the user's loop left a gradient on it
    grad, weights = bias.grad.clone(), [p.clone() for p in model.parameters()]

    result = find(model, optimizer, TASK.train_loader(0), loss_fn, num_iter=60)

    assert result.steps > 10  # it trained the shift too: SGD moved it during the sweep
    assert torch.equal(bias.detach(), torch.tensor([0.5, -0.25]))
    assert torch.equal(bias.grad, grad)
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights, strict=True))
