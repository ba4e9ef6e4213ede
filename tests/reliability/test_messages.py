"""Hostile input gets an error naming the value, the key or the file — never a raw trace.

Also: a crafted checkpoint cannot run code when loaded, seeds of different key lists never
collide, and the ES outer loop counts a diverging batch once.
"""

from __future__ import annotations

import json
import math
import os
import zlib

import pytest
import torch
from helpers import tiny_policy

from badger_graph import BadgerModule
from badger_graph.checkpoint import load_weights, read_checkpoint
from badger_graph.cli import cli_main
from badger_graph.tasks import GuessingGame
from badger_graph.topologies.base import Topology, all_pairs

from .test_faults import CKPTS, _fit_inprocess, _fit_subprocess


class _RunsCode:
    """Unpickling this object creates the marker file (the classic pickle exploit)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_checkpoint_does_not_run_code(tmp_path, make_module):
    marker = tmp_path / "pwned"
    model = make_module()
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": model.state_dict(), "payload": _RunsCode(str(marker))}, crafted)
    with pytest.raises(ValueError, match="crafted.ckpt") as err:
        load_weights(model, crafted)
    assert not marker.exists()
    assert "weights_only=False" not in str(err.value)
    assert "not loading" in str(err.value)
    # the same file through the command line, as --ckpt_path of a resumed run
    out = _fit_subprocess(tmp_path, "--ckpt_path", str(crafted))
    assert out.returncode != 0
    assert not marker.exists()
    assert "crafted.ckpt" in out.stderr


def test_crafted_snapshot_does_not_run_code(tmp_path):
    from badger_graph.snapshot import FORMAT, load_snapshot

    marker = tmp_path / "pwned"
    crafted = tmp_path / "live.pt"
    torch.save({"format": FORMAT, "snapshot": _RunsCode(str(marker))}, crafted)
    with pytest.raises(ValueError, match="live.pt"):
        load_snapshot(crafted)
    assert not marker.exists()


def test_random_bytes_do_not_advise_unpickling(tmp_path, make_module):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match="junk.ckpt") as err:
        read_checkpoint(junk)
    assert "weights_only" not in str(err.value)


def test_derived_seeds_of_different_key_lists_never_collide():
    from badger_graph.data import train_seed
    from badger_graph.seeds import derive

    assert derive(5) != derive(5, 0)
    assert derive(2**32, 0) != derive(0, 1)
    assert train_seed(0, 1) != train_seed(2**32, 0)
    assert derive("train") != derive(zlib.crc32(b"train"))
    assert derive(0) != derive(0, 0) != derive(0, 0, 0)
    assert derive(2**64) != derive(0, 0, 1)


def test_es_counts_a_diverging_batch_once(tmp_path, monkeypatch):
    from badger_graph.errors import DivergenceError

    es = '{"class_path": "badger_graph.outer.EvolutionStrategy", "init_args": {"population": 4}}'
    args = ["--model.outer_loop", es, "--model.diverged_at", "1e-9"]
    with pytest.raises(DivergenceError, match="for 4 batches in a row at batch 3"):
        _fit_inprocess(tmp_path, monkeypatch, *args, "--model.diverged_after", "4")


def test_val_check_interval_zero_named(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"val_check_interval.*got 0"):
        _fit_inprocess(tmp_path, monkeypatch, "--trainer.val_check_interval", "0")


def test_negative_data_seed_named_by_the_parser(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _fit_inprocess(tmp_path, monkeypatch, "--data.seed", "-1")
    assert "data.seed" in capsys.readouterr().err


def _trained(tmp_path, monkeypatch) -> str:
    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "2")
    return str(tmp_path / CKPTS / "last.ckpt")


def _edit(path: str, out: str, edit) -> str:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, out)
    return out


def test_sweep_on_an_edited_checkpoint_names_file_and_cause(tmp_path, monkeypatch, capsys):
    path = _trained(tmp_path, monkeypatch)

    def wider(ckpt):
        ckpt["hyper_parameters"]["policy"]["init_args"]["hidden_channels"] = 32

    def nonsense(ckpt):
        ckpt["hyper_parameters"]["topology"]["class_path"] = "badger_graph.topologies.Nope"

    for edit, needle in ((wider, "shape"), (nonsense, "badger_graph.topologies.Nope")):
        bad = _edit(path, str(tmp_path / "edited.ckpt"), edit)
        with pytest.raises(SystemExit) as e:
            cli_main(["sweep", "--ckpt_path", bad, "--dims", "1", "--experts", "4"])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "edited.ckpt" in err
        assert needle in err
        assert err.count("Traceback") == 0


def test_nan_weight_in_a_checkpoint_names_file_and_weight(tmp_path, monkeypatch, make_module):
    path = _trained(tmp_path, monkeypatch)

    def poison(ckpt):
        ckpt["state_dict"]["agent.policy.lin_send.weight"][0, 0] = math.nan

    bad = _edit(path, str(tmp_path / "nan.ckpt"), poison)
    with pytest.raises(ValueError, match=r"nan\.ckpt.*agent\.policy\.lin_send\.weight"):
        load_weights(BadgerModule.load_from_checkpoint(path), bad)


def test_state_dict_stored_as_a_string_named(tmp_path, make_module):
    bad = tmp_path / "string.ckpt"
    torch.save({"state_dict": "agent.policy.weight=1"}, bad)
    with pytest.raises(ValueError, match=r"string\.ckpt.*state_dict.*str"):
        load_weights(make_module(), bad)


class _NaNWeights(Topology):
    """A user topology whose edge weights are NaN."""

    def forward(self, state):
        edge_index = all_pairs(state)
        return edge_index, torch.full((edge_index.size(1),), math.nan)


def test_nan_edge_weights_name_the_topology():
    from badger_graph.errors import NonFiniteError

    policy = tiny_policy(aggr="weighted")
    module = BadgerModule(policy, _NaNWeights(), GuessingGame(3), inner_steps=2)
    with pytest.raises(NonFiniteError, match="_NaNWeights"), torch.no_grad():
        module.runner.run(0, 2)


class _IntegerErrors(GuessingGame):
    """A task whose episodes answer integer errors."""

    def reset(self, *args, **kwargs):
        episode = super().reset(*args, **kwargs)
        step = episode.step

        def integer_step(action):
            r = step(action)
            return type(r)(r.error.round().long(), r.feedback, r.signal)

        episode.step = integer_step
        return episode


class _DetachedErrors(GuessingGame):
    """A task whose errors carry no gradient."""

    def reset(self, *args, **kwargs):
        episode = super().reset(*args, **kwargs)
        step = episode.step

        def detached_step(action):
            r = step(action)
            return type(r)(r.error.detach(), r.feedback, r.signal)

        episode.step = detached_step
        return episode


def test_integer_task_errors_named(make_module):
    module = make_module(task=_IntegerErrors(3), inner_steps=2)
    want = r"StepResult\.error must be a floating-point tensor, got torch\.int64"
    with pytest.raises(ValueError, match=want):
        module.runner.run(0, 2)


def test_detached_task_errors_named(make_module):
    module = make_module(task=_DetachedErrors(3), inner_steps=2)
    with pytest.raises(ValueError, match=r"_DetachedErrors.*no gradient"):
        module.outer_loop.training_step(module, 0, 2)


class _NaNChance(GuessingGame):
    def chance_level(self, num_outputs=None):
        return math.nan


def test_nan_chance_level_named(make_module):
    with pytest.raises(ValueError, match=r"_NaNChance.*chance_level.*nan"):
        make_module(task=_NaNChance(3))


def test_too_many_experts_for_memory_named_before_allocating(make_module):
    module = make_module(inner_steps=2)
    with pytest.raises(MemoryError, match=r"1,024 agents of 100,000 experts.*eval_batch_size"):
        module.runner.run(0, 1024, num_experts=100_000)


def test_json_config_key_named_when_data_seed_is_huge_negative(tmp_path, monkeypatch, capsys):
    # a config file (not a flag) with a bad seed is named by its key as well
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(json.dumps({"data": {"seed": -5}}))
    with pytest.raises(SystemExit):
        _fit_inprocess(tmp_path, monkeypatch, "--config", str(cfg))
    assert "data.seed" in capsys.readouterr().err
