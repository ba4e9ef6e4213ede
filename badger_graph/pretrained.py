"""Shipped experiment configs and pretrained models, by name, from any install.

Every experiment config ships with the package (``configs/`` of the repository, installed as
``badger_graph/configs``) and is named by its path there without ``.yaml``:
``guessing_game``, ``compare/bandits_badger``, ``generalist/all_six``; the paper's figures
also by ``fig6``, ``fig7``, ``fig9``. ``badger fit --config fig6`` works from any directory.

Every shipped checkpoint is a :class:`Pretrained` model named like its config (``fig7``,
``compare/bandits_badger``, ``task_bandits``), with the config it was trained from, the
page that reports its figure and the command that evaluates it::

    from badger_graph import pretrained

    for m in pretrained.available():
        print(m.name, m.config, m.where)
    model = pretrained.load("fig7")          # a BadgerModule, ready to play
    badger test --config task_bandits --ckpt_path pretrained
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from badger_graph.errors import ConfigError

_HERE = Path(__file__).parent
#: the shipped checkpoints
CHECKPOINTS = _HERE / "checkpoints"
#: other names of configs: the paper's figures
ALIASES = {"fig6": "guessing_game", "fig9": "guessing_game_fast", "fig7": "fig7_finetune_growth"}
#: checkpoints whose config is not named like them (the Fig. 7 training stages)
_CONFIG_OF = {
    "fig7": "fig7_finetune_growth",
    "fig7_stage1": "fig7_d3to6_experts5to40",
    "fig7_random_identity": "fig7_finetune_random_identity",
    "fig7_random_identity_growth": "fig7_finetune_random_identity_growth",
    "fig7_fresh_growth40": "fig7_finetune_fresh_growth",
    "fig7_fresh_growth80": "fig7_finetune_fresh_growth80",
}
#: the page that reports the figure of each group of checkpoints
_WHERE = {
    "compare": "docs/comparison.md",
    "datasets": "docs/datasets.md",
    "generalist": "docs/generalist.md",
    "tasks": "docs/tasks.md",
    "": "docs/fig7.md",
}


def _registry_pages() -> dict[str, str]:
    """``config name -> page`` from the reproduction registry's rows (a config's last row).

    The page prints the figure of a model trained from that config.
    """
    from badger_graph.reproduce import default_registry, load_registry

    path = default_registry()
    rows = load_registry(path) if path.is_file() else []
    root = configs_dir().resolve()
    return {
        row.config.relative_to(root).with_suffix("").as_posix(): row.where.split(" (")[0]
        for row in rows
    }


def configs_dir() -> Path:
    """The folder of the shipped configs (in the wheel, or ``configs/`` of a source tree)."""
    inside = _HERE / "configs"
    if inside.is_dir():
        return inside
    tree = _HERE.parent
    if (tree / "pyproject.toml").is_file() and (tree / "configs").is_dir():
        return tree / "configs"
    raise FileNotFoundError(f"no shipped configs beside {_HERE}")


def config_names() -> list[str]:
    """Every shipped config's name (its path under the configs folder, no ``.yaml``)."""
    root = configs_dir()
    names = [p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml")]
    return sorted(n for n in names if not n.startswith(("tune/", "base/", "reproduce/")))


def config_path(name: str) -> Path:
    """The file of a shipped config named ``name`` (or an alias such as ``fig6``).

    Raises:
        ConfigError: listing the known names, when none is called ``name``.
    """
    name = ALIASES.get(name, name).removesuffix(".yaml")
    path = configs_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join([*ALIASES, *config_names()])
        raise ConfigError(f"no config file or shipped config named {name!r}; shipped: {known}")
    return path


@dataclass(frozen=True)
class Pretrained:
    """One shipped model: its name, checkpoint, config and where its figure is reported."""

    name: str
    checkpoint: Path
    config: str  # the config's name (config_path gives the file)
    where: str

    @property
    def command(self) -> str:
        """The command that evaluates it on its config's test episodes."""
        return f"badger test --config {self.config} --ckpt_path pretrained"


def available() -> list[Pretrained]:
    """Every shipped model whose config ships too, sorted by name."""
    out, pages = [], _registry_pages()
    for ckpt in sorted(CHECKPOINTS.rglob("*.ckpt")):
        rel = ckpt.relative_to(CHECKPOINTS).with_suffix("").as_posix()
        group = rel.split("/")[0] if "/" in rel else ""
        name = rel.removeprefix("tasks/")
        config = _CONFIG_OF.get(name, name)
        if group == "compare" and rel.count("/") == 2:  # compare/seeds/<config>_s<seed>
            config = "compare/" + ckpt.stem.rsplit("_s", 1)[0]
        try:
            config_path(config)
        except ConfigError:
            continue
        where = pages.get(config, _WHERE.get(group, "docs/"))
        out.append(Pretrained(name, ckpt, config, where))
    return out


def get(name: str) -> Pretrained:
    """The shipped model called ``name``; a :class:`ConfigError` lists the known names.

    A figure's name (``fig6``, ``fig9``; :data:`ALIASES`) names the model of its config when
    no model has that name itself.
    """
    models = available()
    for wanted in (name, ALIASES.get(name, name)):
        for m in models:
            if m.name == wanted:
                return m
    known = ", ".join(m.name for m in models)
    raise ConfigError(f"no pretrained model named {name!r}; shipped: {known}")


def for_config(config: str) -> Pretrained:
    """The shipped model trained from the config ``config`` (a name or a shipped file)."""
    path = Path(config)
    if path.is_file():
        try:
            config = path.resolve().relative_to(configs_dir().resolve()).with_suffix("")
        except ValueError:
            raise ConfigError(
                f"--ckpt_path pretrained needs a shipped config, got {str(path)!r}"
            ) from None
        config = config.as_posix()
    config = ALIASES.get(config, config)
    models = [m for m in available() if m.config == config]
    models.sort(key=lambda m: m.name != config)  # the model named like the config first
    if not models:
        known = ", ".join(sorted({m.config for m in available()}))
        raise ConfigError(f"no pretrained model of config {config!r}; configs with one: {known}")
    return models[0]


def load(name: str, map_location: str = "cpu"):
    """A :class:`~badger_graph.BadgerModule` built from the model's config with its weights."""
    from badger_graph.cli import build_from_config

    m = get(name)
    return build_from_config(str(config_path(m.config)), str(m.checkpoint))


def resolve_checkpoint(value: str) -> str:
    """``value`` if it is a file, else the shipped checkpoint it names.

    A name (``fig7_stage1``) or a path ending in the shipped folder
    (``badger_graph/checkpoints/fig7_stage1.ckpt``, as the Fig. 7 configs spell their
    ``init_weights``) resolves to the installed file, so configs work from any directory.
    """
    if Path(value).is_file():
        return value
    stem = value.replace("\\", "/").split("badger_graph/checkpoints/")[-1].removesuffix(".ckpt")
    candidate = CHECKPOINTS / f"{stem}.ckpt"
    return str(candidate) if candidate.is_file() else value
