"""The Hugging Face integration, with a real ``transformers.Trainer`` on the built-in char-LM task.

The model is the built-in task's character transformer wrapped as a ``PreTrainedModel`` built
from its config (no download, no pretrained weights), trained with the Trainer's AdamW, cosine
schedule, warm-up and gradient clipping: the recipe of ``lrtune.tasks`` "charlm".
"""

import math

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    PretrainedConfig, PreTrainedModel, Trainer, TrainerCallback, TrainingArguments,
)

from lrtune import InvalidParameterError  # noqa: E402
from lrtune.integrations.huggingface import tune  # noqa: E402
from lrtune.schedules import InverseSqrt  # noqa: E402
from lrtune.tasks import get_task  # noqa: E402
from lrtune.tasks._charlm import CharTransformer  # noqa: E402

# Where charlm trains well: mean validation loss within 10% of the best LR's on the reference
# grid (benchmarks/out/grid_charlm.json, 3 seeds a point): lr 0.0056 to 0.063.
GOOD = (0.005, 0.065)


class CharConfig(PretrainedConfig):
    model_type = "lrtune-char"

    def __init__(self, vocab_size: int = 96, dim: int = 64, layers: int = 2, heads: int = 4,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.dim, self.layers, self.heads = vocab_size, dim, layers, heads


class CharModel(PreTrainedModel):
    config_class = CharConfig

    def __init__(self, config: CharConfig):
        super().__init__(config)
        self.net = CharTransformer(config.vocab_size, config.dim, config.layers, config.heads)

    def forward(self, input_ids, labels=None):
        logits = self.net(input_ids)
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                     labels.reshape(-1))
        return {"loss": loss, "logits": logits}


class Windows(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.y[i]}


def make_trainer(tmp_path, **overrides):
    task = get_task("charlm")
    data = task.data
    config = CharConfig(vocab_size=len(task.vocab))
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=task.steps, per_device_train_batch_size=32,
        per_device_eval_batch_size=512, learning_rate=1e-3, lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": 0.1}, warmup_steps=0.1, weight_decay=0.01,
        max_grad_norm=1.0, use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True,
        seed=0, dataloader_num_workers=0)
    options = {"model_init": lambda: CharModel(config), "args": args,
               "train_dataset": Windows(data.x_train, data.y_train),
               "eval_dataset": Windows(data.x_val, data.y_val), **overrides}
    return Trainer(**options)


@pytest.mark.slow
def test_tune_finds_a_learning_rate_and_warmup_where_charlm_trains_well(tmp_path, capfd):
    trainer = make_trainer(tmp_path)
    study = tune(trainer, warmup=(0.0, 0.1), storage=f"sqlite:///{tmp_path}/hf.db",
                 study_name="hf")
    best = study.best
    assert best.tag == "final" and best.steps == get_task("charlm").steps
    assert GOOD[0] < best.lr < GOOD[1]
    assert best.value < 2.25  # the reference grid's best mean is 2.02
    assert study.spent <= 2.0 + 1e-9
    assert {t.params["warmup"] for t in study.trials} == {0.0, 0.1}  # warm-up searched
    # the answer is left on the trainer, and its model is the final run's
    assert trainer.args.learning_rate == best.lr
    assert trainer.args.warmup_steps == best.params["warmup"]
    assert trainer.args.max_steps == get_task("charlm").steps
    assert math.isclose(trainer.evaluate()["eval_loss"], best.value, rel_tol=1e-4)
    assert "'loss'" not in capfd.readouterr().out  # no per-log printing during the search


def test_a_learning_rate_that_blows_up_is_stopped_at_once(tmp_path):
    trainer = make_trainer(tmp_path, args=TrainingArguments(
        output_dir=str(tmp_path), max_steps=300, per_device_train_batch_size=32,
        learning_rate=1.0, max_grad_norm=0.0, use_cpu=True, report_to="none",
        save_strategy="no", disable_tqdm=True, seed=0))
    study = tune(trainer, lr=(30.0, 100.0), strategy="grid", budget=1.0)
    (trial,) = study.trials
    assert trial.diverged and trial.steps_done < 60


def test_a_trainer_without_model_init_is_refused_before_training(tmp_path):
    trainer = make_trainer(tmp_path, model_init=None,
                           model=CharModel(CharConfig(vocab_size=len(get_task("charlm").vocab))))
    with pytest.raises(InvalidParameterError, match="model_init"):
        tune(trainer)


class WarmupRecorder(TrainerCallback):
    """Each train()'s warm-up and the LR of each of its steps, as its scheduler sets them."""

    def __init__(self):
        self.runs = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.runs.append((state.max_steps, args.get_warmup_steps(state.max_steps), []))

    def on_step_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        self.runs[-1][2].append(lr_scheduler.get_last_lr()[0])


@pytest.mark.parametrize("warmup_steps", [40, 60])
def test_a_warmup_as_long_as_the_run_warms_up_every_trial_all_the_way(tmp_path, warmup_steps):
    # Trainer.train() takes warmup_steps=60 with max_steps=40: every transformers scheduler
    # ramps the LR up for the whole run. tune() refused it as a warm-up fraction of 1.5 (1.0 for
    # 40) of Space(), which the caller never called; now each trial trains that ramp, compressed
    recorder = WarmupRecorder()
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=40, warmup_steps=warmup_steps,
        lr_scheduler_type="linear", per_device_train_batch_size=32,
        per_device_eval_batch_size=512, use_cpu=True, report_to="none", save_strategy="no",
        disable_tqdm=True, seed=0)
    assert args.get_warmup_steps(40) >= 40  # the Trainer's own run: warm-up throughout
    trainer = make_trainer(tmp_path, args=args, callbacks=[recorder])
    study = tune(trainer, budget=1.25)
    assert len(recorder.runs) == len(study.trials) > 1
    assert {steps for steps, _, _ in recorder.runs} == {t.steps for t in study.trials}
    assert any(steps < 40 for steps, _, _ in recorder.runs)  # short runs compressed it too
    for steps, warmup, lrs in recorder.runs:
        assert warmup == steps and lrs == sorted(set(lrs))  # rising to the last step
    # the answer left on the trainer trains the same shape at full length
    assert trainer.args.warmup_steps < 1 and trainer.args.get_warmup_steps(40) == 40


def test_an_inverse_square_root_schedule_is_searched_with_the_trainers_timescale(tmp_path):
    """The one scheduler type whose lrtune schedule has a parameter: a name alone cannot build
    it (Space refuses it), so the study keeps the schedule with get_scheduler's timescale."""
    trainer = make_trainer(tmp_path, args=TrainingArguments(
        output_dir=str(tmp_path), max_steps=40, per_device_train_batch_size=32,
        lr_scheduler_type="inverse_sqrt", warmup_steps=8, use_cpu=True, report_to="none",
        save_strategy="no", disable_tqdm=True, seed=0))
    study = tune(trainer, lr=(1e-3, 1e-2), strategy="grid", budget=1.0)
    (trial,) = study.trials
    assert trial.state.value == "completed"
    assert study.space.schedule == (InverseSqrt(40, timescale=8),)
