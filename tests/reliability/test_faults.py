"""Fault injection: runs killed, interrupted or poisoned at a training batch lose nothing.

Every test injects one fault kind (``faults.Fault``) into a tiny training run
(``tiny.yaml``: 30 batches, a checkpoint every 5) and checks the outcome against an
uninterrupted run with the same seed: resumed runs end with bit-identical weights and
validation metrics; numerical faults are named and leave the last good checkpoint intact.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import badger, tiny_policy

from badger_graph.checkpoint import load_weights
from badger_graph.cli import cli_main
from badger_graph.errors import NonFiniteError

HERE = Path(__file__).parent
CONFIG = str(HERE / "tiny.yaml")
CKPTS = Path("runs/tiny/checkpoints")


def _fault_arg(kind: str, step: int, times: int = 1, moment: str = "batch_start") -> str:
    args = {"kind": kind, "step": step, "times": times, "moment": moment}
    return "--trainer.callbacks+=" + json.dumps({"class_path": "faults.Fault", "init_args": args})


def _fit_subprocess(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return badger(cwd, "fit", "--config", CONFIG, *args, pythonpath=[HERE])


def _final(run_dir: Path) -> tuple[dict, dict, int]:
    """Weights, validation rows (step -> every logged val metric) and global step of a run.

    A validation that was interrupted and re-run is logged again; the complete one, written
    last, is the one that counts.
    """
    ckpt = torch.load(run_dir / CKPTS / "last.ckpt", map_location="cpu", weights_only=True)
    rows = {}
    for f in sorted((run_dir / "runs/tiny/logs").glob("version_*/metrics.csv")):
        with f.open() as fh:
            for r in csv.DictReader(fh):
                if r.get("val/final_error"):
                    rows[int(r["step"])] = {k: v for k, v in r.items() if k.startswith("val/")}
    return ckpt["state_dict"], rows, ckpt["global_step"]


@pytest.mark.parametrize(
    ("kind", "step", "resume_from"),
    [
        ("sigkill", 12, "last.ckpt"),  # killed between checkpoints: the step-10 checkpoint
        ("sigterm", 12, "interrupted.ckpt"),  # graceful: saved after batch 12
        ("keyboard", 17, "interrupted.ckpt"),  # Ctrl-C before batch 17
        ("error", 23, "interrupted.ckpt"),  # an exception in the middle of the run
    ],
)
def test_interrupted_run_resumes_to_identical_result(tmp_path, reference, kind, step, resume_from):
    _interrupt_and_resume(tmp_path, reference, kind, step, resume_from)


#: exit status of a run stopped by each fault (SIGKILL: killed by signal 9)
EXIT = {
    "sigkill": -9,
    "sigterm": 143,
    "sigint": 130,
    "sigint_twice": 130,
    "keyboard": 130,
    "error": 1,
}


def _interrupt_and_resume(
    tmp_path, reference, kind, step, resume_from, moment="batch_start", extra=()
):
    """Interrupt a run with a fault, resume it with ``--ckpt_path last``, compare.

    ``resume_from``: the checkpoint the interrupted run must have left (``None``: none at
    all, the resumed run starts from scratch).
    """
    killed = _fit_subprocess(tmp_path, _fault_arg(kind, step, moment=moment), *extra)
    assert killed.returncode == EXIT[kind], killed.stderr[-2000:]
    if resume_from is None:
        assert not list((tmp_path / CKPTS).glob("*.ckpt"))  # nothing trained, nothing saved
    else:
        saved = torch.load(tmp_path / CKPTS / resume_from, map_location="cpu", weights_only=True)
        assert saved["global_step"] < 30  # the run did stop early
    if kind in ("sigkill", "sigint_twice") or resume_from is None:
        assert not (tmp_path / CKPTS / "interrupted.ckpt").exists()
    resumed = _fit_subprocess(tmp_path, "--ckpt_path", "last", *extra)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    weights, val_rows, global_step = _final(tmp_path)
    ref_weights, ref_rows, ref_step = reference
    assert global_step == ref_step == 30
    assert weights.keys() == ref_weights.keys()
    for k in weights:
        assert torch.equal(weights[k], ref_weights[k]), k  # bit for bit
    assert sorted(ref_rows) == [9, 19, 29]
    assert val_rows == ref_rows  # every validation, every metric, the same step labels
    # a normal end removes the interrupt checkpoint, so `last` means the finished run
    assert not (tmp_path / CKPTS / "interrupted.ckpt").exists()
    return killed


@pytest.mark.parametrize(
    ("kind", "moment"),
    [
        ("keyboard", "before_backward"),  # Ctrl-C inside the step, before backward
        ("keyboard", "before_optimizer_step"),  # after backward, before the weights change
        ("keyboard", "batch_end"),  # the step is done, the batch not yet closed
        ("keyboard", "batch_end_before_validation"),  # ... and its validation not yet run
        ("keyboard", "validation"),  # in the middle of a validation
        ("sigterm", "before_backward"),
        ("sigterm", "validation"),
    ],
)
def test_interrupt_at_any_moment_resumes_exactly(tmp_path, reference, kind, moment):
    step = 9 if moment.endswith("validation") else 13  # batch 9 is followed by a validation
    moment = moment.removesuffix("_before_validation")
    _interrupt_and_resume(tmp_path, reference, kind, step, "interrupted.ckpt", moment)


def _fit_inprocess(tmp_path, monkeypatch, *args: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))
    cli_main(["fit", "--config", CONFIG, *args])


def test_nan_weights_raise_named_and_keep_last_good_checkpoint(tmp_path, monkeypatch):
    with pytest.raises(NonFiniteError, match=r"messages at inner step 0, round 0") as err:
        _fit_inprocess(tmp_path, monkeypatch, _fault_arg("nan_weights", 7))
    assert err.value.tensor == "messages"
    assert (err.value.step, err.value.round) == (0, 0)
    assert not (tmp_path / CKPTS / "interrupted.ckpt").exists()  # never saves NaN weights
    ckpt = torch.load(tmp_path / CKPTS / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 5
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


@pytest.mark.parametrize(
    ("kind", "tensor"), [("nan_feedback", "task feedback"), ("inf_loss", "loss")]
)
def test_nonfinite_raise_names_the_tensor(tmp_path, monkeypatch, kind, tensor):
    with pytest.raises(NonFiniteError, match=tensor):
        _fit_inprocess(tmp_path, monkeypatch, _fault_arg(kind, 8))
    # the interrupt checkpoint holds the (finite) weights before the bad batch
    ckpt = torch.load(tmp_path / CKPTS / "interrupted.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 8


@pytest.mark.parametrize("kind", ["nan_feedback", "inf_loss"])
def test_nonfinite_skip_finishes_and_counts(tmp_path, monkeypatch, kind):
    _fit_inprocess(tmp_path, monkeypatch, _fault_arg(kind, 8, times=3), "--model.nonfinite", "skip")
    ckpt = torch.load(tmp_path / CKPTS / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["badger_graph_skipped_batches"] == 3
    # Lightning counts a skipped batch as a (no-op) step: 30 batches, 27 weight updates
    assert ckpt["global_step"] == ckpt["badger_graph_train_batches"] == 30
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_same_seed_same_checkpoint(tmp_path, reference):
    """Determinism: a second run of the same config and seed gives the same weights."""
    out = _fit_subprocess(tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    weights, val_error, _ = _final(tmp_path)
    for k in weights:
        assert torch.equal(weights[k], reference[0][k]), k
    assert val_error == reference[1]
    (tmp_path / "other").mkdir()
    other = _fit_subprocess(tmp_path / "other", "--data.seed", "4")
    assert other.returncode == 0, other.stderr[-2000:]
    w2, _, _ = _final(tmp_path / "other")
    assert any(not torch.equal(w2[k], weights[k]) for k in weights)  # the seed matters


# -- checkpoints and configs -------------------------------------------------------------
def test_corrupted_checkpoint_clear_error(tmp_path):
    from badger_graph import BadgerModule, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import FullyConnected

    model = BadgerModule(tiny_policy(), FullyConnected(), GuessingGame(3))
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_weights(model, str(bad))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_weights(model, str(tmp_path / "missing.ckpt"))
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Lightning checkpoint"):
        load_weights(model, str(tmp_path / "other.pt"))
    wider = BadgerModule(ExpertPolicy(32, 8, 8, 4), FullyConnected(), GuessingGame(3))
    torch.save({"state_dict": wider.state_dict()}, tmp_path / "wider.ckpt")
    with pytest.raises(ValueError, match=r"shape mismatches .*checkpoint \(.*32"):
        load_weights(model, str(tmp_path / "wider.ckpt"))
    torch.save(
        {"state_dict": model.state_dict(), "badger_graph_version": "99.0.0"},
        tmp_path / "future.ckpt",
    )
    with pytest.raises(ValueError, match="99.0.0, newer"):
        load_weights(model, str(tmp_path / "future.ckpt"))


def test_config_typo_and_bad_value_named(tmp_path, capsys):
    for args, needle in (
        (["--model.num_expertz", "3"], "num_expertz"),
        (["--model.num_experts", "many"], "num_experts"),
        (["--model.nonfinite", "ignore"], "nonfinite"),
    ):
        with pytest.raises(SystemExit):
            cli_main(["fit", "--config", CONFIG, *args])
        assert needle in capsys.readouterr().err
