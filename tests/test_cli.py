import csv
import math
from pathlib import Path

import pytest
import torch
import yaml

from badger_graph import BadgerModule
from badger_graph.cli import _lightning_cli, build_from_config, cli_main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def _cfg(name: str) -> str:
    return str(next(c for c in CONFIGS if c.name == name))


SMALL = ["--data.val_episodes", "16", "--data.test_episodes", "16", "--data.batch_size", "8"]


def _tiny_fit(tmp_path, config: str, steps: int = 2, *extra: str) -> str:
    """Train a few batches of ``config`` in ``tmp_path``; return the last checkpoint."""
    cli_main(
        [
            "fit",
            "--config",
            _cfg(config),
            "--trainer.max_steps",
            str(steps),
            "--trainer.val_check_interval",
            str(steps),
            *extra,
            *SMALL,
        ]
    )
    name = config.removesuffix(".yaml")
    return str(tmp_path / f"runs/{name}/checkpoints/last.ckpt")


def _test(cfg: str, ckpt, *extra: str) -> None:
    cli_main(["test", "--config", cfg, "--ckpt_path", str(ckpt), *extra, *SMALL])


def test_configs_exist():
    names = {c.name for c in CONFIGS}
    assert {
        "guessing_game.yaml",
        "guessing_game_fast.yaml",
        "guessing_game_random.yaml",
        "guessing_game_attention.yaml",
    } <= names


#: the experiment folders (real datasets, the generalist): overlays and learners of all kinds
FOLDERS = sorted(
    p
    for folder in ("datasets", "generalist")
    for p in (Path(__file__).parents[1] / "configs" / folder).glob("*.yaml")
)


