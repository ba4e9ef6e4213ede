"""Runs own their folder, stop when they diverge, cap skipped batches, step schedulers."""

import os
import subprocess
import sys

import pytest
import torch

from badger_graph.cli import cli_main
from badger_graph.errors import DivergenceError, NonFiniteError, RunFolderError

from .test_faults import CKPTS, CONFIG, _fault_arg, _fit_inprocess


def test_second_run_into_the_same_folder_stops(tmp_path, monkeypatch):
    # a live process that looks like a training run ("badger" in its command line)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "badger"])
    try:
        (tmp_path / "runs/tiny").mkdir(parents=True)
        (tmp_path / "runs/tiny/run.lock").write_text(str(other.pid))
        with pytest.raises(RunFolderError, match=rf"process {other.pid}\) is writing into"):
            _fit_inprocess(tmp_path, monkeypatch)
    finally:
        other.kill()
        other.wait()
    # the other run is gone: its stale lock is taken over, and released at the end
    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "2")
    assert not (tmp_path / "runs/tiny/run.lock").exists()
    assert (tmp_path / CKPTS / "last.ckpt").exists()


def test_unwritable_run_folder_fails_before_training(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PermissionError, match="is not writable"):
        _fit_inprocess(tmp_path, monkeypatch, "--trainer.default_root_dir", "afile/run")


def test_divergence_stops_named_and_keeps_the_good_checkpoint(tmp_path, monkeypatch):
    args = ["--model.optimizer.init_args.lr", "1000"]
    args += ["--model.diverged_after", "3", "--model.diverged_at", "2"]
    with pytest.raises(DivergenceError, match=r"above diverged_at=2\.0 x chance"):
        _fit_inprocess(tmp_path, monkeypatch, *args)
    assert not (tmp_path / CKPTS / "interrupted.ckpt").exists()  # diverged weights not saved


def test_skipped_batches_are_capped(tmp_path, monkeypatch):
    fault = _fault_arg("nan_feedback", 4, times=20)
    with pytest.raises(NonFiniteError, match=r"4 batches in a row \(max_skipped=3\)"):
        _fit_inprocess(
            tmp_path, monkeypatch, fault, "--model.nonfinite", "skip", "--model.max_skipped", "3"
        )


@pytest.mark.parametrize("outer", ["backprop", "truncated"])
def test_lr_scheduler_steps_every_batch(tmp_path, monkeypatch, outer):
    extra = []
    if outer == "truncated":
        extra = [
            "--model.outer_loop",
            "badger_graph.outer.TruncatedBPTT",
            "--model.outer_loop.steps",
            "2",
        ]
    sched = '{"class_path": "torch.optim.lr_scheduler.StepLR", '
    sched += '"init_args": {"step_size": 1, "gamma": 0.5}}'
    _fit_inprocess(
        tmp_path, monkeypatch, "--trainer.max_steps", "4", "--model.lr_scheduler", sched, *extra
    )
    ckpt = torch.load(tmp_path / CKPTS / "last.ckpt", map_location="cpu", weights_only=False)
    lr = ckpt["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr == pytest.approx(0.01 * 0.5**4)  # tiny.yaml: lr 0.01, 4 batches


def test_cli_exit_codes_and_bad_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = CONFIG
    for cmd, flag in [
        ("analyze", "--num_experts=0"),
        ("analyze", "--episodes=0"),
        ("rollout", "--episodes=0"),
        ("rollout", "--seed=-3"),
    ]:
        with pytest.raises(SystemExit) as e:
            cli_main([cmd, "--config", cfg, flag])
        assert e.value.code == 2
        assert flag.split("=")[0] in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--sweep_experts_at", "0"])
    assert "--sweep_experts_at must be >= 1" in capsys.readouterr().err
    cli_main(["rollout", "--config", cfg, "--out", "afile", "--episodes", "2"])
    assert "wrote afile.png" in capsys.readouterr().out
    assert os.path.getsize("afile.png") > 1000
