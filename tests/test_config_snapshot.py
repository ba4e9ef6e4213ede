"""Every shipped config parses to the same full config as recorded (``--print_config``).

Configs are overlays of bases; rewriting them (a new base, a default left out) must not
change what an experiment runs. The full config of each is recorded as a hash in
``tests/data/full_configs.json``; a change to a config or to a default shows up here.
After an intended change: ``UPDATE_CONFIG_SNAPSHOT=1 pytest tests/test_config_snapshot.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from badger_graph.cli import cli_main

ROOT = Path(__file__).parents[1]
SNAPSHOT = ROOT / "tests" / "data" / "full_configs.json"
CONFIGS = sorted(
    p.relative_to(ROOT / "configs").as_posix()
    for p in (ROOT / "configs").rglob("*.yaml")
    if p.parent.name not in ("tune", "reproduce", "base")
)


def _full(config: str, capsys) -> str:
    """The experiment a config runs: its full config, less the trainer settings that are
    Lightning's own defaults (so a Lightning release with new options changes nothing)."""
    import inspect

    import yaml
    from lightning.pytorch import Trainer

    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", str(ROOT / "configs" / config), "--print_config"])
    full = yaml.safe_load(capsys.readouterr().out)
    defaults = {k: p.default for k, p in inspect.signature(Trainer.__init__).parameters.items()}
    full["trainer"] = {
        k: v for k, v in (full.get("trainer") or {}).items()
        if k not in defaults or v != defaults[k]
    }  # fmt: skip
    return json.dumps(full, sort_keys=True, default=str)


def test_every_config_parses_to_its_recorded_full_config(capsys):
    got = {c: hashlib.sha256(_full(c, capsys).encode()).hexdigest()[:16] for c in CONFIGS}
    if os.environ.get("UPDATE_CONFIG_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(SNAPSHOT.read_text())
    changed = sorted(c for c in CONFIGS if recorded.get(c) != got[c])
    assert not changed, f"these configs now parse to another full config: {changed}"