@pytest.mark.parametrize("config", CONFIGS + FOLDERS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_fast_dev_run(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = _lightning_cli(["fit", "--config", str(config), "--trainer.fast_dev_run=true", *SMALL])
    assert cli.trainer.state.finished
    assert cli.trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1  # one batch ran
    assert math.isfinite(float(cli.trainer.callback_metrics["train_err"]))
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())


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
    model = yaml.safe_load(first)["model"]
    if model.get("learner"):  # a learner config (RL2, Transformer, MAML): no policy
        assert model["learner"]["class_path"].startswith("badger_graph.learner.")
    else:
        policy = model["policy"]["class_path"]
        assert policy in ("badger_graph.ExpertPolicy", "badger_graph.policies.RolePolicies")


def test_fit_then_test_prints_error_and_checkpoint_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg("guessing_game.yaml")
    ckpt = Path(_tiny_fit(tmp_path, "guessing_game.yaml", 3))
    assert ckpt.exists()
    assert (tmp_path / "runs/guessing_game/checkpoints/best.ckpt").exists()
    capsys.readouterr()
    _test(cfg, ckpt)
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
    cfg = _cfg("guessing_game.yaml")
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
    cfg = _cfg("guessing_game.yaml")
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
    """Through the CLI the chunked outer loop is really used: same seed and batch, other
    gradients than backprop through the whole lifetime, hence other weights after one step."""
    monkeypatch.chdir(tmp_path)
    cfg = _cfg("guessing_game.yaml")
    weights = {}
    for name, loop in (
        ("whole", []),
        (
            "chunks",
            [
                "--model.outer_loop",
                "badger_graph.outer.TruncatedBPTT",
                "--model.outer_loop.steps",
                "5",
            ],
        ),
    ):  # noqa: E501
        cli = _lightning_cli(["fit", "--config", cfg, *loop, "--trainer.fast_dev_run=true", *SMALL])
        assert type(cli.model.outer_loop).__name__ == ("TruncatedBPTT" if loop else "Backprop")
        assert cli.trainer.global_step == 1
        weights[name] = torch.cat([p.detach().flatten() for p in cli.model.parameters()])
    assert torch.isfinite(weights["chunks"]).all()
    assert not torch.equal(weights["whole"], weights["chunks"])


def test_sweep_on_tiny_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = _tiny_fit(
        tmp_path,
        "fig7_d3.yaml",
        2,
        "--model.policy.init_args.hidden_channels",
        "8",  # the ports follow (linked)
    )
    cli_main(
        [
            "sweep",
            "--ckpt_path",
            str(ckpt),
            "--out",
            "sw",
            "--episodes",
            "8",
            "--dims",
            "1,2,4",
            "--experts",
            "1,3",
        ]
    )
    lines = (tmp_path / "sw/dims.csv").read_text().splitlines()
    assert lines[0] == "d,experts,error,chance,mean_baseline"
    assert [row.split(",")[:2] for row in lines[1:]] == [["1", "20"], ["2", "20"], ["4", "20"]]
    assert len((tmp_path / "sw/experts.csv").read_text().splitlines()) == 3
    assert (tmp_path / "sw/dims.png").stat().st_size > 5000
    assert (tmp_path / "sw/experts.png").exists()


def test_analyze_and_eval_growth_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg("guessing_game.yaml")
    ckpt = _tiny_fit(tmp_path, "guessing_game.yaml")
    capsys.readouterr()
    _test(
        cfg,
        ckpt,
        "--model.eval_num_experts",
        "5",
        "--model.eval_growth",
        "[{step: 10, count: 3, mode: clone}]",
    )
    assert "test/final_error" in capsys.readouterr().out
    cli_main(["analyze", "--config", cfg, "--ckpt_path", ckpt, "--out", "an", "--episodes", "4"])
    out = tmp_path / "an"
    metrics = __import__("json").loads((out / "metrics.json").read_text())
    assert set(metrics["out_strength"]) == {"0", "1", "2"}
    assert len(metrics["growth"]) == 5
    for name in ("messages", "communication", "heatmap", "growth"):
        assert (out / f"{name}.png").stat().st_size > 5000
    assert len(list((out / "graphs").glob("*.graphml"))) == 21
    with pytest.raises(ValueError, match="growth at step 25"):
        _test(cfg, ckpt, "--model.eval_growth", "[{step: 25, count: 3}]")


def test_run_directory_is_one_flag(tmp_path, monkeypatch):
    """Every checkpoint and log of a run goes under --trainer.default_root_dir."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "elsewhere" / "x"
    cli_main(
        [
            "fit",
            "--config",
            _cfg("guessing_game.yaml"),
            "--trainer.max_steps",
            "4",
            "--trainer.val_check_interval",
            "2",
            "--checkpoint_every",
            "3",
            "--trainer.default_root_dir",
            str(run),
            *SMALL,
        ]
    )
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert written, "nothing written"
    assert all(w.startswith("elsewhere/x/") for w in written), sorted(written)
    assert {"best.ckpt", "last.ckpt"} <= {p.name for p in (run / "checkpoints").iterdir()}
    assert (run / "logs" / "version_0" / "metrics.csv").exists()
    with pytest.raises(ValueError, match="checkpoint_every"):
        cli_main(["fit", "--config", _cfg("guessing_game.yaml"), "--checkpoint_every", "0"])


def test_hidden_channels_set_once(tmp_path):
    """The ports' state width follows the policy's (linked arguments)."""
    model = build_from_config(_cfg("fig7_d3.yaml"))
    assert model.agent.ports.hidden_channels == model.agent.policy.hidden_channels == 64
    with pytest.raises(SystemExit):
        cli_main(
            [
                "fit",
                "--config",
                _cfg("fig7_d3.yaml"),
                "--model.ports.init_args.hidden_channels",
                "8",
                "--print_config",
            ]
        )


def test_config_wins_over_checkpoint_hyperparameters(tmp_path, monkeypatch, capsys):
    """`badger test --config A --ckpt_path B` runs A's model and task with B's weights."""
    monkeypatch.chdir(tmp_path)
    ckpt = _tiny_fit(tmp_path, "guessing_game.yaml")
    capsys.readouterr()
    with pytest.warns(UserWarning, match=r"other settings of \['inner_steps'\]"):
        _test(_cfg("guessing_game.yaml"), ckpt, "--model.inner_steps", "5")
    assert "test/final_error" in capsys.readouterr().out


def test_checkpoint_that_does_not_fit_the_config_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = _tiny_fit(
        tmp_path, "guessing_game.yaml", 2, "--model.policy.init_args.hidden_channels", "8"
    )
    with pytest.raises(ValueError, match=r"does not fit this model.*checkpoint \(24, 8\) vs model"):
        _test(_cfg("guessing_game.yaml"), ckpt)


def test_best_checkpoint_follows_the_objective(tmp_path, monkeypatch):
    """best.ckpt is chosen by val/loss: the mean error for the Fig. 9 objective, not the
    last-step error its warm-up optimizes."""
    import csv

    monkeypatch.chdir(tmp_path)
    ckpt = _tiny_fit(tmp_path, "guessing_game_fast.yaml", 4, "--model.warmup_steps", "2")
    best = torch.load(Path(ckpt).with_name("best.ckpt"), map_location="cpu", weights_only=False)
    assert any("'monitor': 'val/loss'" in key for key in best["callbacks"])
    log = tmp_path / "runs/guessing_game_fast/logs/version_0/metrics.csv"
    rows = [r for r in csv.DictReader(log.open()) if r.get("val/loss")]
    assert rows
    assert all(float(r["val/loss"]) == float(r["val/mean_error"]) for r in rows)


def test_matrix_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ckpt = _tiny_fit(tmp_path, "task_mixture.yaml", 2)
    model = f"mix={_cfg('task_mixture.yaml')}:{ckpt}"
    families = "guessing,bandits,regression"
    cli_main(["matrix", "--model", model, "--families", families, "--episodes", "8", "--out", "m"])
    lines = (tmp_path / "m/matrix.csv").read_text().splitlines()
    assert lines[0] == "trained_on,family,agent,best_baseline,baseline,relative,chance,experts,note"
    assert [row.split(",")[:2] for row in lines[1:]] == [
        ["mix", "guessing"],
        ["mix", "bandits"],
        ["mix", "regression"],
    ]
    assert (tmp_path / "m/matrix.png").stat().st_size > 5000
    for argv, match in (
        (["--model", "no-separator"], "NAME=CONFIG:CKPT"),
        (["--model", model, "--families", "chess"], "chess"),
        (["--model", model, "--episodes", "0"], "--episodes must be >= 1"),
    ):
        with pytest.raises(SystemExit):
            cli_main(["matrix", *argv])
        assert match in capsys.readouterr().err


def test_matrix_gives_a_model_with_fewer_experts_than_outputs_one_per_output(tmp_path, monkeypatch):
    # the shipped regression model has one expert; bandits and guessing have three outputs
    monkeypatch.chdir(tmp_path)
    ckpt = _tiny_fit(tmp_path, "task_regression.yaml", 2)
    model = f"reg={_cfg('task_regression.yaml')}:{ckpt}"
    cli_main(
        [
            "matrix",
            "--model",
            model,
            "--families",
            "regression,bandits,guessing",
            "--episodes",
            "4",
            "--out",
            "m",
        ]
    )
    rows = list(csv.DictReader((tmp_path / "m/matrix.csv").open()))
    assert {r["family"]: int(r["experts"]) for r in rows} == {
        "regression": 1,
        "bandits": 3,
        "guessing": 3,
    }
    assert all(math.isfinite(float(r["agent"])) for r in rows)


@pytest.mark.parametrize(
    ("config", "metric"),
    [
        ("task_bandits.yaml", "val/cumulative_regret"),
        ("task_moving_target.yaml", "val/after_jump_error"),
        ("task_classification.yaml", "val/late_accuracy"),
    ],
)
def test_task_metrics_are_logged(config, metric, tmp_path, monkeypatch):
    import csv

    monkeypatch.chdir(tmp_path)
    _tiny_fit(tmp_path, config, 2)
    name = config.removesuffix(".yaml")
    log = tmp_path / f"runs/{name}/logs/version_0/metrics.csv"
    rows = [r for r in csv.DictReader(log.open()) if r.get(metric)]
    assert rows
    assert all(float(r[metric]) >= 0 for r in rows)


def test_last_checkpoint_holds_the_final_weights(tmp_path, monkeypatch):
    """A run that stops between save points still leaves its final weights in last.ckpt."""
    monkeypatch.chdir(tmp_path)
    cli_main(
        [
            "fit",
            "--config",
            _cfg("guessing_game.yaml"),
            "--trainer.max_steps",
            "7",
            "--trainer.val_check_interval",
            "5",
            "--checkpoint_every",
            "3",
            *SMALL,
        ]
    )
    last = tmp_path / "runs/guessing_game/checkpoints/last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 7
