"""Every script under benchmarks/ runs: each at its smallest size, as a user would call it.

The figures they print are in docs/ (performance.md, comparison.md, ...); here only that a
script still runs against this version of the library and prints its table. Scripts that a
test in test_benchmarks.py already drives with its own checks are not repeated here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CKPTS = ROOT / "badger_graph" / "checkpoints"


def _run(args: list[str], cwd: Path = ROOT, timeout: int = 240) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return out.stdout


@pytest.mark.parametrize(
    ("script", "args", "needle"),
    [
        ("analysis_speed.py", [], "recording on costs"),
        ("blocked_round.py", ["--reps", "1", "--experts", "2000"], "new median"),
        ("dense_crossover.py", ["--sizes", "64"], "| 64 |"),
        ("fig6_vs_prototype.py", ["--rounds", "1"], "library / prototype"),
        ("gru_forms.py", ["--reps", "1", "--population", "2", "--nodes", "30"], "nn.GRUCell"),
        ("ddp_speed.py", ["--steps", "2"], "throughput ratio"),
        (
            "batch_cost.py",
            ["compare/sinusoid_badger_tuned", "compare/sinusoid_rnn_tuned", "--reps", "1"],
            "| compare/sinusoid_rnn_tuned | 36,016 | 128 |",
        ),
        (
            "init_probe.py",
            ["compare/sinusoid_rnn_tuned", "--episodes", "4", "--batches", "2"],
            "| compare/sinusoid_rnn_tuned |",
        ),
    ],
)
def test_speed_script_prints_its_table(script, args, needle):
    assert needle in _run([f"benchmarks/{script}", *args])


def test_gpu_check_runs_its_small_sizes_on_the_cpu(tmp_path):
    out = _run(["benchmarks/gpu_check.py", "--small", "--device", "cpu", "--reps", "1",
                "--out", str(tmp_path)])  # fmt: skip
    assert "| round" in out
    assert any(tmp_path.iterdir())  # the table is written under --out too


def test_real_datasets_plays_the_shipped_models(tmp_path):
    out = _run(["benchmarks/real_datasets.py", "--datasets", "iris", "--episodes", "20",
                "--batch", "20", "--steps", "20", "--runs", str(CKPTS / "datasets"),
                "--out", str(tmp_path)])  # fmt: skip
    assert "logistic_regression" in out
    assert "BADGER, other datasets (leave-one-out)" in out  # every shipped model found


def test_generalist_report_reads_a_matrix(tmp_path):
    _run(["-m", "badger_graph.cli", "matrix", "--model",
          f"all_six=configs/generalist/all_six.yaml:{CKPTS / 'generalist' / 'all_six.ckpt'}",
          "--episodes", "8", "--out", str(tmp_path / "m" / "all_six")])  # fmt: skip
    _run(["benchmarks/generalist_report.py", str(tmp_path / "m"), "--out", str(tmp_path / "r")])
    assert (tmp_path / "r" / "matrix.csv").read_text().count("\n") > 1
    assert (tmp_path / "r" / "matrix.png").stat().st_size > 0


def test_ship_keeps_weights_counters_and_the_log(tmp_path):
    run = tmp_path / "runs" / "m"
    (run / "checkpoints").mkdir(parents=True)
    (run / "logs" / "version_0").mkdir(parents=True)
    shutil.copy(CKPTS / "tasks" / "task_bandits.ckpt", run / "checkpoints" / "last.ckpt")
    (run / "logs" / "version_0" / "metrics.csv").write_text("epoch,step,train/loss\n0,9,0.5\n")
    out = _run(["benchmarks/ship.py", str(tmp_path / "runs"), str(tmp_path / "out"), "m"])
    assert "m: " in out
    assert (tmp_path / "out" / "m.metrics.csv").read_text().endswith("0,9,0.5\n")
    from badger_graph.checkpoint import read_checkpoint

    shipped = read_checkpoint(tmp_path / "out" / "m.ckpt")
    assert "state_dict" in shipped
    assert "optimizer_states" not in shipped


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.sh")))
def test_shell_scripts_parse_and_name_existing_configs(script):
    """The training launchers (long runs, not run here): valid bash, and every shipped config
    they name exists."""
    import re

    path = ROOT / "benchmarks" / script
    out = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in re.findall(r"configs/([a-z0-9_/]+\.yaml)", path.read_text()):
        assert (ROOT / "configs" / name).is_file(), (script, name)


def test_seed_train_commands_of_the_docs_name_existing_configs():
    """Every `benchmarks/seed_train.sh NAME ...` in docs/ names a configs/compare/NAME.yaml."""
    import re

    named = set()
    for page in (ROOT / "docs").glob("*.md"):
        text = page.read_text().replace("\\\n", " ")  # join continued lines
        for args in re.findall(r"benchmarks/seed_train\.sh ([\w ]+)", text):
            named.update(args.split())
    assert named  # the docs do show such commands
    missing = sorted(n for n in named if not (ROOT / "configs" / "compare" / f"{n}.yaml").is_file())
    assert not missing, missing
