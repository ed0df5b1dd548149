"""An objective that builds its own optimizer and schedule from ``trial.lr`` and ``trial.steps``.

Run it with:  lrtune tune examples/own_loop.py:objective --steps 300 --budget 2 --optimizer sgd

``--optimizer sgd`` searches SGD's LR range: the loop builds its own SGD, and without the
option the search would use the default family's (AdamW's) range, whose top is below SGD's best.
"""

import torch
from torch import nn

from lrtune.tasks import get_task

TASK = get_task("digits")


def objective(trial):
    torch.manual_seed(trial.seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=trial.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=trial.steps)  # over THIS run
    loader = TASK.train_loader(trial.seed)
    step = 0
    while step < trial.steps:
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            trial.report(loss, step)  # lets lrtune stop a run that diverged
            step += 1
            if step == trial.steps:
                break
    return TASK.evaluate(model)
