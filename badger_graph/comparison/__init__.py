"""BADGER against other learned learners and the task's baselines, on the same episodes.

The evaluation harness behind ``docs/comparison.md`` (``benchmarks/compare_learners.py``,
``compare_seeds.py`` and ``compare_curves.py`` are command lines over it):

- :mod:`~badger_graph.comparison.families`: the families, their points and scores, and
  :func:`play_point` (fresh episodes per key: every learner and baseline plays the same);
- :mod:`~badger_graph.comparison.runs`: finding and loading trained runs (shipped or run
  folders) and reading their training logs;
- :mod:`~badger_graph.comparison.tables`: one run per learner → a family's table;
- :mod:`~badger_graph.comparison.seeds`: several training seeds → means over seeds, paired
  differences with verdicts, gaps to a baseline, the logs at equal batches;
- :mod:`~badger_graph.comparison.plots`: the figures.

Your own family: a :class:`Family` of :class:`Point` objects, passed as ``families=`` (or, from
the command line, ``compare_learners.py --extra_families MODULE``).
"""

from badger_graph.comparison.families import (
    FAMILIES,
    LEARNERS,
    Family,
    Point,
    play_point,
    point_key,
)
from badger_graph.comparison.runs import METRICS, Run, config_of, load_run, read_log, run_files
from badger_graph.comparison.seeds import seed_scores, seed_tables, verdict
from badger_graph.comparison.tables import FamilyResult, compare_family, family_table

__all__ = [
    "FAMILIES",
    "LEARNERS",
    "METRICS",
    "Family",
    "FamilyResult",
    "Point",
    "Run",
    "compare_family",
    "config_of",
    "family_table",
    "load_run",
    "play_point",
    "point_key",
    "read_log",
    "run_files",
    "seed_scores",
    "seed_tables",
    "verdict",
]
