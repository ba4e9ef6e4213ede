"""Several `badger sweep` results side by side: one table and one plot per sweep axis.

    python benchmarks/fig7_curves.py \\
        --curve "trained at d = 3=docs/fig7_d3" \\
        --curve "d = 3, then d = 6=docs/fig7_d3_then_d6" \\
        --curve "d 3..6, 5..40 experts (shipped)=docs/fig7" \\
        --out docs/fig7_curves

Each ``--curve LABEL=FOLDER`` names a folder written by ``badger sweep --out FOLDER``
(``dims.csv``, ``experts.csv``). Prints a markdown table per axis (one column per curve)
and writes ``dims.png`` / ``experts.png`` with every curve in ``--out``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def read_rows(path: Path) -> list[dict]:
    with path.open() as f:
        return [
            {k: (int(v) if k in ("d", "experts") else float(v)) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--curve", action="append", required=True, help="LABEL=FOLDER")
    p.add_argument("--out", required=True, help="folder for dims.png and experts.png")
    a = p.parse_args()
    from badger_graph.plots import plot_sweeps

    curves = {}
    for spec in a.curve:
        label, sep, folder = spec.rpartition("=")
        if not sep or not label:
            p.error(f"--curve must look like LABEL=FOLDER, got {spec!r}")
        curves[label] = Path(folder)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for axis, x in (("dims", "d"), ("experts", "experts")):
        tables = {}
        for label, folder in curves.items():
            path = folder / f"{axis}.csv"
            if not path.exists():
                p.error(f"{path} does not exist (run `badger sweep --out {folder}` first)")
            tables[label] = read_rows(path)
        xs = sorted({r[x] for rows in tables.values() for r in rows})
        print(f"\n{axis}: error per {x}\n")
        print(f"| {x} | " + " | ".join(tables) + " |")
        print("|---|" + "---|" * len(tables))
        for v in xs:
            cells = []
            for rows in tables.values():
                hit = [r["error"] for r in rows if r[x] == v]
                cells.append(f"{hit[0]:.4f}" if hit else "")
            print(f"| {v} | " + " | ".join(cells) + " |")
        print(f"\nwrote {plot_sweeps(tables, x, out / f'{axis}.png')}")


if __name__ == "__main__":
    main()
