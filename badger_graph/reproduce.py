"""``badger reproduce``: re-train documented figures over several seeds and compare.

A registry (``configs/reproduce/figures.yaml`` by default) names every headline figure of the
docs: its config, its training budget **in batches**, the metric that ``badger test``
reports, the documented value and the level a seed must reach (``pass_at``). For each row
and each training seed s (initial weights ``--seed_everything s`` and training episodes
``--data.seed s``; the test episodes are the same for every seed) it runs ``badger fit`` in
``<out>/<row>/seed_<s>`` for exactly the row's batches, evaluates the final weights on the
config's test episodes and prints the table: documented vs measured (mean ± s.e. over
seeds, per-seed values), batches and seconds per seed, and how many seeds reached the row's
level. A run folder that already holds the finished run is evaluated, not trained again;
an interrupted one resumes (``--ckpt_path last``).

    badger reproduce [--only fig6,random] [--seeds 3] [--out runs/reproduce] [--check]
        [--registry configs/reproduce/figures.yaml] [--threads N]

``--check`` exits with status 1 when a row has a seed that did not reach its level.

A registry row::

    fig6:                          # the row's name (--only)
      config: guessing_game.yaml   # relative to the registry
      batches: 3000                # the training budget
      metric: test/final_error     # a value `badger test` logs
      documented: 0.000138         # the figure the docs print
      pass_at: 0.001               # a seed reaches the figure at or below this (maximize: above)
      minutes: 4                   # expected minutes per seed on 2 cores (a guard: 4x)
      where: docs/results.md       # where the figure is documented
      flags: []                    # extra `badger fit` flags (optional)
      slow: true                   # left out of --fast
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from badger_graph.errors import ConfigError

_KEYS = {"config", "batches", "metric", "documented", "pass_at", "minutes", "where", "flags",
         "slow", "direction"}  # fmt: skip


@dataclass
class Row:
    """One documented figure: how to train it and what it should reach."""

    name: str
    config: Path
    batches: int
    metric: str
    documented: float
    pass_at: float
    minutes: float = 10.0
    where: str = ""
    flags: list[str] = field(default_factory=list)
    slow: bool = True
    direction: str = "minimize"

    def stopped_short(self, run: dict) -> bool:
        """Whether a seed's run stopped before the row's batches (its time guard, a signal)."""
        return run["batches"] < self.batches

    def seed_reached(self, run: dict) -> bool:
        """Whether a seed's run trained the row's batches and reached its level."""
        return not self.stopped_short(run) and self.reached(run["value"])

    def reached(self, value: float) -> bool:
        """Whether one seed's value reaches the row's level."""
        if not math.isfinite(value):
            return False
        return value <= self.pass_at if self.direction == "minimize" else value >= self.pass_at


def default_registry() -> Path:
    """The registry of the documented figures, shipped with the configs."""
    from badger_graph.pretrained import configs_dir

    return configs_dir() / "reproduce" / "figures.yaml"


def load_registry(path: str | Path) -> list[Row]:
    """The rows of a registry file; a bad row is a :class:`ConfigError` naming it."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"reproduce registry {str(path)!r}: {e}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"reproduce registry {str(path)!r}: expected a mapping of rows")
    rows = []
    for name, spec in data.items():
        where = f"reproduce registry {str(path)!r}, row {name!r}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping, got {spec!r}")
        unknown = sorted(set(spec) - _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(_KEYS)}")
        missing = [k for k in ("config", "batches", "metric", "documented", "pass_at")
                   if k not in spec]  # fmt: skip
        if missing:
            raise ConfigError(f"{where}: missing {missing}")
        config = (path.parent / spec["config"]).resolve()
        if not config.is_file():
            raise ConfigError(f"{where}: config {spec['config']!r} is not a file ({config})")
        batches = spec["batches"]
        if not isinstance(batches, int) or isinstance(batches, bool) or batches < 1:
            raise ConfigError(f"{where}: batches must be an int >= 1, got {batches!r}")
        direction = spec.get("direction", "minimize")
        if direction not in ("minimize", "maximize"):
            raise ConfigError(f"{where}: direction must be minimize or maximize, got {direction!r}")
        rows.append(
            Row(
                name=str(name),
                config=config,
                batches=batches,
                metric=str(spec["metric"]),
                documented=float(spec["documented"]),
                pass_at=float(spec["pass_at"]),
                minutes=float(spec.get("minutes", 10.0)),
                where=str(spec.get("where", "")),
                flags=[str(f) for f in spec.get("flags") or []],
                slow=bool(spec.get("slow", True)),
                direction=direction,
            )
        )
    return rows


def _finished(folder: Path, batches: int) -> dict | None:
    """The last checkpoint of ``folder`` if its run reached ``batches``, else ``None``."""
    from badger_graph.checkpoint import safe_load

    last = folder / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    try:
        state = safe_load(last)
    except Exception:  # an unreadable file: train (the fit names what is wrong with it)
        return None
    return state if int(state.get("global_step", 0)) >= batches else None


