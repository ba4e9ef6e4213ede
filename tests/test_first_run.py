"""A first run prints no warning a user must decode; TensorBoard event files on request."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import badger

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "tests" / "reliability" / "tiny.yaml")


def _badger(tmp_path: Path, *args: str) -> str:
    """``badger ARGS`` in a fresh process with Python's default warning filters."""
    done = badger(tmp_path, *args)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    return out


def test_fit_test_sweep_analyze_print_no_warning(tmp_path):
    fit = _badger(tmp_path, "fit", "--config", TINY, "--trainer.max_steps", "4",
                  "--trainer.val_check_interval", "2", "--threads", "1")  # fmt: skip
    ckpt = str(tmp_path / "runs/tiny/checkpoints/last.ckpt")
    test = _badger(tmp_path, "test", "--config", TINY, "--ckpt_path", ckpt, "--threads", "1")
    sweep = _badger(tmp_path, "sweep", "--episodes", "4", "--dims", "1,3", "--experts", "3",
                    "--out", "sweep")  # fmt: skip
    analyze = _badger(tmp_path, "analyze", "--config", "fig7", "--ckpt_path", "pretrained",
                      "--episodes", "4", "--out", "analyze")  # fmt: skip
    es = _badger(tmp_path, "fit", "--config", "guessing_game_es", "--trainer.max_steps", "2",
                 "--data.batch_size", "4", "--model.outer_loop.init_args.population", "4",
                 "--data.val_episodes", "8", "--data.test_episodes", "8",
                 "--checkpoint_every", "1", "--threads", "1")  # fmt: skip
    runs = (("fit", fit), ("test", test), ("sweep", sweep), ("analyze", analyze), ("es", es))
    for name, out in runs:
        # a warning is a line naming a category, a tip, or a source location (Lightning's
        # rank_zero_warn prints "file.py:401: message" without the word Warning)
        noisy = [
            line
            for line in out.splitlines()
            if "Warning" in line or "Tip:" in line or re.search(r"\.py:\d+: ", line)
        ]
        assert not noisy, f"badger {name}: {noisy}"
    assert "test/final_error" in test


def test_tensorboard_writes_event_files_beside_the_csv_logs(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _badger(tmp_path, "fit", "--config", TINY, "--trainer.max_steps", "4", "--threads", "1",
            "--trainer.val_check_interval", "2", "--tensorboard", "true")  # fmt: skip
    run = tmp_path / "runs/tiny"
    assert (run / "logs/version_0/metrics.csv").is_file()  # the CSV logs stay
    events = EventAccumulator(str(run / "tensorboard/version_0"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert "val/loss" in scalars
    assert [e.step for e in events.Scalars("val/loss")] == [1, 3]  # batches 2 and 4


def test_tensorboard_without_the_package_is_a_named_error(tmp_path, monkeypatch):
    import importlib.util

    from badger_graph import cli
    from badger_graph.errors import ConfigError

    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "tensorboard" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError, match=r"pip install 'badger_graph\[tensorboard\]'"):
        cli._tensorboard_logger(tmp_path)
