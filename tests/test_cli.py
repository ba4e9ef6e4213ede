from pathlib import Path

import pytest
import torch
import yaml

from badger_graph import BadgerModule
from badger_graph.cli import build_from_config, cli_main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
SMALL = ["--data.val_episodes", "16", "--data.test_episodes", "16", "--data.batch_size", "8"]


def test_configs_exist():
    names = {c.name for c in CONFIGS}
    assert {
        "guessing_game.yaml",
        "guessing_game_fast.yaml",
        "guessing_game_random.yaml",
        "guessing_game_attention.yaml",
    } <= names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_fast_dev_run(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", str(config), "--trainer.fast_dev_run=true", *SMALL])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_print_config_round_trips(config, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", str(config), "--print_config"])
    first = capsys.readouterr().out
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(first)
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", str(dumped), "--print_config"])
    assert capsys.readouterr().out == first
    assert yaml.safe_load(first)["model"]["policy"]["class_path"] == "badger_graph.ExpertPolicy"


def test_fit_then_test_prints_error_and_checkpoint_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS[[c.name for c in CONFIGS].index("guessing_game.yaml")])
    cli_main(
        [
            "fit",
            "--config",
            cfg,
            "--trainer.max_steps",
            "3",
            "--trainer.val_check_interval",
            "3",
            *SMALL,
        ]
    )
    ckpt = tmp_path / "runs/guessing_game/checkpoints/last.ckpt"
    assert ckpt.exists()
    assert (tmp_path / "runs/guessing_game/checkpoints/best.ckpt").exists()
    capsys.readouterr()
    cli_main(["test", "--config", cfg, "--ckpt_path", str(ckpt), *SMALL])
    assert "test/final_error" in capsys.readouterr().out
    # standalone loading rebuilds the injected modules from the saved config
    model = BadgerModule.load_from_checkpoint(ckpt)
    assert model.hparams.num_experts == 3
    # ... and the weights load into a bigger agent
    big = build_from_config(cfg, str(ckpt))
    with torch.no_grad():
        life = big.lifetime(seed=1, batch_size=4, num_experts=12)
    assert life.actions.shape == (20, 4, 3)
    # rollout figure
    out = tmp_path / "rollout.png"
    cli_main(
        ["rollout", "--config", cfg, "--ckpt_path", str(ckpt), "--out", str(out), "--episodes", "3"]
    )
    assert out.stat().st_size > 10_000


def test_bad_config_values_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS[0])
    with pytest.raises(ValueError, match="inner_steps"):
        cli_main(
            ["fit", "--config", cfg, "--model.inner_steps", "0", "--trainer.fast_dev_run=true"]
        )
    with pytest.raises(ValueError, match="out-degree k=3"):
        cli_main(
            [
                "fit",
                "--config",
                cfg,
                "--model.topology",
                "badger_graph.topologies.RandomOutDegree",
                "--model.topology.k",
                "3",
                "--trainer.fast_dev_run=true",
            ]
        )


def test_unknown_topology_and_key_rejected(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS[0])
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", cfg, "--model.topology", "badger_graph.topologies.Bogus"])
    assert "Bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", cfg, "--model.policy.init_args.aggr", "max"])
    assert "max" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", cfg, "--model.no_such_key", "1"])
    assert "no_such_key" in capsys.readouterr().err


def test_truncated_bptt_trains_through_trainer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS[[c.name for c in CONFIGS].index("guessing_game.yaml")])
    cli_main(["fit", "--config", cfg, "--model.truncate_bptt", "5",
              "--trainer.gradient_clip_val", "null", "--trainer.fast_dev_run=true", *SMALL])