def run_seed(row: Row, seed: int, out: Path, threads: str | None = None) -> dict[str, Any]:
    """Train (or resume, or reuse) one seed of ``row`` and evaluate it on the test episodes."""
    from badger_graph.cli import _lightning_cli, quiet_lightning

    folder = out / row.name / f"seed_{seed}"
    guard = max(1, math.ceil(4 * row.minutes))
    args = [
        "--config", str(row.config),
        "--seed_everything", str(seed), "--data.seed", str(seed),
        "--trainer.max_steps", str(row.batches),
        "--trainer.max_time", f"00:{guard // 60:02d}:{guard % 60:02d}:00",
        "--trainer.default_root_dir", str(folder),
        "--trainer.enable_progress_bar", "false",
        *row.flags,
    ]  # fmt: skip
    if threads is not None:
        args += ["--threads", threads]
    state = _finished(folder, row.batches)
    if state is not None:  # evaluate the finished run, do not train it again
        cli = _lightning_cli(args, run=False)
        cli.model.load_state_dict(state["state_dict"])
        batches = int(state["global_step"])
        seconds = _seconds_of(folder)
        trained = False
    else:
        start = time.perf_counter()
        cli = _lightning_cli(["fit", *args, "--ckpt_path", "last"])
        batches = int(cli.trainer.global_step)
        seconds = time.perf_counter() - start
        trained = True
    with quiet_lightning():
        results = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    if not results or row.metric not in results[0]:
        known = sorted(results[0]) if results else []
        raise ConfigError(
            f"row {row.name!r}: the test logged no {row.metric!r} (it logged {known})"
        )
    value = float(results[0][row.metric])
    return {"seed": seed, "value": value, "batches": batches, "seconds": seconds,
            "trained": trained, "folder": str(folder)}  # fmt: skip


def _seconds_of(folder: Path) -> float | None:
    """The training seconds a finished run logged (``train/seconds``), if any."""
    import csv

    best = None
    for log in sorted((folder / "logs").glob("version_*/metrics.csv")):
        with log.open() as f:
            for r in csv.DictReader(f):
                if r.get("train/seconds"):
                    best = float(r["train/seconds"])
    return best


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error over seeds (0 for one seed)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def table(rows: list[Row], results: dict[str, list[dict]]) -> str:
    """The markdown table: documented vs measured, per seed, batches and seconds."""
    lines = [
        "| row | config | batches | documented | level | measured (mean ± s.e.) | per seed "
        "| seconds per seed | reached |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        runs = results.get(row.name)
        if not runs:
            continue
        values = [r["value"] for r in runs]
        mean, se = mean_se(values)
        per = ", ".join(f"{v:.3g}" for v in values)
        secs = ", ".join("?" if r["seconds"] is None else f"{r['seconds']:.0f}" for r in runs)
        batches = ", ".join(
            f"{r['batches']:,}" + (" (short)" if row.stopped_short(r) else "") for r in runs
        )
        op = "≤" if row.direction == "minimize" else "≥"
        reached = sum(row.seed_reached(r) for r in runs)
        lines.append(
            f"| {row.name} | {row.config.name} | {batches} | {row.documented:.3g} | "
            f"{op} {row.pass_at:.3g} | {mean:.3g} ± {se:.2g} | {per} | {secs} | "
            f"{reached} of {len(values)} |"
        )
    return "\n".join(lines)


def reproduce_main(argv: list[str]) -> None:
    """``badger reproduce``: see the module's docstring."""
    from badger_graph.callbacks import run_folder
    from badger_graph.commands import _at_least

    p = argparse.ArgumentParser(
        prog="badger reproduce", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--registry", default=None, help="the rows (default: the shipped ones)")
    p.add_argument("--only", default=None, help="comma-separated row names")
    p.add_argument("--fast", action="store_true", help="only the rows with slow: false")
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 per row")
    p.add_argument("--first_seed", type=int, default=0, help="the first training seed")
    p.add_argument("--out", default="runs/reproduce", help="the run folders")
    p.add_argument("--threads", default=None, help="passed to badger fit --threads")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when a seed of a row did not reach the row's level")  # fmt: skip
    a = p.parse_args(argv)
    _at_least(p, a, seeds=1, first_seed=0)
    rows = load_registry(a.registry or default_registry())
    if a.only:
        names = [n for n in a.only.split(",") if n]
        unknown = [n for n in names if n not in {r.name for r in rows}]
        if unknown:
            p.error(f"--only: unknown rows {unknown}; known: {[r.name for r in rows]}")
        rows = [r for r in rows if r.name in names]
    if a.fast:
        rows = [r for r in rows if not r.slow]
    out = run_folder(a.out)
    seeds = range(a.first_seed, a.first_seed + a.seeds)
    total = sum(r.minutes for r in rows) * len(seeds)
    print(f"reproducing {len(rows)} rows × {len(seeds)} seeds (about {total:.0f} minutes "
          f"on 2 cores)", file=sys.stderr, flush=True)  # fmt: skip
    results: dict[str, list[dict]] = {}
    for row in rows:
        for seed in seeds:
            r = run_seed(row, seed, out, a.threads)
            results.setdefault(row.name, []).append(r)
            print(f"{row.name} seed {seed}: {row.metric} {r['value']:.4g} after "
                  f"{r['batches']:,} batches", file=sys.stderr, flush=True)  # fmt: skip
            if row.stopped_short(r):
                print(f"{row.name} seed {seed} stopped at {r['batches']:,} of {row.batches:,} "
                      f"batches (its time guard, which counts the time of earlier runs in "
                      f"{r['folder']}): it does not count as reached; train it on with "
                      f"`badger fit ... --ckpt_path last` and a larger --trainer.max_time",
                      file=sys.stderr, flush=True)  # fmt: skip
    print(table(rows, results))
    failed = [r.name for r in rows if not all(r.seed_reached(x) for x in results[r.name])]
    if failed:
        print(f"not reached on every seed: {', '.join(failed)}", file=sys.stderr)
        if a.check:
            raise SystemExit(1)
