"""The README's "Add a task / topology / outer loop" examples run as written."""

import re
import types
from pathlib import Path

import lightning.pytorch as pl
import torch

README = (Path(__file__).parents[1] / "README.md").read_text()


def _example(heading: str) -> types.SimpleNamespace:
    """Execute the first python block after ``heading``; return its names."""
    section = README.split(heading, 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    names: dict = {}
    exec(compile(code, f"README: {heading}", "exec"), names)
    return types.SimpleNamespace(**names)


def test_add_a_task_topology_and_outer_loop_examples(tmp_path):
    from badger_graph import BadgerModule, EpisodeData, ExpertPolicy

    task = _example("### Add a task").SignGame(3)
    topology = _example("### Add a topology").Shifted(shift=1)
    loop = _example("### Add an outer loop").LastWindow(window=3)
    torch.manual_seed(0)
    model = BadgerModule(
        ExpertPolicy(16, 8, 8, 4), topology, task, num_experts=4, inner_steps=5, outer_loop=loop
    )
    life = model.lifetime(1, 6)
    assert life.errors.shape == (5, 6)
    edges, _ = topology(life.state)
    assert edges.shape == (2, 24)  # one out-edge per node, within each agent
    assert bool((life.state.batch[edges[0]] == life.state.batch[edges[1]]).all())
    trainer = pl.Trainer(
        max_steps=3,
        val_check_interval=3,
        check_val_every_n_epoch=None,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    before = [p.detach().clone() for p in model.parameters()]
    trainer.fit(model, EpisodeData(batch_size=8, val_episodes=8, eval_batch_size=8))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert "val/solved" in trainer.callback_metrics  # the task's own metric is logged


def test_add_a_task_runs_from_the_users_own_directory(tmp_path):
    """The README's task file and config, in a scratch directory, trained by `badger fit`."""
    import os
    import subprocess
    import sys

    section = README.split("### Add a task", 1)[1].split("### Add a topology", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    config = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    (tmp_path / "sign_game.py").write_text(code)
    (tmp_path / "sign_game.yaml").write_text(config)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "badger"), "fit",  # the console script
         "--config", "sign_game.yaml", "--trainer.max_steps", "2",
         "--trainer.val_check_interval", "2", "--trainer.enable_progress_bar", "false",
         "--data.val_episodes", "8", "--threads", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs/sign_game/checkpoints/last.ckpt").is_file()  # not runs/guessing_game
    hparams = (tmp_path / "runs/sign_game/logs/version_0/hparams.yaml").read_text()
    assert "sign_game.SignGame" in hparams


def test_add_a_learner_config_trains_and_matches_the_weights(tmp_path, monkeypatch):
    from badger_graph.cli import _lightning_cli

    section = README.split("### Add a learner", 1)[1]
    (tmp_path / "learner.yaml").write_text(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    monkeypatch.chdir(tmp_path)
    cli = _lightning_cli(["fit", "--config", "learner.yaml", "--trainer.fast_dev_run=true",
                          "--trainer.enable_progress_bar=false", "--threads", "1"])  # fmt: skip
    assert type(cli.model.agent).__name__ == "RecurrentLearner"
    weights = sum(p.numel() for p in cli.model.parameters())
    assert abs(weights - 35873) / 35873 < 0.01
