"""A run folder has one owner and one history: nothing silently resumed, nothing lost.

``badger fit`` without ``--ckpt_path`` never restores an earlier run's checkpoint; a smoke
run writes none; a run that trained nothing writes none (so a refused or misconfigured run
cannot shadow a good checkpoint); ``--ckpt_path last`` takes the checkpoint furthest in
training and refuses one that does not load; locks go away on every exit the process sees.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from badger_graph.cli import cli_main

from .test_faults import CKPTS, _fault_arg, _fit_inprocess, _fit_subprocess

RUN = "runs/tiny"


def _files(folder):
    """Every file under ``folder`` with its size and modification time."""
    return {
        os.path.relpath(os.path.join(d, f), folder): os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, names in os.walk(folder)
        for f in names
    }


def _step(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def test_fit_twice_into_one_folder_refuses_the_second(tmp_path):
    first = _fit_subprocess(tmp_path, "--trainer.max_steps", "4")
    assert first.returncode == 0, first.stderr[-2000:]
    before = _files(tmp_path / RUN)
    again = _fit_subprocess(tmp_path, "--trainer.max_steps", "8")
    assert again.returncode == 2, again.stderr[-2000:]
    assert "--ckpt_path last" in again.stderr
    assert "--trainer.default_root_dir" in again.stderr
    assert "Traceback" not in again.stderr
    assert _files(tmp_path / RUN) == before  # nothing written, nothing restored
    resumed = _fit_subprocess(tmp_path, "--trainer.max_steps", "8", "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _step(tmp_path / CKPTS / "last.ckpt") == 8


def test_fast_dev_run_writes_no_checkpoint_and_the_real_run_starts_fresh(tmp_path):
    smoke = _fit_subprocess(tmp_path, "--trainer.fast_dev_run", "true")
    assert smoke.returncode == 0, smoke.stderr[-2000:]
    assert not list((tmp_path / CKPTS).glob("*.ckpt"))
    real = _fit_subprocess(tmp_path, "--trainer.max_steps", "3")
    assert real.returncode == 0, real.stderr[-2000:]
    assert "Restoring states" not in real.stderr
    assert _step(tmp_path / CKPTS / "last.ckpt") == 3


def _live_process(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])


def test_run_refused_by_the_lock_writes_nothing_anywhere(tmp_path, monkeypatch):
    from badger_graph.errors import RunFolderError

    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "4")
    other = _live_process("badger", "fit")  # looks like a training run
    try:
        (tmp_path / RUN / "run.lock").write_text(str(other.pid))
        before = _files(tmp_path / RUN)
        with pytest.raises(RunFolderError, match=rf"process {other.pid}\) is writing into"):
            _fit_inprocess(tmp_path, monkeypatch, "--ckpt_path", "last")
        assert _files(tmp_path / RUN) == before  # no interrupted.ckpt, no config, no logs
    finally:
        other.kill()
        other.wait()
    assert _step(tmp_path / CKPTS / "last.ckpt") == 4


def test_lock_of_a_live_process_that_is_not_a_run_says_how_to_clear_it(tmp_path, monkeypatch):
    from badger_graph.errors import RunFolderError

    other = _live_process()  # a pid that came back as some other program
    try:
        (tmp_path / RUN).mkdir(parents=True)
        (tmp_path / RUN / "run.lock").write_text(str(other.pid))
        with pytest.raises(RunFolderError, match=r"not a badger run.*delete .*run\.lock"):
            _fit_inprocess(tmp_path, monkeypatch)
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("kind", ["keyboard", "error"])
def test_lock_removed_when_a_run_stops(tmp_path, monkeypatch, kind):
    with pytest.raises((SystemExit, RuntimeError)):
        _fit_inprocess(tmp_path, monkeypatch, _fault_arg(kind, 3))
    assert not (tmp_path / RUN / "run.lock").exists()
    assert _step(tmp_path / CKPTS / "interrupted.ckpt") == 3


def test_truncated_last_checkpoint_is_refused_not_replaced(tmp_path, monkeypatch):
    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "4")
    last = tmp_path / CKPTS / "last.ckpt"
    last.write_bytes(last.read_bytes()[:200])
    before = _files(tmp_path / RUN)
    for _ in range(2):  # the second attempt must not train from scratch either
        with pytest.raises(ValueError, match=r"last\.ckpt.*not a readable"):
            _fit_inprocess(tmp_path, monkeypatch, "--ckpt_path", "last")
        assert _files(tmp_path / RUN) == before


def test_missing_init_weights_writes_no_checkpoint(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nothere.ckpt"):
        _fit_inprocess(tmp_path, monkeypatch, "--model.init_weights", "nothere.ckpt")
    assert not list((tmp_path / CKPTS).glob("*.ckpt"))


def test_last_means_furthest_in_training_not_newest_file(tmp_path):
    from badger_graph.callbacks import newest_checkpoint

    def write(name, batches):
        torch.save(
            {"state_dict": {}, "global_step": batches, "badger_graph_train_batches": batches},
            tmp_path / name,
        )

    write("last.ckpt", 60)
    write("interrupted.ckpt", 0)  # written later by a run that trained nothing
    write("best.ckpt", 40)
    assert newest_checkpoint(tmp_path) == tmp_path / "last.ckpt"
    assert newest_checkpoint(tmp_path / "empty") is None
    (tmp_path / "broken.ckpt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="broken.ckpt"):
        newest_checkpoint(tmp_path)


def test_ckpt_path_last_without_checkpoints_starts_a_new_run_and_says_so(tmp_path, capsys):
    os.chdir(tmp_path)
    cli_main(["fit", "--config", _config(), "--trainer.max_steps", "2", "--ckpt_path", "last"])
    assert "no checkpoint to resume" in capsys.readouterr().err
    assert _step(tmp_path / CKPTS / "last.ckpt") == 2


def _config() -> str:
    from .test_faults import CONFIG

    return CONFIG
