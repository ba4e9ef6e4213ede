"""``badger rollout``, ``sweep``, ``analyze`` and ``matrix``: argparse tools over a model.

Each builds its model with :func:`badger_graph.cli.build_from_config` (a config, or a
shipped config's name, and a checkpoint, ``pretrained`` for the shipped one) and writes
figures and tables; ``badger fit`` / ``test`` are :mod:`badger_graph.cli`'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from badger_graph.callbacks import check_run_dir
from badger_graph.cli import build_from_config
from badger_graph.module import BadgerModule


def rollout_main(argv: list[str]) -> None:
    """``badger rollout``: write a Fig. 6-like figure of a few episodes."""
    from badger_graph.plots import plot_rollout

    p = argparse.ArgumentParser(prog="badger rollout", description=rollout_main.__doc__)
    p.add_argument("--config", required=True, help="experiment YAML")
    p.add_argument("--ckpt_path", default=None, help="checkpoint (default: untrained)")
    p.add_argument("--out", default="rollout.png", help="PNG to write")
    p.add_argument("--episodes", type=int, default=10)
    _seed_argument(p, "rollout")
    a = p.parse_args(argv)
    _at_least(p, a, episodes=1, seed=0)
    model = build_from_config(a.config, a.ckpt_path)
    with torch.no_grad():
        life = model.runner.run(_seed(a, "rollout"), a.episodes, record=True)
    written = plot_rollout(life, a.out)
    err = life.errors.mean(1)
    print(f"wrote {written}; mean error per step: " + " ".join(f"{e:.4f}" for e in err.tolist()))


def _seed_argument(p: argparse.ArgumentParser, purpose: str) -> None:
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"episode seed (default: the {purpose} command's own stream, never drawn in "
        f"training, validation or test)",
    )


def _seed(a: argparse.Namespace, purpose: str, *index: int) -> int:
    """The user's --seed, or the command's own default stream (both hashed per index)."""
    from badger_graph.seeds import derive, episode_seed

    if a.seed is None:
        return episode_seed(purpose, *index)
    return derive(a.seed, *index) if index else a.seed


def _at_least(p: argparse.ArgumentParser, a: argparse.Namespace, **lows: int) -> None:
    """Exit with a usage error naming the flag whose value is below its minimum."""
    for name, low in lows.items():
        value = getattr(a, name)
        if value is not None and value < low:
            p.error(f"--{name} must be >= {low}, got {value}")


def _writable(p: argparse.ArgumentParser, folder: str, flag: str) -> None:
    """Exit with a usage error naming ``flag`` unless ``folder`` can be created and written."""
    try:
        check_run_dir(folder, checkpoints=False)
    except PermissionError as e:
        p.error(f"{flag} {folder!r}: {e}".replace("--trainer.default_root_dir", flag))


def default_checkpoint() -> Path:
    """The small pretrained Fig. 7 checkpoint shipped with the package."""
    return Path(__file__).parent / "checkpoints" / "fig7.ckpt"


def sweep_main(argv: list[str]) -> None:
    """``badger sweep``: error per d (1..20, 20 experts) and per number of experts (d = 3)."""
    from badger_graph.evaluation import DEFAULT_EXPERTS, sweep

    p = argparse.ArgumentParser(prog="badger sweep", description=sweep_main.__doc__)
    p.add_argument("--ckpt_path", default=None, help="checkpoint (default: the shipped one)")
    p.add_argument(
        "--config",
        default=None,
        help="config to build the model from (default: "
        "the hyperparameters saved in the checkpoint)",
    )
    p.add_argument("--out", default="sweep", help="folder for dims.csv, experts.csv and PNGs")
    p.add_argument("--episodes", type=int, default=2000, help="fresh episodes per point")
    _seed_argument(p, "sweep")
    p.add_argument("--dims", default="1-20", help="d values, e.g. 1-20 or 1,3,6")
    p.add_argument("--experts", default=",".join(map(str, DEFAULT_EXPERTS)))
    p.add_argument("--sweep_experts_at", type=int, default=20, help="experts of the d sweep")
    p.add_argument("--sweep_dims_at", type=int, default=3, help="d of the expert sweep")
    a = p.parse_args(argv)
    _at_least(p, a, episodes=1, seed=0, sweep_experts_at=1, sweep_dims_at=1)
    _writable(p, a.out, "--out")
    ckpt = a.ckpt_path or str(default_checkpoint())
    if ckpt == "pretrained" and a.config:
        from badger_graph.pretrained import for_config

        ckpt = str(for_config(a.config).checkpoint)
    if not Path(ckpt).exists():
        p.error(f"checkpoint {ckpt} does not exist")
    if a.config:
        model = build_from_config(a.config, ckpt)
    else:
        try:
            model = BadgerModule.load_from_checkpoint(ckpt, map_location="cpu")
        except (ValueError, FileNotFoundError) as e:
            p.error(str(e))
        model.eval()
    rows = sweep(
        model.runner,
        _int_list(a.dims, p, "--dims"),
        _int_list(a.experts, p, "--experts"),
        a.sweep_experts_at,
        a.sweep_dims_at,
        a.episodes,
        _seed(a, "sweep"),
        a.out,
    )
    for name, table in rows.items():
        print(f"\n{name}.csv")
        print("d,experts,error,chance,mean_baseline")
        for r in table:
            print(
                f"{r['d']},{r['experts']},{r['error']:.4f},{r['chance']:.4f},"
                f"{r['mean_baseline']:.4f}"
            )


def _int_list(text: str, parser: argparse.ArgumentParser, flag: str) -> list[int]:
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(x) for x in text.split("-"))
            values = list(range(lo, hi + 1))
        else:
            values = [int(x) for x in text.split(",") if x]
    except ValueError:
        parser.error(f"{flag} must look like 1-20 or 1,3,6; got {text!r}")
    if not values or min(values) < 1:
        parser.error(f"{flag} needs values >= 1, got {text!r}")
    return values


def analyze_main(argv: list[str]) -> None:
    """``badger analyze``: record a lifetime, export its graphs, metrics and figures."""
    import json

    from badger_graph import analysis
    from badger_graph.growth import GrowthEvent
    from badger_graph.plots import (
        plot_communication,
        plot_growth,
        plot_heatmap,
        plot_messages,
    )

    p = argparse.ArgumentParser(prog="badger analyze", description=analyze_main.__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--ckpt_path", default=None)
    p.add_argument("--out", default="analysis")
    p.add_argument("--num_experts", type=int, default=None, help="(default: the config's)")
    p.add_argument("--episodes", type=int, default=256, help="episodes for the error curves")
    _seed_argument(p, "analyze")
    p.add_argument("--agent", type=int, default=0, help="which episode's agent to export")
    a = p.parse_args(argv)
    _at_least(p, a, num_experts=1, episodes=1, seed=0, agent=0)
    _writable(p, a.out, "--out")
    model = build_from_config(a.config, a.ckpt_path)
    runner = model.runner
    n = a.num_experts or runner.num_experts
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        life = runner.run(_seed(a, "analyze", 0), a.agent + 1, num_experts=n, record=True)
    graphs = analysis.lifetime_graphs(life, a.agent)
    analysis.export(graphs, out / "graphs")
    m = analysis.metrics(graphs)
    # error vs growth: the un-grown agent and agents grown to 2N and 4N mid-lifetime
    T = runner.inner_steps
    rows = []
    with torch.no_grad():
        base = runner.run(_seed(a, "analyze", 1), a.episodes, num_experts=n)
        rows.append({"label": f"{n} experts", "errors": base.errors.mean(1).tolist()})
        for mult in (2, 4):
            for mode in ("fresh", "clone"):
                ev = [GrowthEvent(T // 2, (mult - 1) * n, mode)]
                g = runner.run(_seed(a, "analyze", 1), a.episodes, num_experts=n, growth=ev)
                rows.append(
                    {
                        "label": f"{n} -> {mult * n} at step {T // 2} ({mode})",
                        "errors": g.errors.mean(1).tolist(),
                    }
                )
    m["growth"] = [{"label": r["label"], "final_error": r["errors"][-1]} for r in rows]
    (out / "metrics.json").write_text(json.dumps(m, indent=2))
    plot_messages(life, out / "messages.png")
    plot_communication(analysis.aggregate(graphs), out / "communication.png")
    plot_heatmap(graphs, out / "heatmap.png")
    plot_growth(rows, out / "growth.png")
    print(f"wrote {out}/graphs/*.graphml|json, metrics.json and 4 PNGs")
    print(
        f"top sender: node {m['top_sender']}; out-strength: "
        + ", ".join(f"{k}: {v:.2f}" for k, v in m["out_strength"].items())
    )
    for r in m["growth"]:
        print(f"final error, {r['label']}: {r['final_error']:.5f}")


def matrix_main(argv: list[str]) -> None:
    """``badger matrix``: trained models × task families, errors relative to baselines."""
    from badger_graph.matrix import default_families, evaluate, task_from_spec, write_csv
    from badger_graph.plots import plot_matrix

    families = default_families()
    p = argparse.ArgumentParser(prog="badger matrix", description=matrix_main.__doc__)
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=CONFIG:CKPT",
        help="a trained model (repeat the flag for more rows)",
    )
    p.add_argument(
        "--family",
        action="append",
        default=[],
        metavar="NAME=CLASS_PATH|CONFIG",
        help="add a test family: a Task class path (my_pkg.Forecasting, or with JSON init "
        'arguments my_pkg.Forecasting:{"horizon": 3}) or a config whose model.task it is',
    )
    p.add_argument("--families", default=None, help="test families (default: all)")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--out", default="matrix", help="folder for matrix.csv and matrix.png")
    a = p.parse_args(argv)
    _at_least(p, a, episodes=1)
    _writable(p, a.out, "--out")
    for spec in a.family:
        name, sep, what = spec.partition("=")
        if not (sep and name and what):
            p.error(f"--family must look like NAME=CLASS_PATH or NAME=CONFIG, got {spec!r}")
        try:
            families[name] = task_from_spec(what)
        except (ValueError, TypeError) as e:
            p.error(f"--family {name}: {e}")
    chosen = [f for f in (a.families or ",".join(families)).split(",") if f]
    bad = [f for f in chosen if f not in families]
    if bad or not chosen:
        p.error(f"--families: unknown {bad or chosen}; choose from {','.join(families)}")
    rows = []
    for spec in a.model:
        name, sep, rest = spec.partition("=")
        config, sep2, ckpt = rest.rpartition(":")
        if not (sep and sep2 and name and config and ckpt):
            p.error(f"--model must look like NAME=CONFIG:CKPT, got {spec!r}")
        runner = build_from_config(config, ckpt).runner
        for r in evaluate(runner, {f: families[f] for f in chosen}, a.episodes):
            rows.append({"trained_on": name, **r})
            if r["note"]:
                print(f"{name:>20} -> {r['family']:<15} {r['note']}")
                continue
            print(
                f"{name:>20} -> {r['family']:<15} agent {r['agent']:.4f}  "
                f"{r['best_baseline']} {r['baseline']:.4f}  ratio {r['relative']:.2f}  "
                f"({r['experts']} experts)"
            )
    out = Path(a.out)
    write_csv(rows, out / "matrix.csv")
    plot_matrix(rows, out / "matrix.png")
    print(f"wrote {out}/matrix.csv and {out}/matrix.png")
