"""The shipped models give the figures the docs print (evaluation only: no training).

Each documented table row is read from the page that prints it, and the shipped model is
played on the same fresh episodes as the command under that table: a page that drifts from
the models (or an evaluation change that moves a figure) fails here.
"""

import csv
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def documented_task_rows() -> dict[str, float]:
    """``family -> the agent's score`` from the results table of docs/tasks.md."""
    text = (ROOT / "docs" / "tasks.md").read_text()
    rows = re.findall(r"^\| (\w+) \| agent \| [^|]+ \| ([0-9.]+) \|", text, flags=re.M)
    return {family: float(value) for family, value in rows}


def test_the_docs_table_names_every_task_family():
    import task_baselines

    assert set(documented_task_rows()) == set(task_baselines.FAMILIES)


@pytest.mark.parametrize("family", ["moving_target", "optimization", "bandits", "regression",
                                    "classification"])  # fmt: skip
def test_shipped_task_models_give_their_documented_score(family):
    import task_baselines

    from badger_graph.pretrained import CHECKPOINTS

    documented = documented_task_rows()[family]
    rows = task_baselines.compare(family, CHECKPOINTS / "tasks", episodes=2000)
    agent = next(r for r in rows if r["strategy"] == "agent")
    assert f"{agent['value']:.4f}" == f"{documented:.4f}", (family, agent["value"], documented)


def documented_seed_0(row_start: str) -> str:
    """Seed 0's figure in the docs/reproduce.md row that starts with ``row_start``."""
    text = (ROOT / "docs" / "reproduce.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {row_start}"))
    return row.split("|")[6].split(",")[0].strip()


@pytest.mark.parametrize(
    ("name", "metric", "row"),
    [
        ("fig6", "test/final_error", "fig6 | 3,000 |"),
        ("fig9", "test/mean_error", "fig9 (mean error; one round during the warm-up"),
        ("guessing_game_es", "test/final_error", "es (cosine decay"),
        ("guessing_game_attention", "test/final_error", "attention (cosine decay"),
        ("guessing_game_random", "test/final_error", "random (cosine decay"),
    ],
)
def test_shipped_guessing_models_give_seed_0_of_their_reproduce_row(name, metric, row, capsys):
    """`badger test --config NAME --ckpt_path pretrained` prints seed 0's documented figure."""
    from badger_graph import pretrained
    from badger_graph.cli import cli_main

    config = pretrained.get(name).config
    cli_main(["test", "--config", config, "--ckpt_path", "pretrained",
              "--trainer.enable_progress_bar", "false", "--threads", "1"])  # fmt: skip
    value = float(re.search(rf"{metric}\s+([0-9.e-]+)", capsys.readouterr().out).group(1))
    documented = documented_seed_0(row)
    digits = len(documented.split("e")[0].replace(".", "").lstrip("0"))  # significant
    assert f"{value:.{digits}g}" == f"{float(documented):.{digits}g}", (name, value, documented)


def documented_sweep_point(folder: str, d: int = 3, experts: int = 20) -> float:
    """The error at (d, experts) in docs/<folder>/dims.csv (a `badger sweep` table)."""
    with (ROOT / "docs" / folder / "dims.csv").open() as f:
        rows = list(csv.DictReader(f))
    return next(float(r["error"]) for r in rows if (int(r["d"]), int(r["experts"])) == (d, experts))


@pytest.mark.parametrize(
    "name",
    ["fig7", "fig7_stage1", "fig7_random_identity", "fig7_random_identity_growth",
     "fig7_fresh_growth40", "fig7_fresh_growth80"],
)  # fmt: skip
def test_shipped_fig7_models_give_their_documented_sweep(name):
    """`badger sweep --ckpt_path <shipped model>`'s d = 3, 20-expert point, as docs/<name>/ has it.

    The point every sweep of the docs shares, on its own episodes (the sweep's stream).
    """
    from badger_graph import BadgerModule
    from badger_graph.evaluation import final_error
    from badger_graph.pretrained import CHECKPOINTS
    from badger_graph.seeds import derive, episode_seed

    model = BadgerModule.load_from_checkpoint(CHECKPOINTS / f"{name}.ckpt", map_location="cpu")
    model.eval()
    with torch.no_grad():
        got = final_error(model.runner, 3, 20, 2000, derive(episode_seed("sweep"), 3, 20))
    assert got == pytest.approx(documented_sweep_point(name), rel=1e-4), name


