"""``badger tune``: a hyperparameter search with Optuna over any experiment config.

A search space is a small YAML (``configs/tune/*.yaml``)::

    metric: val/loss          # what a trial scores (its best validation value)
    direction: minimize
    trials: 12                # finished trials the study should hold
    fixed:                    # flags every trial gets (its budget, say)
      trainer.max_steps: 600
    params:                   # config keys and their ranges
      model.optimizer.init_args.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
      model.num_experts: {choices: [3, 4, 6]}
      model.policy.init_args.hidden_channels: {low: 16, high: 64, step: 16}

Every trial is a normal ``badger fit`` of the config with the trial's values, in its own
run folder ``<study>/trial_NNN`` (checkpoints, ``metrics.csv``, the config). The study
lives in ``<study>/study.db`` (SQLite; or any database URL with ``--storage``): a search
stopped with Ctrl-C or SIGTERM resumes where it was with the same command (the trial that
was running is run again), and several processes — or machines sharing a database URL —
can work on one study at once (Optuna's own distributed mode). Optuna's TPE sampler picks
the values; its median pruner stops a trial whose validation rows fall behind the median of
earlier trials at the same batch. At the end the best trial is written as a config overlay
(``best.yaml``: ``base:`` the config, plus the trial's values), the trials as ``trials.csv``
and a plot of the study (score per trial, parameter importances) as ``study.png``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from badger_graph.errors import ConfigError

#: the trial states that count toward a study's number of trials
FINISHED = ("COMPLETE", "PRUNED")


@dataclass
class Param:
    """The range of one config key: ``low``/``high`` (``log``, ``step``) or ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list | None = None

    @classmethod
    def parse(cls, key: str, spec: Any, where: str) -> Param:
        """Read ``spec`` (a mapping) for ``key``; raise :class:`ConfigError` naming the key."""
        if not isinstance(spec, dict):
            raise ConfigError(
                f"{where}: {key}: give a range {{low: .., high: ..}} or {{choices: [..]}}, "
                f"got {spec!r}"
            )
        unknown = sorted(set(spec) - {"low", "high", "log", "step", "choices"})
        if unknown:
            raise ConfigError(f"{where}: {key}: unknown range entries {unknown}")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise ConfigError(
                    f"{where}: {key}: choices must be a non-empty list, got {choices!r}"
                )
            return cls(key, choices=choices)
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"{where}: {key}: a range needs low and high, got {spec}")
        low, high = spec["low"], spec["high"]
        for name, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"{where}: {key}: {name} must be a number, got {v!r}")
        if not low < high:
            raise ConfigError(f"{where}: {key}: empty range (low {low!r} >= high {high!r})")
        log = bool(spec.get("log", False))
        if log and low <= 0:
            raise ConfigError(f"{where}: {key}: a log range needs low > 0, got {low!r}")
        step = spec.get("step")
        if step is not None and (not isinstance(step, int | float) or step <= 0 or log):
            raise ConfigError(
                f"{where}: {key}: step must be a number > 0 without log, got {step!r}"
            )
        return cls(key, low, high, log, step)

    @property
    def integer(self) -> bool:
        """Whether the range is of ints (both ends and any step are ints)."""
        ends = (self.low, self.high, self.step if self.step is not None else 1)
        return all(isinstance(v, int) for v in ends)

    def suggest(self, trial) -> Any:
        """This parameter's value in ``trial`` (an Optuna trial)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.key, self.choices)
        if self.integer:
            return trial.suggest_int(
                self.key, self.low, self.high, step=self.step or 1, log=self.log
            )
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def sample(self) -> Any:
        """A value in the range (to check the key against the config)."""
        return self.choices[0] if self.choices is not None else self.low


@dataclass
class SearchSpace:
    """A search space file: the metric, its direction, fixed flags and the ranges."""

    path: str
    params: list[Param]
    metric: str = "val/loss"
    direction: str = "minimize"
    trials: int = 12
    fixed: dict[str, Any] = field(default_factory=dict)
    #: the experiment this space is for (relative to the space file), if it names one
    config: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        """Read a search space YAML; errors name the file and the key."""
        import yaml

        where = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text())
        except OSError as e:
            raise ConfigError(f"search space {where!r} cannot be read: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"search space {where!r} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"search space {where!r} must be a mapping, got {type(data).__name__}"
            )
        unknown = sorted(set(data) - {"metric", "direction", "trials", "fixed", "params", "config"})
        if unknown:
            raise ConfigError(f"search space {where!r}: unknown entries {unknown}")
        params = data.get("params") or {}
        if not isinstance(params, dict) or not params:
            raise ConfigError(f"search space {where!r}: params must name at least one key")
        direction = data.get("direction", "minimize")
        if direction not in ("minimize", "maximize"):
            raise ConfigError(f"search space {where!r}: direction must be minimize or maximize")
        trials = data.get("trials", 12)
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ConfigError(f"search space {where!r}: trials must be an int >= 1, got {trials!r}")
        fixed = data.get("fixed") or {}
        if not isinstance(fixed, dict):
            raise ConfigError(f"search space {where!r}: fixed must map config keys to values")
        config = data.get("config")
        if config is not None:
            config = str(Path(path).parent / str(config))
            if not Path(config).is_file():
                raise ConfigError(f"search space {where!r}: its config {config!r} does not exist")
        return cls(
            where,
            [Param.parse(str(k), v, where) for k, v in params.items()],
            str(data.get("metric", "val/loss")),
            direction,
            trials,
            dict(fixed),
            config,
        )


def _flags(values: dict[str, Any]) -> list[str]:
    """``--key value`` pairs; values as JSON (what jsonargparse reads for any type)."""
    out = []
    for key, value in values.items():
        out += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return out


def median_pruner(startup_trials: int, warmup_steps: int):
    """The search's pruner: the median rule after ``startup_trials`` and ``warmup_steps``.

    Built by the search and by every trial's :class:`ReportToTrial` alike (a study loaded
    without it would prune by Optuna's defaults).
    """
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)


class ReportToTrial(Callback):
    """Report each validation's ``metric`` to an Optuna trial and stop it when pruned.

    The trial is found by study name and number in the study's storage, so the callback
    can be given on the command line like any other. Pruning stops the fit at the end of
    the validation's batch (``trainer.should_stop``), so the trial's folder keeps a normal
    ``last.ckpt``.

    Args:
        storage (str): the study's database URL.
        study_name (str): the study.
        trial_number (int): the trial this fit runs.
        metric (str): the logged metric to report. (default: ``"val/loss"``)
        startup_trials (int): finished trials before any is pruned. (default: :obj:`4`)
        warmup_steps (int): batches before this trial can be pruned. (default: :obj:`0`)
    """

    def __init__(
        self,
        storage: str,
        study_name: str,
        trial_number: int,
        metric: str = "val/loss",
        startup_trials: int = 4,
        warmup_steps: int = 0,
    ) -> None:
        import optuna

        self.metric = metric
        pruner = median_pruner(startup_trials, warmup_steps)
        study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
        trial_id = next(t._trial_id for t in study.get_trials(deepcopy=False)
                        if t.number == trial_number)  # fmt: skip
        self.trial = optuna.Trial(study, trial_id)
        self.direction = study.direction.name.lower()
        #: the best value reported, and whether the pruner stopped the trial
        self.best: float | None = None
        self.pruned = False

    def on_validation_end(self, trainer, pl_module) -> None:
        """Report the row; stop the fit when the pruner says so."""
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.metric])
        if not math.isfinite(value):
            return
        better = min if self.direction == "minimize" else max
        self.best = value if self.best is None else better(self.best, value)
        self.trial.report(value, trainer.global_step)
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True


def _check_keys(config: str, space: SearchSpace) -> None:
    """Parse the config with every key of the space (nothing is built): unknown keys are named."""
    import contextlib
    import io

    from badger_graph.cli import _lightning_cli

    def refused(values: dict[str, Any]) -> str | None:
        """The parser's error for ``values`` on the config, or ``None`` when it parses."""
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                _lightning_cli(["fit", "--config", config, *_flags(values), "--print_config"])
        except SystemExit as e:
            if e.code in (0, None):
                return None
            detail = [x for x in err.getvalue().strip().splitlines() if "error" in x.lower()]
            return detail[-1].strip() if detail else "the config parser refused it"
        return None

    keys = {**space.fixed, **{p.key: p.sample() for p in space.params}}
    if refused(keys) is None:  # one parse for the whole space; key by key only to name one
        return
    for key, value in keys.items():
        detail = refused({key: value})
        if detail is not None:
            raise ConfigError(
                f"search space {space.path!r}: {key} is not a setting of {config!r} ({detail})"
            )


