"""The benchmark script runs (smoke test; no timing is asserted)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import pytest  # noqa: E402
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


def test_launch_count_row():
    """Eager ops per step against the kernels of the captured step (Fig. 6 setup)."""
    import launch_count

    row = launch_count.row("Fig. 6")
    assert row["captured"]
    assert row["eager ops / step, fwd+bwd"] > row["eager ops / step, no grad"] > 0
    assert 0 < row["compiled kernels, fwd+bwd"] < row["eager ops / step, fwd+bwd"]
    assert row["task ops / step"] > 0


def test_print_table(capsys):
    speed._print("t", [{"a": 1.0, "b": "x"}])
    assert "| 1 | x |" in capsys.readouterr().out


def test_task_comparison_plays_agent_and_baselines_on_the_same_episodes(tmp_path):
    """benchmarks/task_baselines.py, untrained weights: one row per strategy, same episodes."""
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
        assert names[1:] == list(model.runner.task.baselines())
        for r in rows:
            assert r["value"] == r["value"]  # not nan
            assert len(r["curve"]) == model.runner.inner_steps
            assert abs(sum(r["curve"]) / len(r["curve"]) - r["mean_error"]) < 1e-4
    rows = task_table.regression_inputs(tmp_path, [1, 5], episodes=16)
    assert [r["m"] for r in rows] == [1, 5]
    assert rows[0]["rls_step10"] < 0.05  # RLS has found a 1-D teacher after 10 points
    assert all(r["agent_step10"] == r["agent_step10"] for r in rows)


def test_sweep_curves_side_by_side(tmp_path, capsys, monkeypatch):
    import fig7_curves

    for name, errors in (("a", (0.1, 0.2)), ("b", (0.3, 0.4))):
        folder = tmp_path / name
        folder.mkdir()
        for axis, key, xs in (("dims", "d", (1, 3)), ("experts", "experts", (20, 80))):
            lines = ["d,experts,error,chance,mean_baseline"]
            for x, e in zip(xs, errors, strict=True):
                d, n = (x, 20) if key == "d" else (3, x)
                lines.append(f"{d},{n},{e},1.0,0.5")
            (folder / f"{axis}.csv").write_text("\n".join(lines) + "\n")
    argv = ["fig7_curves.py", "--curve", f"A=B={tmp_path / 'a'}", "--curve", f"C={tmp_path / 'b'}"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "out")])
    fig7_curves.main()
    out = capsys.readouterr().out
    assert "| d | A=B | C |" in out  # the label may hold '='; the folder is after the last one
    assert "| 3 | 0.2000 | 0.4000 |" in out
    assert "| 80 | 0.2000 | 0.4000 |" in out
    assert (tmp_path / "out" / "dims.png").stat().st_size > 0
    assert (tmp_path / "out" / "experts.png").stat().st_size > 0


def test_error_curves_plot_one_line_per_strategy(tmp_path):
    import matplotlib.image

    from badger_graph.plots import plot_curves

    rows = [{"label": "agent", "errors": [1.0, 0.1, 0.01]}, {"label": "rls", "errors": [1, 1, 1]}]
    out = plot_curves(rows, tmp_path / "curves" / "regression", title="regression")
    assert out == tmp_path / "curves" / "regression.png"
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 100
    assert image.shape[1] > 100


def test_compare_learners_table_with_a_learner_that_cannot_run(tmp_path, monkeypatch, capsys):
    """Both learners of a family, trained 2 batches each, on the same episodes and points."""
    import compare_learners

    from badger_graph.cli import cli_main
    from badger_graph.comparison import FAMILIES, compare_family, family_table
    from badger_graph.comparison.plots import plot_steps

    root = Path(__file__).parents[1]
    monkeypatch.chdir(tmp_path)
    for learner in ("badger", "rnn"):
        config = root / "configs" / "compare" / f"guessing_{learner}.yaml"
        cli_main(["fit", "--config", str(config), "--trainer.max_steps", "2",
                  "--trainer.enable_progress_bar", "false", "--data.batch_size", "8",
                  "--data.val_episodes", "8", "--data.eval_batch_size", "8"])  # fmt: skip
    result = compare_family("guessing", tmp_path / "runs/compare", 12, 6)
    cells = {(r["strategy"], r["point"]): r for r in result.rows}
    points = [p.label for p in FAMILIES["guessing"].points]
    for learner in ("badger", "rnn"):
        assert cells[(learner, points[0])]["se"] > 0
        assert result.info[learner]["batches"] == 2
    assert "mean" in cells[("badger", "d=5")]  # BADGER plays more outputs with more experts
    assert cells[("rnn", "d=5")]["note"] == "cannot run"  # the GRU's width is fixed
    assert any("guessing_transformer" in m for m in result.missing)  # config, no run
    text = family_table("guessing", result.rows, result.info)
    assert "n/a" in text
    assert "monolithic (RL2) [36,156 w, 2 batches]" in text
    assert plot_steps("guessing", result.curves, tmp_path).stat().st_size > 1000
    # the command line over it: the same table, the CSV and the figure
    argv = ["compare_learners.py", "--families", "guessing", "--episodes", "12", "--batch", "6",
            "--out", "out"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    compare_learners.main()
    captured = capsys.readouterr()
    assert text in captured.out
    assert "guessing_transformer" in captured.err  # the missing run is named, left out
    assert (tmp_path / "out" / "guessing.csv").read_text().count("\n") == len(result.rows) + 1
    assert (tmp_path / "out" / "guessing_steps.png").is_file()


def test_compare_family_without_any_run_names_the_folder(tmp_path):
    from badger_graph.comparison import compare_family

    with pytest.raises(FileNotFoundError, match="no run of family 'guessing'"):
        compare_family("guessing", tmp_path, 4, 4)
    with pytest.raises(ValueError, match="unknown family 'guesing'; known: guessing, fig7"):
        compare_family("guesing", tmp_path, 4, 4)


def test_state_axis_plays_badger_at_several_expert_counts(tmp_path, monkeypatch, capsys):
    """benchmarks/state_axis.py on the shipped bandits models, a few episodes."""
    import state_axis

    argv = ["state_axis.py", "--episodes", "8", "--batch", "8", "--experts", "5,12",
            "--out", str(tmp_path)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    state_axis.main()
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| BADGER, trained on 6")]
    assert [r.split("|")[2].strip() for r in rows] == ["5", "12"]
    assert [r.split("|")[3].strip() for r in rows] == ["320", "768"]  # experts x 64
    assert "| monolithic (RL2) | — | 99 |" in out
    gru = "| RL2 at the state of 10 experts (GRU 640, tuned settings) | — | 640 | 1,268,485 |"
    assert gru in out  # a GRU matched to BADGER's state, not its weights
    assert (tmp_path / "bandits_state.png").stat().st_size > 1000


def test_compare_curves_reads_logs_and_finds_the_final_level(tmp_path, monkeypatch, capsys):
    import compare_curves

    from badger_graph.comparison.runs import at_seconds, reached, read_log

    log = tmp_path / "bandits_x.metrics.csv"
    log.write_text(
        "epoch,step,train/seconds,val/loss\n0,9,2.0,\n0,9,,0.5\n0,19,4.0,\n0,19,,0.2\n"
        "0,29,6.0,\n0,29,,0.19\n"
    )
    val, seconds = read_log(log)
    assert val == [(9, 0.5), (19, 0.2), (29, 0.19)]
    assert at_seconds(14, seconds) == 3.0
    assert reached(val) == 19  # 0.2 is within 1/0.95 of 0.19
    argv = ["compare_curves.py", "--runs", str(tmp_path), "--out", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", argv)
    compare_curves.main()
    assert "| bandits_x | 3 | 0.19 | 30 | 19 | 6 |" in capsys.readouterr().out
    assert (tmp_path / "out" / "bandits_curves.png").stat().st_size > 1000


def test_compare_seeds_pairs_seeds_on_the_same_episodes(tmp_path, monkeypatch, capsys):
    """benchmarks/compare_seeds.py: two learners × two seeds (copies of shipped models)."""
    import shutil

    import compare_seeds

    shipped = Path(__file__).parents[1] / "badger_graph" / "checkpoints" / "compare"
    logs = {"badger": "0,99,10.0,\n0,99,,3.0\n0,199,20.0,\n0,199,,2.5\n",
            "transformer": "0,99,5.0,\n0,99,,2.8\n0,299,15.0,\n0,299,,2.4\n"}  # fmt: skip
    for learner, rows in logs.items():
        for seed in (0, 1):
            shutil.copy(
                shipped / f"bandits_{learner}.ckpt", tmp_path / f"bandits_{learner}_s{seed}.ckpt"
            )
            log = tmp_path / f"bandits_{learner}_s{seed}.metrics.csv"
            log.write_text("epoch,step,train/seconds,val/cumulative_regret\n" + rows)
    argv = ["compare_seeds.py", "--learners", "badger,transformer", "--seeds", "0,1",
            "--runs", str(tmp_path), "--episodes", "8", "--batch", "8",
            "--out", str(tmp_path), "--versus", "thompson"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    compare_seeds.main()
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| transformer | +"))
    assert "(one seed)" not in row
    assert " ± 0 (" in row  # the same model twice: no spread over seeds
    assert "| transformer | n/a |" not in out
    assert "| n/a |" in out  # k = 10: the fixed-width Transformer cannot run
    assert "at 200 batches (equal batches)" in out
    assert "| badger | 2.5 ± 0 | 2.5 ± 0 | 200/200 | 20/20 |" in out
    assert "| transformer | 2.8 ± 0 | 2.4 ± 0 | 300/300 | 15/15 |" in out
    assert (tmp_path / "bandits_seeds_curves.png").stat().st_size > 1000
    assert "Against thompson on the same episodes" in out
    assert "| thompson (its mean) |" in out
    assert "within" in next(line for line in out.splitlines() if line.startswith("| badger | +")
                            or line.startswith("| badger | -"))  # fmt: skip
    from badger_graph.comparison import verdict

    assert verdict(-1.0, 0.4) == "better"
    assert verdict(1.0, 0.6) == "level"
    assert verdict(1.0, 0.4) == "worse"
    assert verdict(1.0, 0.4, seeds=1) == "one seed"


def test_compare_learners_takes_a_users_own_family(tmp_path, monkeypatch, capsys):
    """--extra_families MODULE adds a family without editing the script."""
    import shutil

    import compare_learners

    root = Path(__file__).parents[1]
    (tmp_path / "my_families.py").write_text(
        "from badger_graph.comparison import Family, Point\n"
        "from badger_graph.tasks import GuessingGame\n"
        "FAMILIES = {'guess4': Family('final error', lambda e: e[-1], [\n"
        "    Point('d=3'), Point('d=4', GuessingGame(4, feedback='scalar', feedback_to=[0]))])}\n"
    )
    (tmp_path / "cfg").mkdir()
    (tmp_path / "runs").mkdir()
    # the user's config: an overlay of the shipped one, by name (its base is not copied along)
    (tmp_path / "cfg/guess4_badger.yaml").write_text("base: compare/guessing_badger\n")
    shutil.copy(root / "badger_graph/checkpoints/compare/guessing_badger.ckpt",
                tmp_path / "runs/guess4_badger.ckpt")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    argv = ["compare_learners.py", "--extra_families", "my_families", "--families", "guess4",
            "--configs", "cfg", "--runs", "runs", "--episodes", "8", "--batch", "8",
            "--out", "out"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    compare_learners.main()
    out = capsys.readouterr().out
    assert "**guess4** — final error" in out
    assert "| d=3 | d=4 |" in out
    from badger_graph.comparison import FAMILIES

    assert "guess4" not in FAMILIES  # nothing of the package was changed


def test_exact_bandit_optimum_matches_hand_computed_values():
    import bandit_optimum

    assert abs(bandit_optimum.exact_regret(2, 1) - 1 / 6) < 1e-12  # 2/3 - 1/2
    # T = 2: pull one arm; after a win keep it (2/3), after a loss switch (1/2)
    assert abs(bandit_optimum.exact_regret(2, 2) - 0.25) < 1e-12
    assert bandit_optimum.exact_regret(3, 20) < bandit_optimum.exact_regret(5, 20)


def test_multi_seed_bound_and_plateau_probe_run(tmp_path, monkeypatch, capsys):
    """benchmarks/multi_seed_bound.py prints its table; plateau_probe.py its probe rows."""
    import multi_seed_bound
    import plateau_probe

    monkeypatch.setattr(sys, "argv", ["x", "--seeds", "2", "--reps", "1", "--threads", "1"])
    multi_seed_bound.main()
    out = capsys.readouterr().out
    assert "| guessing_game | 2 x 256 |" in out  # the config's batch size
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        sys,
        "argv",
        ["x", "--config", "guessing_game", "--batches", "4", "--every", "2", "--probe_agents", "8"],
    )
    plateau_probe.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("batch ")]
    assert [r.split(" | ")[0] for r in rows] == ["batch 2", "batch 4"]
    assert all("err col2" in r and "grad policy" in r for r in rows)


@pytest.mark.parametrize("flag", ["--reps", "--threads"])
def test_batch_cost_refuses_a_zero_count_before_building_models(flag, capsys):
    import batch_cost

    with pytest.raises(SystemExit) as exit_:
        batch_cost.main(["no_such_config", flag, "0"])
    assert exit_.value.code == 2
    assert f"{flag} must be >= 1, got 0" in capsys.readouterr().err