def test_shipped_generalist_gives_its_documented_matrix_row():
    """`badger matrix --model all_six=...` on the shipped generalist: docs/generalist's row."""
    from badger_graph.cli import build_from_config
    from badger_graph.matrix import default_families, evaluate
    from badger_graph.pretrained import CHECKPOINTS

    with (ROOT / "docs" / "generalist" / "matrix.csv").open() as f:
        documented = {r["family"]: float(r["agent"]) for r in csv.DictReader(f)
                      if r["trained_on"] == "all_six"}  # fmt: skip
    config = str(ROOT / "configs" / "generalist" / "all_six.yaml")
    runner = build_from_config(config, str(CHECKPOINTS / "generalist" / "all_six.ckpt")).runner
    with torch.no_grad():
        rows = evaluate(runner, default_families(), 1000)
    got = {r["family"]: r["agent"] for r in rows}
    assert set(got) == set(documented)
    for family, value in documented.items():
        assert got[family] == pytest.approx(value, rel=1e-4), family


@pytest.mark.parametrize(
    "family", ["guessing", "fig7", "bandits", "regression", "classification", "sinusoid"]
)
def test_shipped_compare_models_give_their_documented_in_distribution_cells(family):
    """Every learner of docs/comparison/<family>.csv, in distribution, from its shipped model
    (`python benchmarks/compare_learners.py --runs badger_graph/checkpoints/compare`)."""
    from badger_graph.cli import build_from_config
    from badger_graph.comparison import FAMILIES, LEARNERS, play_point, point_key
    from badger_graph.pretrained import CHECKPOINTS

    fam = FAMILIES[family]
    point = fam.points[0]
    with (ROOT / "docs" / "comparison" / f"{family}.csv").open() as f:
        documented = {r["strategy"]: float(r["mean"]) for r in csv.DictReader(f)
                      if r["point"] == point.label and r["mean"]
                      and r["strategy"] in LEARNERS}  # fmt: skip
    assert {"badger", "rnn", "transformer"} <= set(documented)
    key = point_key(FAMILIES, family, 0)
    for learner, value in documented.items():
        config = str(ROOT / "configs" / "compare" / f"{family}_{learner}.yaml")
        model = build_from_config(config, str(CHECKPOINTS / "compare" / f"{family}_{learner}.ckpt"))
        with torch.no_grad():
            errors = play_point(model.runner, point, 2000, 500, key)
        got = float(fam.judge(errors["learner"]).mean())
        assert got == pytest.approx(value, rel=1e-4), (family, learner)


def test_shipped_datasets_models_give_their_documented_cells(tmp_path, capsys):
    """Every shipped datasets model and every tuned baseline, iris and digits at T = 20, on
    the 2,000 streams of docs/datasets/real_datasets.csv
    (`python benchmarks/real_datasets.py --runs badger_graph/checkpoints/datasets`)."""
    import real_datasets

    from badger_graph.pretrained import CHECKPOINTS

    runs = str(CHECKPOINTS / "datasets")
    real_datasets.main(["--datasets", "iris", "digits", "--steps", "20", "--runs", runs,
                        "--out", str(tmp_path)])  # fmt: skip
    capsys.readouterr()

    def cells(path: Path) -> dict:
        with path.open() as f:
            return {(r["dataset"], r["T"], r["strategy"]): (float(r["error"]),
                    float(r["late_accuracy"])) for r in csv.DictReader(f)}  # fmt: skip

    got = cells(tmp_path / "real_datasets.csv")
    documented = cells(ROOT / "docs" / "datasets" / "real_datasets.csv")
    assert len(got) == 14  # 2 datasets x (4 models + 3 tuned baselines)
    assert {s for _, _, s in got} >= set(real_datasets.LEARNERS)
    for key, (error, accuracy) in got.items():
        assert error == pytest.approx(documented[key][0], rel=1e-4), key
        assert accuracy == pytest.approx(documented[key][1], rel=1e-4), key
