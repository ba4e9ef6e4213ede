"""Tables and a heat map of the generalist models from their ``badger matrix`` results.

    for n in all_six family_code ...; do
      badger matrix --model $n=configs/generalist/$n.yaml:runs/generalist/$n/checkpoints/last.ckpt \
        --episodes 1000 --out matrices/$n
    done
    python benchmarks/generalist_report.py matrices --runs runs/generalist --out docs/generalist

Reads ``<matrices>/<model>/matrix.csv``, writes ``<out>/matrix.csv`` and ``<out>/matrix.png``
(every model × family, error relative to the family's best baseline) and prints two
markdown tables: the generalist and its variants on all six families, and each
leave-one-family-out model on the family it never saw.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from badger_graph.checkpoint import read_checkpoint
from badger_graph.comparison.runs import run_files
from badger_graph.plots import plot_matrix

FAMILIES = ["guessing", "moving_target", "optimization", "bandits", "regression", "classification"]
VARIANTS = {
    "all_six": "all six families, 6 experts, 10 min",
    "family_code": "+ family code on 6 input nodes",
    "experts12": "12 experts",
    "long": "20 min (twice the budget)",
    "curriculum": "easy to hard (3 stages)",
}


def _batches(runs: Path | None, name: str) -> str:
    if runs is None:
        return ""
    ckpt, _ = run_files(runs, name)
    if not ckpt.is_file():
        return "?"
    return f"{read_checkpoint(ckpt)['global_step']:,}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("matrices", type=Path)
    p.add_argument("--runs", type=Path, default=None, help="run folders (for the batches)")
    p.add_argument("--out", type=Path, default=Path("docs/generalist"))
    a = p.parse_args(argv)
    rows = []
    for path in sorted(a.matrices.glob("*/matrix.csv")):
        with path.open() as f:
            for r in csv.DictReader(f):
                for key in ("agent", "baseline", "relative", "chance"):
                    r[key] = float(r[key])
                rows.append(r)
    order = [*VARIANTS, *(f"without_{f}" for f in FAMILIES)]
    rows.sort(key=lambda r: order.index(r["trained_on"]) if r["trained_on"] in order else 99)
    a.out.mkdir(parents=True, exist_ok=True)
    with (a.out / "matrix.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot_matrix(rows, a.out / "matrix.png")
    cell = {(r["trained_on"], r["family"]): r for r in rows}

    print("| model | batches | " + " | ".join(FAMILIES) + " | within 1.5× |")
    print("|---|---|" + "---|" * (len(FAMILIES) + 1))
    for name, label in VARIANTS.items():
        if (name, FAMILIES[0]) not in cell:
            continue
        cells, ok = [], 0
        for fam in FAMILIES:
            r = cell[(name, fam)]
            ok += r["relative"] <= 1.5
            cells.append(f"{r['agent']:.3g} ({r['relative']:.2f}×)")
        print(f"| {label} | {_batches(a.runs, name)} | " + " | ".join(cells) + f" | {ok} of 6 |")
    print(
        "\n| held out | batches | error on it | chance | best baseline | relative | "
        "better than chance | seen families within 1.5× |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for fam in FAMILIES:
        name = f"without_{fam}"
        if (name, fam) not in cell:
            continue
        r = cell[(name, fam)]
        seen = sum(cell[(name, g)]["relative"] <= 1.5 for g in FAMILIES if g != fam)
        print(
            f"| {fam} | {_batches(a.runs, name)} | {r['agent']:.3g} | {r['chance']:.3g} | "
            f"{r['baseline']:.3g} ({r['best_baseline']}) | {r['relative']:.2f}× | "
            f"{'yes' if r['agent'] < r['chance'] else 'no'} | {seen} of 5 |"
        )


if __name__ == "__main__":
    main()