def _best_overlay(config: str, params: dict[str, Any], out: Path, fixed=None) -> None:
    """Write ``out``: ``base:`` the config (relative), then the best trial's values nested.

    The space's fixed settings of the model and data (a weight budget, say) come with them:
    the values were found with those. The trial's budget (``trainer.*``) and ``threads`` do
    not: the overlay trains on its config's budget.
    """
    import yaml

    kept = {
        k: v for k, v in (fixed or {}).items() if not k.startswith("trainer.") and k != "threads"
    }
    tree: dict[str, Any] = {}
    for key, value in {**kept, **params}.items():
        node = tree
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    base = os.path.relpath(os.path.realpath(config), os.path.realpath(out.parent))
    text = yaml.safe_dump({"base": base, **tree}, sort_keys=False)
    out.write_text(f"# the best trial of {out.parent.name} (badger tune)\n" + text)


def _write_tables(study, out: Path, space: SearchSpace) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "trial": t.number,
                "state": "INTERRUPTED" if t.user_attrs.get("interrupted") else t.state.name,
                "score": "" if t.value is None else t.value,
                "batches": max(t.intermediate_values, default=""),
                **{p.key: t.params.get(p.key, "") for p in space.params},
            }
        )
    with (out / "trials.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["trial"])
        w.writeheader()
        w.writerows(rows)
    return rows


def _plot(study, out: Path, space: SearchSpace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    colors = {"COMPLETE": "C0", "PRUNED": "C1"}
    for t in study.get_trials(deepcopy=False):
        if t.state.name in colors and t.intermediate_values:
            value = t.value if t.value is not None else min(t.intermediate_values.values())
            a.scatter(t.number, value, color=colors[t.state.name], s=18)
    a.scatter([], [], color="C0", label="complete")
    a.scatter([], [], color="C1", label="pruned (best row)")
    a.set_xlabel("trial")
    a.set_ylabel(space.metric)
    values = [t.value for t in done if t.value is not None]
    if values and min(values) > 0 and max(values) / min(values) > 10:
        a.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.legend(fontsize=8)
    a.set_title("score per trial")
    try:
        imp = optuna.importance.get_param_importances(study) if len(done) >= 2 else {}
    except (RuntimeError, ValueError):
        imp = {}
    if imp:
        b.barh(list(imp)[::-1], list(imp.values())[::-1])
        b.set_xlabel("importance (fANOVA)")
    else:
        b.text(0.5, 0.5, "needs 2 complete trials", ha="center", va="center")
    b.set_title("parameter importances")
    fig.tight_layout()
    fig.savefig(out / "study.png", dpi=110)
    plt.close(fig)


def tune(
    config: str,
    space: SearchSpace,
    study_dir: str | Path,
    storage: str | None = None,
    trials: int | None = None,
    seed: int = 0,
    startup_trials: int = 4,
    warmup_steps: int = 0,
) -> Any:
    """Run (or resume, or join) the study until it holds ``trials`` finished trials.

    Returns the Optuna study. A trial stopped by Ctrl-C or SIGTERM is marked failed and its
    values are queued again, then the signal ends the search as it would end a fit (exit
    130 / 143 from the command line); the same command resumes.
    """
    import optuna

    from badger_graph.callbacks import run_folder

    study_dir = run_folder(str(study_dir))
    study_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{study_dir / 'study.db'}"
    target = trials or space.trials
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(
        storage,
        study_dir.name,
        space.direction,
        optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials),
        median_pruner(startup_trials, warmup_steps),
    )
    study.set_user_attr("config", str(config))
    pruning = {"startup_trials": startup_trials, "warmup_steps": warmup_steps}

    def finished() -> int:
        return sum(
            t.state.name in FINISHED
            or (t.state.name == "FAIL" and not t.user_attrs.get("interrupted"))
            for t in study.get_trials(deepcopy=False)
        )

    from badger_graph.seeds import derive

    while finished() < target:
        trial = study.ask()
        # the values are drawn lazily (at the first suggest), after the sampler is re-seeded
        # from the trial's number, which the storage hands out once: a single process is
        # reproducible, and processes sharing a study never draw with the same seed
        study.sampler = optuna.samplers.TPESampler(
            seed=derive(seed, trial.number, bits=32), n_startup_trials=startup_trials
        )
        try:
            _run_trial(study, trial, config, space, study_dir, storage, pruning)
        except BaseException as stop:
            if trial.number not in _told(study):
                trial.set_user_attr("interrupted", True)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                if trial.params:
                    study.enqueue_trial(trial.params, skip_if_exists=False)
                print(
                    f"trial {trial.number} stopped; its values run again when the search is "
                    f"resumed with the same command",
                    file=sys.stderr,
                )
            raise stop
    return study


def _open_study(storage: str, name: str, direction: str, sampler, pruner, attempts: int = 8):
    """Create or load the study; processes that start together on a new database take turns.

    Two processes creating the same new SQLite database at once race on its schema (one of
    them gets an integrity or "database is locked" error): the loser waits and loads it.
    SQLite connections wait up to 60 s for a lock held by another process.
    """
    import random
    import time

    import optuna
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {}
            db = optuna.storages.RDBStorage(storage, engine_kwargs=kwargs)
            return optuna.create_study(
                storage=db,
                study_name=name,
                direction=direction,
                sampler=sampler,
                pruner=pruner,
                load_if_exists=True,
            )
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.DuplicatedStudyError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 + random.random())  # noqa: S311 - a jitter, not a secret
    raise AssertionError("unreachable")  # pragma: no cover


