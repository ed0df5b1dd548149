"""``workers=N`` on a machine with several GPUs: each worker process sees its own one."""

import os
from pathlib import Path

import lrtune
from lrtune.study._processes import worker_environment


def test_workers_take_the_visible_gpus_round_robin():
    visible = {"CUDA_VISIBLE_DEVICES": "3,5", "OMP_NUM_THREADS": "1"}
    assert [worker_environment(slot, 4, visible)["CUDA_VISIBLE_DEVICES"]
            for slot in range(4)] == ["3", "5", "3", "5"]
    one = {"CUDA_VISIBLE_DEVICES": "1"}  # one GPU: every worker shares it
    assert worker_environment(2, 4, one)["CUDA_VISIBLE_DEVICES"] == "1"
    none = {"CUDA_VISIBLE_DEVICES": ""}  # GPUs hidden on purpose stay hidden
    assert worker_environment(0, 2, none)["CUDA_VISIBLE_DEVICES"] == ""


def test_on_a_machine_without_gpus_nothing_is_set(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = worker_environment(0, 2, os.environ)
    assert "CUDA_VISIBLE_DEVICES" not in env  # this CPU build of torch sees no device


def _record_gpu(trial):
    Path(os.environ["GPU_LOG"], str(os.getpid())).write_text(os.environ["CUDA_VISIBLE_DEVICES"])
    for step in range(trial.steps):
        trial.report(1.0, step)
    return abs(trial.lr - 0.01)


def test_each_worker_process_runs_with_its_own_device(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setenv("GPU_LOG", str(tmp_path))
    lrtune.tune(_record_gpu, steps=20, budget=4.0, strategy="random",
                space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"),
                storage=f"sqlite:///{tmp_path / 's.db'}", study_name="gpus", workers=2)
    seen = {p.name: p.read_text() for p in tmp_path.iterdir() if p.name.isdigit()}
    assert seen and set(seen.values()) <= {"3", "5"}
    assert len(set(seen.values())) == len(seen)  # no two worker processes share a device
