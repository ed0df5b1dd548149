"""The Lightning integration, with a real Trainer on the built-in digits task (MLP, SGD with
momentum, step decay laid over the trainer's max_steps)."""

import warnings

import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch")
from lrtune import InvalidParameterError, Space  # noqa: E402
from lrtune.integrations.lightning import RangeTest, tune  # noqa: E402
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
