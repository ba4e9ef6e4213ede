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
