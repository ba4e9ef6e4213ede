"""The benchmark script runs (smoke test; no timing is asserted)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import speed  # noqa: E402


def test_policy_rows_run():
    for topo in ("rand", "attn"):
        row = speed.policy_row(100, topo, backward=True)
        assert row["N"] == 100
        assert row["E"] == 800
        assert row["round_s"] > 0


def test_lifetime_row_runs_with_truncation():
    row = speed.lifetime_row(6, 3)
    assert row["T"] == 6
    assert row["truncate_bptt"] == 3


def test_print_table(capsys):
    speed._print("t", [{"a": 1.0, "b": "x"}])
    assert "| 1 | x |" in capsys.readouterr().out


def test_task_comparison_plays_agent_and_baselines_on_the_same_episodes(tmp_path):
    """benchmarks/tasks.py with untrained weights: one row per strategy, same episodes."""
    import lightning.pytorch as pl
    import task_baselines as task_table

    from badger_graph.cli import build_from_config

    for family, config in (("regression", "task_regression"), ("bandits", "task_bandits")):
        model = build_from_config(str(task_table.ROOT / "configs" / f"{config}.yaml"))
        ckpt = tmp_path / config / "checkpoints" / "best.ckpt"
        ckpt.parent.mkdir(parents=True)
        trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_steps=0)
        trainer.strategy.connect(model)
        trainer.save_checkpoint(ckpt)
        rows = task_table.compare(family, tmp_path, episodes=40, batch=20)
        names = [r["strategy"] for r in rows]
        assert names[0] == "agent"
        assert len(names) == 3
        for r in rows:
            assert r["value"] == r["value"]  # not nan
    rows = task_table.regression_inputs(tmp_path, [1, 5], episodes=16)
    assert [r["m"] for r in rows] == [1, 5]
    assert rows[0]["rls_step10"] < 0.05  # RLS has found a 1-D teacher after 10 points
    assert all(r["agent_step10"] == r["agent_step10"] for r in rows)