def _told(study) -> set[int]:
    """Numbers of the trials that are finished (told) in ``study``."""
    return {t.number for t in study.get_trials(deepcopy=False) if t.state.name != "RUNNING"}


def _run_trial(
    study,
    trial,
    config: str,
    space: SearchSpace,
    study_dir: Path,
    storage: str,
    pruning: dict | None = None,
):
    """One trial: ``badger fit`` in ``study_dir/trial_NNN``; tell the study how it went.

    An error of the trial's own (a diverging learning rate, a setting that does not build)
    fails that trial and the search goes on; Ctrl-C and SIGTERM stop the search.
    """
    import optuna

    from badger_graph.cli import _lightning_cli

    values = {p.key: p.suggest(trial) for p in space.params}
    folder = study_dir / f"trial_{trial.number:03d}"
    reporter = {
        "class_path": "badger_graph.tune.ReportToTrial",
        "init_args": {
            "storage": storage,
            "study_name": study.study_name,
            "trial_number": trial.number,
            "metric": space.metric,
            **(pruning or {}),
        },
    }
    args = ["fit", "--config", str(config), *_flags(space.fixed), *_flags(values)]
    args += ["--trainer.default_root_dir", str(folder)]
    args += ["--trainer.callbacks+=" + json.dumps(reporter)]
    print(f"trial {trial.number}: {values}", file=sys.stderr, flush=True)
    try:
        cli = _lightning_cli(args)
    except (KeyboardInterrupt, SystemExit) as stop:
        if isinstance(stop, KeyboardInterrupt) or getattr(stop, "code", None) in (130, 143):
            raise
        error = f"exit status {stop.code}"
    except Exception as e:  # the trial's own failure: the search goes on
        error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    else:
        found = [c for c in cli.trainer.callbacks if isinstance(c, ReportToTrial)]
        done = found[0] if found else None
        if done is not None and done.pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            print(f"trial {trial.number}: pruned ({space.metric} {done.best:.5g})", file=sys.stderr)
            return
        if done is not None and done.best is not None:
            study.tell(trial, done.best)
            print(f"trial {trial.number}: {space.metric} {done.best:.5g}", file=sys.stderr)
            return
        error = f"no {space.metric} was logged (no validation ran?)"
    trial.set_user_attr("error", error[:500])
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    print(f"trial {trial.number} failed: {error}", file=sys.stderr)


