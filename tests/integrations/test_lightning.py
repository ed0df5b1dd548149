"""The Lightning integration, with a real Trainer on the built-in digits task (MLP, SGD with
momentum, step decay laid over the trainer's max_steps), and a tiny two-class module where a
test needs no good LR."""

import math
import warnings

import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch")
from lrtune import InvalidParameterError, Space  # noqa: E402
from lrtune.integrations.lightning import OWNED, RangeTest, tune  # noqa: E402
from lrtune.records import TrialState  # noqa: E402
from lrtune.report import report_data  # noqa: E402
from lrtune.tasks import get_task  # noqa: E402

# Where digits trains well: mean validation loss within 1.7x of the best LR's on the reference
# grid (benchmarks/out/grid_digits.json, 3 seeds a point): lr 0.0158 to 0.25.
GOOD = (0.015, 0.25)
TASK = get_task("digits")


class Digits(pl.LightningModule):
    def __init__(self, lr: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = TASK.build_model()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9,
                              weight_decay=TASK.weight_decay)
        steps = self.trainer.max_steps  # each trial's own length: the schedule is compressed
        decay = torch.optim.lr_scheduler.MultiStepLR(opt, [steps // 2, 3 * steps // 4], 0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": decay, "interval": "step"}}


@pytest.fixture(scope="module")
def loaders():
    data = TASK.data
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.x_train, data.y_train),
                                        batch_size=64, shuffle=True, drop_last=True)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.x_val, data.y_val),
                                      batch_size=512)
    return train, val


@pytest.fixture(autouse=True)
def _quiet_lightning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        yield


@pytest.mark.slow
def test_tune_runs_the_range_test_and_the_search_and_finds_a_good_lr(loaders, tmp_path, capfd):
    train, val = loaders
    space = Space(lr=(1e-4, 3.0), optimizer="sgd", schedule=TASK.schedule(TASK.steps))
    study = tune(Digits, steps=TASK.steps, space=space, train_dataloaders=train,
                 val_dataloaders=val, trainer_kwargs={"accelerator": "cpu"},
                 storage=f"sqlite:///{tmp_path}/pl.db", study_name="pl")
    best = study.best
    assert best.tag == "final" and best.steps == TASK.steps
    assert GOOD[0] < best.lr < GOOD[1]
    assert best.value < 0.1  # the grid's best mean validation loss is 0.06
    assert any(t.diverged for t in study.trials)  # the cliff was found, and cost little
    assert study.spent <= 2.0 + 1e-9
    range_test = report_data(study).range_test  # kept with the study for its report
    assert range_test is not None and 0.01 < range_test["suggestion"] < 1.0
    # capfd: Lightning logs through a handler that holds the real stderr, which capsys misses
    assert "GPU available" not in capfd.readouterr().err  # Lightning's set-up lines held back


def test_range_test_callback_restores_the_model_and_trains_at_its_suggestion(loaders):
    train, val = loaders
    torch.manual_seed(0)
    module = Digits(lr=1e-3)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    seen = {}

    class Probe(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            seen["same"] = all(torch.equal(before[k], v) for k, v in pl_module.state_dict().items())
            seen["lr"] = trainer.optimizers[0].param_groups[0]["lr"]

    finder = RangeTest(num_iter=60)
    trainer = pl.Trainer(max_steps=5, callbacks=[finder, Probe()], accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    result = finder.result
    assert result is not None and result.steps > 20
    assert result.probe_batches == 8  # read through training_step, without gradients
    assert seen["same"]  # the sweep's updates were undone before training
    assert module.hparams.lr == seen["lr"] == result.suggestion
    assert 0.01 < result.suggestion < 1.0


def test_a_module_without_an_lr_attribute_is_refused(loaders):
    class NoLr(Digits):
        def __init__(self):
            super().__init__()
            del self.hparams["lr"]

    train, val = loaders
    with pytest.raises(InvalidParameterError, match="'lr', 'learning_rate'"):
        tune(NoLr, steps=100, range_test=False, train_dataloaders=train, val_dataloaders=val,
             trainer_kwargs={"accelerator": "cpu"})


# -- a tiny module: two param groups (the head at 10x the LR) and a schedule laid over max_steps
_gen = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=_gen)
Y = (X[:, 0] > 0).long()
QUIET = {"accelerator": "cpu", "logger": False, "enable_checkpointing": False,
         "enable_progress_bar": False, "enable_model_summary": False}


def tiny_schedule(module, lr, kind, steps):
    opt = torch.optim.SGD([{"params": module.body.parameters()},
                           {"params": module.head.parameters(), "lr": 10 * lr}],
                          lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler
    if kind == "lambda":  # a linear decay: the LR is base_lrs times its factor
        return opt, sched.LambdaLR(opt, lambda k: 1 - k / steps)
    if kind == "onecycle":  # keeps max_lr and min_lr in the groups, starts at max_lr / 25
        return opt, sched.OneCycleLR(opt, max_lr=[lr, 10 * lr], total_steps=steps)
    if kind == "sequential":  # the exponential decay starts from its base_lrs
        return opt, sched.SequentialLR(opt, [sched.LinearLR(opt, 0.5, total_iters=2),
                                             sched.ExponentialLR(opt, 0.8)], milestones=[2])
    return opt, None


class Tiny(pl.LightningModule):
    def __init__(self, lr: float = 0.01, schedule: str = ""):
        super().__init__()
        self.save_hyperparameters()
        self.body, self.head = nn.Linear(8, 16), nn.Linear(16, 2)
        nn.init.zeros_(self.head.weight)  # the untrained loss is ln 2 exactly
        nn.init.zeros_(self.head.bias)
        self.grad_calls = 0  # training_step calls that will backpropagate

    def training_step(self, batch, batch_idx):
        self.grad_calls += torch.is_grad_enabled()
        x, y = batch
        return nn.functional.cross_entropy(self.head(torch.relu(self.body(x))), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.head(torch.relu(self.body(x))), y))

    def configure_optimizers(self):
        opt, sched = tiny_schedule(self, self.hparams.lr, self.hparams.schedule,
                                   self.trainer.max_steps)
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@pytest.fixture(scope="module")
def tiny_loaders():
    data = torch.utils.data.TensorDataset(X, Y)
    return (torch.utils.data.DataLoader(data, batch_size=32, shuffle=True, drop_last=True),
            torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X[:64], Y[:64]),
                                        batch_size=64))


