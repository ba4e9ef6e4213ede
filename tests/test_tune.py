"""``badger tune``: an Optuna study over a config, resumable and shared by processes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from badger_graph import tune as tuning  # noqa: E402
from badger_graph.cli import main  # noqa: E402
from badger_graph.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).parents[1]
CONFIG = str(ROOT / "tests" / "reliability" / "tiny.yaml")

SPACE = """
metric: val/loss
direction: minimize
trials: 3
fixed:
  trainer.max_steps: 6
  trainer.val_check_interval: 3
  trainer.enable_progress_bar: false
  checkpoint_every: 3
  model.inner_steps: 4
params:
  model.optimizer.init_args.lr: {low: 1.0e-3, high: 3.0e-2, log: true}
  model.num_experts: {choices: [3, 4]}
"""


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def _states(study_dir: Path) -> list[str]:
    with (study_dir / "trials.csv").open() as f:
        return [r["state"] for r in csv.DictReader(f)]


def test_tune_runs_a_study_and_writes_its_best_overlay(tmp_path, space, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["badger", "tune", "--config", CONFIG, "--space",
                                      str(space), "--study_dir", "study"])  # fmt: skip
    main()
    out = capsys.readouterr().out
    assert "trial,state,score,batches,model.optimizer.init_args.lr,model.num_experts" in out
    assert _states(tmp_path / "study") == ["COMPLETE"] * 3
    for name in ("study.db", "best.yaml", "study.png", "trials.csv"):
        assert (tmp_path / "study" / name).is_file(), name
    for i in range(3):  # each trial is a normal run folder
        assert (tmp_path / f"study/trial_{i:03d}/checkpoints/last.ckpt").is_file()
    study = optuna.load_study(study_name="study", storage="sqlite:///study/study.db")
    best = study.best_trial
    assert best.value == min(t.value for t in study.trials)
    assert best.intermediate_values  # the validation rows were reported, batch by batch
    text = (tmp_path / "study/best.yaml").read_text()
    assert f"lr: {best.params['model.optimizer.init_args.lr']}" in text
    assert "base: " in text
    # the overlay is a config: it builds the best trial's model
    from badger_graph.cli import build_from_config

    model = build_from_config(str(tmp_path / "study/best.yaml"))
    assert model.runner.num_experts == best.params["model.num_experts"]
    # with the space's fixed model settings (the values were found with them), not its budget
    assert model.runner.inner_steps == 4
    assert "max_steps" not in text
    # more trials later: the same command resumes the study to the new count
    monkeypatch.setattr(sys, "argv", [*sys.argv, "--trials", "4"])
    main()
    assert _states(tmp_path / "study") == ["COMPLETE"] * 4


def test_an_interrupted_trial_runs_again_on_resume(tmp_path, space, monkeypatch):
    real, calls = tuning._run_trial, []

    spec = tuning.SearchSpace.load(space)

    def stopped_once(study, trial, *args):
        calls.append(trial.number)
        if trial.number == 1:
            for p in spec.params:  # the values are drawn, then the fit is stopped
                p.suggest(trial)
            raise KeyboardInterrupt  # what a Ctrl-C inside the trial's fit ends as
        return real(study, trial, *args)

    monkeypatch.setattr(tuning, "_run_trial", stopped_once)
    with pytest.raises(KeyboardInterrupt):
        tuning.tune(CONFIG, spec, tmp_path / "study")
    study = tuning.tune(CONFIG, spec, tmp_path / "study")  # the same command again
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].user_attrs["interrupted"]
    assert trials[2].params == trials[1].params  # the stopped trial's values ran again
    assert sum(t.state.name == "COMPLETE" for t in trials) == spec.trials
    assert calls == [0, 1, 2, 3]


def test_a_failing_trial_fails_alone(tmp_path, space, monkeypatch):
    spec = tuning.SearchSpace.load(space)
    spec.fixed["model.diverged_at"] = 1e-9  # every training error "diverged"
    spec.fixed["model.diverged_after"] = 2
    spec.trials = 2
    study = tuning.tune(CONFIG, spec, tmp_path / "study")
    states = [t.state.name for t in study.get_trials()]
    assert states == ["FAIL", "FAIL"]
    assert "DivergenceError" in study.trials[0].user_attrs["error"]


def test_two_processes_share_one_study(tmp_path, space):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "badger_graph.cli", "tune", "--config", CONFIG, "--space",
           str(space), "--study_dir", "study", "--trials", "4"]  # fmt: skip
    procs = [
        subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )  # fmt: skip
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    ran = [{int(line.split()[1].rstrip(":")) for line in err.splitlines()
            if line.startswith("trial ") and "{" in line} for _, err in outs]  # fmt: skip
    assert ran[0]
    assert ran[1]
    assert not ran[0] & ran[1]  # never the same one
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{tmp_path}/study/study.db")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert 4 <= len(complete) <= 5  # at most one trial over: both may start the last one
    values = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(values)) == len(values)  # the two processes never proposed the same values


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ("  model.no_such_key: {low: 1, high: 2}\n", "model.no_such_key is not a setting"),
        ("  model.rounds: {low: 3, high: 3}\n", "model.rounds: empty range"),
        ("  model.rounds: {choices: []}\n", "choices must be a non-empty list"),
        ("  model.rounds: {low: 0, high: 2, log: true}\n", "a log range needs low > 0"),
    ],
)
def test_bad_spaces_are_named(tmp_path, space, monkeypatch, capsys, edit, needle):
    space.write_text(SPACE + edit)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["badger", "tune", "--config", CONFIG, "--space",
                                      str(space), "--study_dir", "study"])  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err
    assert not (tmp_path / "study").exists()  # nothing ran


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("params: {}\n", "params must name at least one key"),
        ("params: {model.rounds: {low: 1, high: 3}}\ntrials: 0\n", "trials must be an int >= 1"),
        ("params: {model.rounds: {low: 1, high: 3}}\ndirection: up\n", "direction must be"),
        ("params: {model.rounds: [1, 2]}\n", "model.rounds: give a range"),
        ("params: {model.rounds: {low: 1, hi: 3}}\n", "unknown range entries ['hi']"),
        ("parms: {}\n", "unknown entries ['parms']"),
    ],
)
def test_search_space_file_errors(tmp_path, text, needle):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        tuning.SearchSpace.load(path)
    assert needle in str(err.value)
    assert "space.yaml" in str(err.value)


def test_shipped_spaces_name_only_settings_of_their_configs():
    for path in sorted((ROOT / "configs" / "tune").glob("*.yaml")):
        spec = tuning.SearchSpace.load(path)
        tuning._check_keys(spec.config or CONFIG, spec)  # raises ConfigError naming the key
        assert spec.trials >= 1


def test_ctrl_c_between_trials_ends_the_search_without_a_traceback(
    tmp_path, space, monkeypatch, capsys
):
    def interrupted(a, space):
        raise KeyboardInterrupt

    monkeypatch.setattr(tuning, "_search", interrupted)
    monkeypatch.setattr(sys, "argv", ["badger", "tune", "--config", CONFIG, "--space",
                                      str(space), "--study_dir", str(tmp_path / "s")])  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 130
    assert "the same command resumes the study" in capsys.readouterr().err


@pytest.mark.parametrize(("warmup_steps", "pruned"), [(0, True), (1000, False)])
def test_trials_are_pruned_with_the_searchs_pruner_settings(tmp_path, warmup_steps, pruned):
    """A trial far behind the median at batch 250: pruned, unless the warm-up is longer."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage)
    for value in (1.0, 1.1, 1.2, 1.3, 1.4):  # five finished trials that reported at 250
        trial = study.ask()
        trial.report(value, 250)
        study.tell(trial, value)
    number = study.ask().number
    report = tuning.ReportToTrial(storage, "s", number, startup_trials=4, warmup_steps=warmup_steps)
    report.trial.report(9.0, 250)
    assert bool(report.trial.should_prune()) is pruned