def report(study, config: str, space: SearchSpace, study_dir: str | Path) -> list[dict]:
    """Write ``trials.csv``, ``study.png`` and ``best.yaml``; return the trial rows."""
    out = Path(study_dir)
    rows = _write_tables(study, out, space)
    _plot(study, out, space)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if complete:
        _best_overlay(config, study.best_trial.params, out / "best.yaml", space.fixed)
    return rows


def tune_main(argv: list[str]) -> None:
    """``badger tune``: an Optuna search over a config's keys, one ``badger fit`` per trial."""
    import argparse

    from badger_graph.commands import _at_least

    p = argparse.ArgumentParser(prog="badger tune", description=tune_main.__doc__)
    p.add_argument("--config", default=None, help="the experiment to tune (default: the space's)")
    p.add_argument("--space", required=True, help="search space YAML (see configs/tune/)")
    p.add_argument("--study_dir", required=True, help="folder of the study and its trials")
    p.add_argument(
        "--storage",
        default=None,
        help="database URL shared by several processes or machines "
        "(default: sqlite:///STUDY_DIR/study.db)",
    )
    p.add_argument("--trials", type=int, default=None, help="(default: the space's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler")
    p.add_argument(
        "--startup_trials", type=int, default=4, help="random trials before TPE and pruning"
    )
    p.add_argument(
        "--warmup_steps", type=int, default=0, help="batches before a trial can be pruned"
    )
    a = p.parse_args(argv)
    _at_least(p, a, trials=1, startup_trials=1, warmup_steps=0, seed=0)
    try:
        import optuna  # noqa: F401
    except ImportError:
        p.error("badger tune needs Optuna: pip install 'badger_graph[tune]'")
    space = SearchSpace.load(a.space)
    a.config = a.config or space.config
    if a.config is None:
        p.error(f"--config is required: {a.space} names no config")
    if not Path(a.config).is_file():
        from badger_graph.pretrained import config_path

        try:  # a shipped config's name
            a.config = str(config_path(a.config))
        except ConfigError:
            p.error(f"--config {a.config!r} is neither a file nor a shipped config's name")
    _check_keys(a.config, space)
    try:
        _search(a, space)
    except KeyboardInterrupt:  # Ctrl-C between two trials (inside one, the fit stops safely)
        print("badger tune: stopped; the same command resumes the study", file=sys.stderr)
        raise SystemExit(130) from None


def _search(a, space: SearchSpace) -> None:
    """Run the study of ``badger tune``'s arguments ``a``; print its table."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        study = tune(
            a.config, space, a.study_dir, a.storage, a.trials, a.seed, a.startup_trials,
            a.warmup_steps,
        )  # fmt: skip
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
    rows = report(study, a.config, space, a.study_dir)
    keys = [pp.key for pp in space.params]
    print("trial,state,score,batches," + ",".join(keys))
    for r in rows:
        score = f"{r['score']:.5g}" if r["score"] != "" else ""
        print(",".join(str(x) for x in (r["trial"], r["state"], score, r["batches"],
                                        *(r[k] for k in keys))))  # fmt: skip
    if any(r["state"] == "COMPLETE" for r in rows):
        best = study.best_trial
        print(f"best: trial {best.number}, {space.metric} {best.value:.5g}; wrote "
              f"{a.study_dir}/best.yaml, trials.csv, study.png")  # fmt: skip
