"""``badger reproduce``: documented figures re-trained over seeds, table and --check."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from badger_graph import reproduce
from badger_graph.cli import main
from badger_graph.errors import ConfigError

ROOT = Path(__file__).parents[1]
TINY = ROOT / "tests" / "reliability" / "tiny.yaml"


def _registry(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(text.replace("TINY", str(TINY)))
    return path


ROWS = """
easy:
  config: TINY
  batches: 12
  metric: test/final_error
  documented: 0.9
  pass_at: 10.0
  minutes: 1
  slow: false
impossible:
  config: TINY
  batches: 6
  metric: test/final_error
  documented: 0.0
  pass_at: -1.0
  minutes: 1
"""


def _run(monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["badger", "reproduce", *argv])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_reproduce_trains_every_seed_and_prints_documented_vs_measured(
    tmp_path, monkeypatch, capsys
):
    registry = _registry(tmp_path, ROWS)
    code, out, err = _run(monkeypatch, capsys, "--registry", str(registry), "--seeds", "2",
                          "--out", str(tmp_path / "runs"), "--check", "--fast")  # fmt: skip
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("| easy |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2] == "12, 12"  # the budget in batches, every seed
    assert cells[3] == "0.9"
    assert cells[4] == "≤ 10"
    assert cells[8] == "2 of 2"
    per_seed = [float(v) for v in cells[6].split(", ")]
    assert per_seed[0] != per_seed[1]  # two training seeds, two different runs
    assert "impossible" not in out  # --fast leaves slow rows out
    for seed in (0, 1):
        assert (tmp_path / f"runs/easy/seed_{seed}/checkpoints/last.ckpt").is_file()
    # run again: the finished runs are evaluated, not trained again, to the same values
    code, again, _ = _run(monkeypatch, capsys, "--registry", str(registry), "--seeds", "2",
                          "--out", str(tmp_path / "runs"), "--only", "easy")  # fmt: skip
    assert code == 0
    row2 = next(line for line in again.splitlines() if line.startswith("| easy |"))
    assert row2.split("|")[7] == row.split("|")[7]


def test_check_fails_a_row_that_a_seed_does_not_reach(tmp_path, monkeypatch, capsys):
    registry = _registry(tmp_path, ROWS)
    flags = ["--seeds", "1", "--out", str(tmp_path / "runs"), "--only", "impossible", "--check"]
    code, out, err = _run(monkeypatch, capsys, "--registry", str(registry), *flags)
    assert code == 1
    assert "| impossible |" in out
    assert "0 of 1" in out
    assert "not reached on every seed: impossible" in err


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ("  batches: 0\n", "batches must be an int >= 1, got 0"),
        ("  colour: red\n", "unknown keys ['colour']"),
        ("  direction: up\n", "direction must be minimize or maximize, got 'up'"),
    ],
)
def test_bad_registry_rows_are_named(tmp_path, edit, needle):
    text = "row:\n  config: TINY\n  metric: test/final_error\n  documented: 1\n  pass_at: 1\n"
    if "batches" not in edit:
        text += "  batches: 5\n"
    registry = _registry(tmp_path, text + edit)
    with pytest.raises(ConfigError, match="row 'row'") as e:
        reproduce.load_registry(registry)
    assert needle in str(e.value)


def test_unknown_row_and_missing_config_are_usage_errors(tmp_path, monkeypatch, capsys):
    registry = _registry(tmp_path, ROWS)
    code, _, err = _run(monkeypatch, capsys, "--registry", str(registry), "--only", "nope")
    assert code == 2
    assert "unknown rows ['nope']" in err
    bad = _registry(tmp_path, "row: {config: nowhere.yaml, batches: 1, metric: m, "
                              "documented: 1, pass_at: 1}\n")  # fmt: skip
    code, _, err = _run(monkeypatch, capsys, "--registry", str(bad))
    assert code == 2
    assert "config 'nowhere.yaml' is not a file" in err
    assert "Traceback" not in err


def test_the_shipped_registry_loads_and_names_existing_configs():
    rows = reproduce.load_registry(reproduce.default_registry())
    assert any(not r.slow for r in rows)  # a fast row for the default test run
    for r in rows:
        assert r.config.is_file()
        assert r.reached(r.documented)  # a documented figure is within its own level


def test_the_fast_row_of_the_shipped_registry_reaches_its_level(tmp_path, monkeypatch, capsys):
    """A few hundred batches of Fig. 6 on two training seeds, as documented."""
    code, out, err = _run(monkeypatch, capsys, "--fast", "--seeds", "2", "--check",
                          "--out", str(tmp_path / "runs"))  # fmt: skip
    assert code == 0, err[-2000:]
    row = next(line for line in out.splitlines() if line.startswith("| fig6_short |"))
    assert row.split("|")[-2].strip() == "2 of 2"


def test_a_seed_stopped_short_of_the_budget_is_not_counted_as_reached(tmp_path):
    """A run its time guard stopped early (it counts the time of earlier runs of the folder)."""
    rows = reproduce.load_registry(_registry(tmp_path, ROWS))
    easy = next(r for r in rows if r.name == "easy")  # 12 batches, level 10
    runs = [
        {"value": 0.5, "batches": 12, "seconds": 3.0, "folder": "a"},
        {"value": 0.5, "batches": 7, "seconds": 3.0, "folder": "b"},
    ]
    line = reproduce.table([easy], {"easy": runs}).splitlines()[-1]
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[2] == "12, 7 (short)"
    assert cells[8] == "1 of 2"
    assert easy.seed_reached(runs[0])
    assert not easy.seed_reached(runs[1])