class WatchLr(pl.Callback):
    """The LR of each param group as each training batch starts."""

    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append([g["lr"] for g in trainer.optimizers[0].param_groups])


@pytest.mark.parametrize("kind", ["lambda", "onecycle", "sequential", ""])
def test_range_test_trains_on_as_if_the_module_had_been_built_with_the_suggestion(
        tiny_loaders, kind):
    steps, watch, finder = 5, WatchLr(), RangeTest(num_iter=60, probe_batches=0)
    module = Tiny(schedule=kind)
    pl.Trainer(max_steps=steps, callbacks=[finder, watch], **QUIET).fit(module, *tiny_loaders)
    suggestion = finder.result.suggestion
    assert module.hparams.lr == suggestion
    # what the schedule gives from lr=suggestion: every step at it, not only the first (setting
    # 'lr' alone left the schedulers' base_lrs at the old LR), the head at 10x throughout
    opt, sched = tiny_schedule(Tiny(), suggestion, kind, steps)
    expected = []
    for _ in range(steps):
        expected.append([g["lr"] for g in opt.param_groups])
        opt.step()
        if sched is not None:
            sched.step()
    assert len(watch.seen) == steps
    for seen, want in zip(watch.seen, expected, strict=True):
        assert seen == pytest.approx(want, rel=1e-9)


def test_range_test_accumulates_gradients_as_the_trainer_does(tiny_loaders):
    module, finder = Tiny(), RangeTest(num_iter=60, probe_batches=0, stop=True)
    pl.Trainer(max_steps=5, accumulate_grad_batches=3, callbacks=[finder],
               **QUIET).fit(module, *tiny_loaders)
    assert finder.result.steps > 20
    assert module.grad_calls == 3 * finder.result.steps  # each step on 3 batches, as training's


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"num_iter": -5}, "num_iter"), ({"num_iter": 10}, "num_iter"),
    ({"start_lr": 0.0}, "start_lr"), ({"end_lr": 1e-8}, "end_lr"), ({"end_lr": "10"}, "end_lr"),
    ({"attr_name": 3}, "attr_name"), ({"seed": -1}, "seed"),
    ({"probe_batches": -1}, "probe_batches"), ({"update_attr": "yes"}, "update_attr"),
    ({"stop": 1}, "stop"),
])
def test_range_test_checks_its_arguments_when_built(kwargs, name):
    shape = rf"^The '{name}' parameter of RangeTest\(\) must be .* Got .* instead\.$"
    with pytest.raises(InvalidParameterError, match=shape):
        RangeTest(**kwargs)


def test_range_test_says_why_num_iter_has_its_least():
    with pytest.raises(InvalidParameterError, match=r"an int >= \d+ \(the coarse sweep over 8.0 "):
        RangeTest(num_iter=10)


class CountFits(pl.Callback):
    fits: list = []  # on the class: what every Trainer that ran this callback saw

    def on_fit_start(self, trainer, pl_module):
        self.fits.append(trainer.max_steps)


def test_tune_runs_the_users_callbacks_in_every_trainer(tiny_loaders):
    train, val = tiny_loaders
    CountFits.fits = []
    study = tune(Tiny, steps=16, budget=2.0, space=Space(lr=(1e-3, 0.3), optimizer="sgd"),
                 train_dataloaders=train, val_dataloaders=val,
                 trainer_kwargs={"accelerator": "cpu", "callbacks": [CountFits()]})
    assert study.trials
    assert CountFits.fits == [16] + [t.steps for t in study.trials]  # the range test, each trial


@pytest.mark.parametrize("key", OWNED)
def test_tune_refuses_trainer_kwargs_each_trial_sets_before_building_anything(tiny_loaders, key):
    built = []
    with pytest.raises(InvalidParameterError,
                       match=rf"^The 'trainer_kwargs' parameter of tune\(\) must be a dict without "
                             rf".*\(lrtune sets them .*Got \{{'{key}': 7}} instead\.$"):
        tune(lambda: built.append(1), steps=16, train_dataloaders=tiny_loaders[0],
             trainer_kwargs={"accelerator": "cpu", key: 7})
    assert not built


def test_tune_reports_each_optimizer_step_once_under_gradient_accumulation(tiny_loaders):
    train, val = tiny_loaders
    study = tune(Tiny, steps=12, budget=2.0, range_test=False,
                 space=Space(lr=(1e-3, 0.3), optimizer="sgd"), train_dataloaders=train,
                 val_dataloaders=val,
                 trainer_kwargs={"accelerator": "cpu", "accumulate_grad_batches": 2})
    completed = [t for t in study.trials if t.state is TrialState.COMPLETED]
    assert completed and all(t.state is not TrialState.FAILED for t in study.trials)
    for trial in completed:
        assert [step for step, _ in trial.history] == list(range(trial.steps))
        # the step's loss: the mean of its 2 micro-batches, not half of it (Lightning's share)
        assert trial.history[0][1] == pytest.approx(math.log(2), rel=1e-6)
