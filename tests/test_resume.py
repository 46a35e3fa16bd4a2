"""Resume: a run killed with SIGKILL and resumed ends exactly like an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import write_config
from textsift.engines.checkpoint import CheckpointDir, atomic_write


def _cmd(*args):
    return [sys.executable, "-m", "textsift", *args]


def _run(args, env):
    done = subprocess.run(_cmd(*args), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def _config(tmp_path, tiny_data):
    return write_config(tmp_path / "c.yaml", tiny_data, model_name="textcnn",
                        model={"num_filters": 8, "kernel_sizes": [1, 2]},
                        train={"epochs": 12, "checkpoint_every": 4, "early_stopping": {"patience": None}},
                        report={"plots": False, "tensorboard": False})


def test_killed_run_resumes_to_identical_result(tmp_path, tiny_data):
    cfg = _config(tmp_path, tiny_data)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    _run(["train", "-c", str(cfg), "--run-dir", str(full)], env)

    proc = subprocess.Popen(_cmd("train", "-c", str(cfg), "--run-dir", str(killed)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = killed / "checkpoints" / "latest"
    deadline = time.time() + 120
    while not pointer.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(0.3)  # land somewhere after the first checkpoint, possibly inside a later save
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it could be killed"
    state = json.loads((killed / "checkpoints" / pointer.read_text().strip() / "state.json").read_text())
    assert state  # the published checkpoint is complete and readable
    before = CheckpointDir(killed / "checkpoints").load_latest()["progress"]["run_seconds"]   # the killed
    # process's time up to that checkpoint
    assert before > 0

    started = time.time()
    _run(["train", "--resume", str(killed)], env)
    resumed_for = time.time() - started
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    # train_seconds counts both processes, not just the resumed one
    assert before + 0.9 * resumed_for - 5 < b["train_seconds"] <= before + resumed_for + 0.5
    for split in ("dev", "test"):
        assert a[split] == b[split]
    assert a["best_epoch"] == b["best_epoch"]
    def history(run):  # everything but the wall-clock timings
        return [{k: v for k, v in row.items() if k != "train_seconds"}
                for row in json.loads((run / "history.json").read_text())]

    assert history(full) == history(killed)
    wa, wb = load_file(str(full / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, tiny_data):
    from textsift.cli.main import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(_config(tmp_path, tiny_data).read_text())
    assert main(["train", "--resume", str(run)]) == 2


def test_checkpoint_dir_ignores_half_written_saves(tmp_path):
    ckpt = CheckpointDir(tmp_path)
    ckpt.save({"w": torch.ones(3), "step": 1, "nested": {0: [torch.zeros(2), "x"]}}, step=1)
    (tmp_path / ".ckpt-junk").mkdir()  # what a kill during the next save leaves behind
    (tmp_path / ".ckpt-junk" / "state.json").write_text("{broken")
    state = ckpt.load_latest()
    assert torch.equal(state["w"], torch.ones(3)) and state["step"] == 1
    assert state["nested"][0][1] == "x" and torch.equal(state["nested"][0][0], torch.zeros(2))
    ckpt.save({"w": torch.full((3,), 2.0), "step": 2}, step=2)
    assert not (tmp_path / ".ckpt-junk").exists()
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-000000002"]


def test_atomic_write_keeps_old_file_when_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "model.json"
    atomic_write(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]
