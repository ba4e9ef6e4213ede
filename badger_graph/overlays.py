"""Config overlays (``base:``) and shipped configs by name, as ``--config`` values.

:func:`expand_overlays` turns a command line's ``--config`` values into the files
jsonargparse stacks: a shipped config's name becomes its file, an overlay its base chain
then its own lines, ``--ckpt_path pretrained`` the model shipped for the config.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from badger_graph.errors import ConfigError


def expand_overlays(argv: list[str]) -> list[str]:
    """Each ``--config X`` whose YAML names a ``base:`` becomes its base's, then its own.

    An overlay holds only the lines an experiment changes and names the file it changes
    (``base: ../base/guessing_game.yaml``, relative to the overlay; a base may itself name
    one). jsonargparse stacks ``--config`` files in order, so the overlay's lines win and
    ``badger fit --config configs/X.yaml`` stays one command. An overlay that names no
    ``trainer.default_root_dir`` of its own runs in ``runs/<its name>``, not in its base's
    folder: a shipped config's name (``runs/compare/bandits_rnn``), else its file name.

    A ``--config`` value or a ``base:`` that is not a file but a shipped config's name
    (:mod:`badger_graph.pretrained`) becomes that file, and ``--ckpt_path pretrained`` the
    model shipped for the config.

    Raises:
        ConfigError: naming the file, when a base does not exist, the chain loops or a file
            is not valid YAML.
    """
    import yaml

    def chain(path: Path, seen: tuple[Path, ...]) -> list[str]:
        if not path.is_file():
            named = f" (the base of {str(seen[-1])!r})" if seen else ""
            raise ConfigError(f"config {str(path)!r}{named} does not exist")
        if path.resolve() in seen:
            loop = " -> ".join(str(p) for p in (*seen, path.resolve()))
            raise ConfigError(f"config {str(path)!r} is its own base (a loop: {loop})")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"config {str(path)!r} is not valid YAML{where}: {problem}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"config {str(path)!r} cannot be read: {e}") from None
        if not isinstance(data, dict) or "base" not in data:
            return [str(path)]
        named = str(data.pop("base"))
        trainer = data.get("trainer")
        if not seen and not (isinstance(trainer, dict) and "default_root_dir" in trainer):
            # the run folder is the experiment's, not its base's: runs/<this file's name>
            own = trainer if isinstance(trainer, dict) else {}
            data["trainer"] = {**own, "default_root_dir": f"runs/{_run_name(path)}"}
        base = path.parent / named
        if not base.exists() and _is_name(named):  # a shipped config by name: base: fig6
            from badger_graph import pretrained

            with contextlib.suppress(ConfigError):  # else named below as a missing base
                base = pretrained.config_path(named)
        return [*chain(base, (*seen, path.resolve())), yaml.safe_dump(data, sort_keys=False)]

    from badger_graph import pretrained

    out, i, first = [], 0, None
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
        elif arg.startswith("--config="):
            value, i = arg.split("=", 1)[1], i + 1
        else:
            out.append(arg)
            i += 1
            continue
        if _is_name(value) and not Path(value).exists():  # a shipped config by name
            value = str(pretrained.config_path(value))
        first = first or value
        files = [value]
        if value.endswith((".yaml", ".yml")) and Path(value).is_file():
            files = chain(Path(value), ())
        for f in files:
            out += ["--config", f]
    for j, arg in enumerate(out):  # --ckpt_path pretrained: the model shipped for the config
        if arg in ("--ckpt_path=pretrained", "--ckpt_path") and (
            arg.endswith("=pretrained") or out[j + 1 : j + 2] == ["pretrained"]
        ):
            if first is None:
                raise ConfigError("--ckpt_path pretrained needs --config (a shipped config)")
            ckpt = str(pretrained.for_config(first).checkpoint)
            out[j : j + (1 if arg.endswith("=pretrained") else 2)] = ["--ckpt_path", ckpt]
            break
    return out


def _run_name(path: Path) -> str:
    """A config's run folder name: its shipped name (``compare/bandits_rnn``) or file stem."""
    from badger_graph import pretrained

    try:
        name = path.resolve().relative_to(pretrained.configs_dir().resolve())
    except (ValueError, FileNotFoundError):
        return path.stem
    return name.with_suffix("").as_posix()


def _is_name(value: str) -> bool:
    """Whether a ``--config`` value looks like a shipped config's name (not YAML text)."""
    return re.fullmatch(r"[\w.-]+(/[\w.-]+)*", value) is not None
