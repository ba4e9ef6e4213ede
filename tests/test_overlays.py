import pytest
import yaml

from badger_graph.cli import build_from_config, expand_overlays


def _write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_overlay_stacks_on_its_base(tmp_path):
    base = {
        "model": {
            "policy": {
                "class_path": "badger_graph.ExpertPolicy",
                "init_args": {"hidden_channels": 16, "message_channels": 8, "input_channels": 8},
            },
            "topology": {"class_path": "badger_graph.topologies.FullyConnected"},
            "task": {
                "class_path": "badger_graph.tasks.GuessingGame",
                "init_args": {"num_outputs": 3},
            },
            "num_experts": 3,
        }
    }
    _write(tmp_path / "base.yaml", base)
    (tmp_path / "exp").mkdir()
    middle = _write(
        tmp_path / "exp" / "middle.yaml", {"base": "../base.yaml", "model": {"num_experts": 5}}
    )
    top = _write(
        tmp_path / "exp" / "top.yaml",
        {"base": "middle.yaml", "model": {"task": {"init_args": {"num_outputs": 4}}}},
    )
    args = expand_overlays(["fit", "--config", str(top), "--trainer.max_steps", "3"])
    assert args[0] == "fit"
    assert args[-2:] == ["--trainer.max_steps", "3"]
    assert args[1:3] == ["--config", str(tmp_path / "exp" / ".." / "base.yaml")]
    model = build_from_config(str(top))
    assert model.runner.num_experts == 5  # from the middle overlay
    assert model.runner.task.num_outputs == 4  # from the top one
    assert model.agent.policy.hidden_channels == 16  # from the base
    assert build_from_config(str(middle)).runner.task.num_outputs == 3


def test_a_missing_base_or_a_loop_is_named(tmp_path):
    lonely = _write(tmp_path / "lonely.yaml", {"base": "nowhere.yaml"})
    with pytest.raises(ValueError, match="nowhere.yaml.*the base of.*lonely.yaml"):
        expand_overlays(["--config", str(lonely)])
    _write(tmp_path / "a.yaml", {"base": "b.yaml"})
    _write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(ValueError, match="loop"):
        expand_overlays([f"--config={tmp_path / 'a.yaml'}"])


def test_every_shipped_overlay_names_an_existing_base():
    from pathlib import Path

    root = Path(__file__).parents[1] / "configs"
    overlays = [p for p in root.rglob("*.yaml") if "base" in (yaml.safe_load(p.read_text()) or {})]
    assert overlays
    for path in overlays:
        expanded = expand_overlays(["--config", str(path)])
        assert Path(expanded[1]).is_file()
        assert "base" not in (yaml.safe_load(expanded[-1]) or {})


def test_an_overlay_runs_in_its_own_folder_not_its_bases(tmp_path):
    """`base: guessing_game` must not carry runs/guessing_game into another experiment."""
    from badger_graph.cli import _lightning_cli

    mine = tmp_path / "my_experiment.yaml"
    mine.write_text("base: guessing_game\nmodel: {num_experts: 4}\n")
    cli = _lightning_cli(expand_overlays(["--config", str(mine)]), run=False)
    assert cli.trainer.default_root_dir == "runs/my_experiment"
    assert cli.model.hparams.num_experts == 4
    named = tmp_path / "named.yaml"
    named.write_text("base: guessing_game\ntrainer: {default_root_dir: elsewhere, max_steps: 7}\n")
    cli = _lightning_cli(expand_overlays(["--config", str(named)]), run=False)
    assert (cli.trainer.default_root_dir, cli.trainer.max_steps) == ("elsewhere", 7)
    # a command-line folder still wins
    args = expand_overlays(["--config", str(mine), "--trainer.default_root_dir", "cli_dir"])
    assert _lightning_cli(args, run=False).trainer.default_root_dir == "cli_dir"
