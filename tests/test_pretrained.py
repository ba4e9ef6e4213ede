"""Shipped configs and pretrained models by name (``badger_graph.pretrained``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from badger_graph import pretrained
from badger_graph.cli import expand_overlays
from badger_graph.errors import ConfigError


def test_every_shipped_checkpoint_has_a_name_a_config_and_a_page():
    shipped = sorted(pretrained.CHECKPOINTS.rglob("*.ckpt"))
    models = pretrained.available()
    assert len(models) == len(shipped)  # no checkpoint without its config
    root = Path(__file__).parents[1]
    for m in models:
        assert pretrained.config_path(m.config).is_file()
        assert (root / m.where).is_file(), m.where
        assert m.command == f"badger test --config {m.config} --ckpt_path pretrained"
    names = {m.name for m in models}
    assert {"fig7", "fig7_stage1", "task_bandits", "compare/bandits_badger"} <= names


def test_configs_by_name_and_alias_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pretrained.config_path("fig6") == pretrained.configs_dir() / "guessing_game.yaml"
    assert pretrained.config_path("compare/bandits_rnn").name == "bandits_rnn.yaml"
    argv = expand_overlays(["fit", "--config", "guessing_game_fast"])
    # an overlay by name: its bases first (the root base, then guessing_game), then its lines
    root = pretrained.configs_dir()
    assert argv[:3] == ["fit", "--config", str(root / "base/badger.yaml")]
    assert argv[3] == "--config"
    assert "max_steps: 3000" in argv[4]
    assert "objective: mean" in argv[-1]
    assert "default_root_dir: runs/guessing_game_fast" in argv[-1]
    # a shipped config in a folder runs in runs/<its name>, folder included
    argv = expand_overlays(["fit", "--config", "compare/bandits_rnn"])
    assert "default_root_dir: runs/compare/bandits_rnn" in argv[-1]
    with pytest.raises(ConfigError, match="no config file or shipped config named 'nope'") as e:
        expand_overlays(["fit", "--config", "nope"])
    assert "fig6" in str(e.value)
    assert "compare/bandits_badger" in str(e.value)


def test_ckpt_path_pretrained_names_the_model_of_the_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = expand_overlays(["test", "--config", "task_bandits", "--ckpt_path", "pretrained"])
    assert argv[-2:] == ["--ckpt_path", str(pretrained.CHECKPOINTS / "tasks/task_bandits.ckpt")]
    argv = expand_overlays(["test", "--config", "fig7", "--ckpt_path=pretrained"])
    assert argv[-1] == str(pretrained.CHECKPOINTS / "fig7.ckpt")
    argv = expand_overlays(["test", "--config", "fig6", "--ckpt_path", "pretrained"])
    assert argv[-1] == str(pretrained.CHECKPOINTS / "guessing_game.ckpt")
    with pytest.raises(ConfigError, match="no pretrained model of config 'guessing_game_mixed'"):
        expand_overlays(["test", "--config", "guessing_game_mixed", "--ckpt_path", "pretrained"])
    with pytest.raises(ConfigError, match="needs --config"):
        expand_overlays(["test", "--ckpt_path", "pretrained"])


def test_load_by_name_and_unknown_names_listed():
    model = pretrained.load("task_bandits")
    assert model.runner.task.__class__.__name__ == "BernoulliBandits"
    assert pretrained.get("fig6").name == "guessing_game"  # a figure's name: its config's model
    assert pretrained.get("fig9").name == "guessing_game_fast"
    assert pretrained.get("fig7").name == "fig7"
    with pytest.raises(ConfigError, match="no pretrained model named 'fig8'") as e:
        pretrained.get("fig8")
    assert "fig7_stage1" in str(e.value)


def test_init_weights_named_in_configs_resolve_to_the_installed_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the Fig. 7 configs spell a path relative to a clone
    got = pretrained.resolve_checkpoint("badger_graph/checkpoints/fig7_stage1.ckpt")
    assert got == str(pretrained.CHECKPOINTS / "fig7_stage1.ckpt")
    assert pretrained.resolve_checkpoint("fig7_stage1") == got
    assert pretrained.resolve_checkpoint("elsewhere/x.ckpt") == "elsewhere/x.ckpt"
