"""Checkpoint files: version stamps, loading weights into any agent size, old formats.

A checkpoint is a Lightning checkpoint of :class:`~badger_graph.BadgerModule`. Its weights
do not depend on the number of experts, ports or agents, so they load into a bigger or
smaller agent of the same channel sizes. Nothing here needs Lightning.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from badger_graph.errors import CheckpointError


def _version() -> str:
    from badger_graph import __version__

    return __version__


def _release(version: str, path: str) -> tuple[int, int]:
    try:
        major, minor = (int(x) for x in str(version).split(".")[:2])
    except ValueError:
        raise CheckpointError(
            f"{path} has an invalid badger_graph version stamp {version!r} (want MAJOR.MINOR.PATCH)"
        ) from None
    return major, minor


def check_version(checkpoint: dict, path: str = "checkpoint") -> None:
    """Raise if ``checkpoint`` was written by a newer, incompatible badger_graph.

    Newer means a newer checkpoint format, or a newer major version (newer minor version
    while the major version is 0, where minor versions may change formats).
    """
    theirs = checkpoint.get("badger_graph_version")
    fmt = checkpoint.get("badger_graph_format", 1)
    if theirs is None and fmt == 1:
        return  # written before versions were stamped (0.1.0 alpha): format 1
    ours = _version()
    newer = fmt > FORMAT
    if theirs is not None:
        (a, b), (c, d) = _release(theirs, path), _release(ours, "this badger_graph")
        newer = newer or a > c or (a == c == 0 and b > d)
    if newer:
        raise CheckpointError(
            f"{path} was written by badger_graph {theirs}, newer than this {ours} (checkpoint "
            f"format {fmt} vs {FORMAT}); upgrade badger_graph to load it"
        )


#: format of the hyperparameters written by this version (see :func:`upgrade`)
FORMAT = 2
#: model hyperparameters of format 1 that moved into ``execution`` (with their new names)
_EXECUTION_KEYS = {
    "dense": "dense",
    "sparse": "sparse",
    "compile": "compile",
    "activation_checkpointing": "checkpoint",
}


def stamp(checkpoint: dict, train_batches: int, skipped: int, unstepped: int) -> None:
    """Write the library version, the format and the batch counters into ``checkpoint``."""
    checkpoint["badger_graph_version"] = _version()
    checkpoint["badger_graph_format"] = FORMAT
    checkpoint["badger_graph_skipped_batches"] = skipped
    checkpoint["badger_graph_unstepped_batches"] = unstepped
    checkpoint["badger_graph_train_batches"] = train_batches


def upgrade(checkpoint: dict) -> dict:
    """Bring the hyperparameters of an earlier format up to this one (in place).

    Format 1 (before execution settings and outer loops were objects) had the execution
    knobs ``dense``, ``sparse``, ``compile``, ``activation_checkpointing`` and the outer
    loop knobs ``truncate_bptt``, ``gradient_clip_val``, ``es`` at the top of the model's
    hyperparameters; they become ``execution`` and ``outer_loop``. Weights are unchanged.
    """
    if checkpoint.get("badger_graph_format", 1) >= FORMAT:
        return checkpoint
    hp = checkpoint.get("hyper_parameters")
    if isinstance(hp, dict):
        execution = {new: hp.pop(old) for old, new in _EXECUTION_KEYS.items() if old in hp}
        execution = {k: v for k, v in execution.items() if v not in (None, "auto", False)}
        if execution:
            hp["execution"] = execution
        clip = hp.pop("gradient_clip_val", 1.0)
        chunk, es = hp.pop("truncate_bptt", None), hp.pop("es", None)
        if es is not None:
            es = dict(es) if isinstance(es, dict) else {"init_args": {}}
            es["class_path"] = "badger_graph.outer.EvolutionStrategy"
            es.setdefault("init_args", {})["gradient_clip_val"] = clip
            hp["outer_loop"] = es
        elif chunk is not None:
            hp["outer_loop"] = {
                "class_path": "badger_graph.outer.TruncatedBPTT",
                "init_args": {"steps": chunk, "gradient_clip_val": clip},
            }
    checkpoint["badger_graph_format"] = FORMAT
    return checkpoint


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, folder gone, ...); the previous file is intact.

    Attributes:
        path (str): the checkpoint that was being written.
    """

    def __init__(self, path: str, cause: OSError) -> None:
        self.path = str(path)
        reason = cause.strerror or str(cause) or type(cause).__name__
        kept = (
            f"the previous {os.path.basename(self.path)} is intact"
            if os.path.exists(self.path)
            else "no earlier file of that name existed"
        )
        super().__init__(
            cause.errno, f"could not write the checkpoint {self.path!r} ({reason}); {kept}"
        )

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def atomic_save(obj, path: str | Path) -> None:
    """``torch.save`` of ``obj`` to ``path`` that never leaves a partial or truncated file.

    The bytes go to a temporary file in the *same* folder (``.NAME.PID.tmp``, never taken
    for a checkpoint by ``--ckpt_path last``), are flushed and ``fsync``-ed, and only then
    replace ``path`` with :func:`os.replace` (atomic within one file system); the folder is
    ``fsync``-ed after. Until the replace the previous file at ``path`` is untouched, so a
    full disk, a kill or a power cut leaves either the old or the new checkpoint, whole.
    (Lightning's default writer goes through a temporary file in ``$TMPDIR`` and moves it
    across file systems, which overwrites the old file in place.)

    Raises:
        CheckpointWriteError: the write failed (naming the file and the cause); the
            temporary file is removed and the previous file is left as it was.
    """
    import io

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getbuffer()
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise CheckpointWriteError(path, e) from e
    with contextlib.suppress(OSError):  # the rename itself on disk (not on every system)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def resolve(path: str | Path) -> Path:
    """The checkpoint file ``path``, also relative to the repository root for shipped ones.

    Raises:
        FileNotFoundError: no such file.
    """
    if Path(path).is_file():
        return Path(path)
    # shipped configs name shipped checkpoints relative to the repository root
    shipped = Path(__file__).resolve().parent.parent / path
    if Path(path).is_absolute() or not shipped.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    return shipped


def safe_types() -> list[type]:
    """The classes a checkpoint of badger_graph may hold besides tensors and plain values.

    Hyperparameters of a model built in Python hold the execution settings, growth events
    and the optimizer / scheduler classes; from the CLI they are plain values. Loading
    allows exactly these (``torch.load(weights_only=True)`` with
    :func:`torch.serialization.safe_globals`), so a file cannot run code when read.
    """
    import inspect

    from badger_graph.curriculum import EpisodeSpec
    from badger_graph.execution import Execution
    from badger_graph.growth import GrowthEvent

    types: list[type] = [Execution, GrowthEvent, EpisodeSpec]
    for module in (torch.optim, torch.optim.lr_scheduler):
        types += [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, torch.optim.Optimizer | torch.optim.lr_scheduler.LRScheduler)
        ]
    return types


def safe_load(path: str | Path, what: str = "torch checkpoint"):
    """``torch.load`` of ``path`` that never runs code: tensors, plain values, :func:`safe_types`.

    Raises:
        ValueError: the file needs other Python objects (it is refused, naming them, and
            nothing of it is executed), or it is not a readable torch file.
    """
    import pickle

    types = safe_types()
    try:
        with torch.serialization.safe_globals(types):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        allowed = {
            f"{t.__module__}.{t.__qualname__}"
            for t in [*types, *torch.serialization.get_safe_globals()]
            if isinstance(t, type)
        }
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:  # not even a torch zip file
            unsafe = []
        unsafe = [u for u in unsafe if u not in allowed]
        if unsafe:
            raise CheckpointError(
                f"{str(path)!r} holds Python objects that badger_graph never writes "
                f"({', '.join(unsafe[:5])}); not loading it, since unpickling them could run "
                f"code. Write checkpoints with `badger fit` or Trainer.save_checkpoint"
            ) from None
        raise CheckpointError(
            f"{str(path)!r} is not a readable {what} (truncated, or another kind of "
            f"file): {type(e).__name__}"
        ) from None
    except Exception as e:  # zip errors of a wrong or truncated file
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if "weights_only" in first:
            first = ""
        raise CheckpointError(
            f"{str(path)!r} is not a readable {what} (truncated, or another kind of "
            f"file): {type(e).__name__}{': ' + first[:200] if first else ''}"
        ) from None


def read_checkpoint(path: str | Path) -> dict:
    """Read a Lightning checkpoint of badger_graph, upgraded to the current format.

    Loaded without running code (:func:`safe_load`): a file holding other Python objects
    than badger_graph writes is refused.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a readable torch file, not a Lightning checkpoint (no
            ``state_dict`` of tensors), a file holding other Python objects, or one written
            by a newer major version of badger_graph.
    """
    path = resolve(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{str(path)!r} is empty (0 bytes): not a checkpoint")
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        kind = "a plain state_dict" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{str(path)!r} holds {kind}, not a Lightning checkpoint of badger_graph (no "
            f"'state_dict' entry); write checkpoints with `badger fit` or Trainer.save_checkpoint"
        )
    weights = ckpt["state_dict"]
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        kind = type(weights).__name__
        if isinstance(weights, dict):
            bad = next(k for k, v in weights.items() if not isinstance(v, torch.Tensor))
            kind = f"dict whose entry {bad!r} is a {type(weights[bad]).__name__}"
        raise CheckpointError(
            f"{str(path)!r}: its 'state_dict' must map weight names to tensors, got a {kind}"
        )
    check_version(ckpt, repr(str(path)))
    return upgrade(ckpt)


#: where the classes a checkpoint's hyperparameters may name live (module prefixes)
ALLOWED_CLASS_PATHS = ("badger_graph.", "torch.optim.")
#: hyperparameters that name a class (a ``class_path`` dict, or a bare class path string)
_CLASS_KEYS = (
    "policy",
    "topology",
    "task",
    "learner",
    "ports",
    "outer_loop",
    "curriculum",
    "optimizer",
    "lr_scheduler",
)


def class_paths(hparams) -> list[str]:
    """Every class path that ``hparams`` (a checkpoint's hyperparameters) would import.

    The ``class_path`` entries at any depth, and bare strings where a class is expected
    (the model's class-typed arguments, which jsonargparse also accepts as a plain path).
    """
    found: list[str] = []

    def walk(value, key: str | None = None) -> None:
        if isinstance(value, dict):
            path = value.get("class_path")
            if path is not None:
                found.append(str(path))
            for k, v in value.items():
                if k != "class_path":
                    walk(v, k)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in _CLASS_KEYS:
            found.append(value)

    walk(hparams)
    return found


def check_class_paths(hparams, path: str | Path = "checkpoint", allow=()) -> None:
    """Refuse, before anything is imported, a class path outside the allow-list.

    A checkpoint must not choose what code runs: the classes its hyperparameters name are
    checked against :data:`ALLOWED_CLASS_PATHS` (the library's own, torch optimizers and
    schedulers) and the module prefixes or exact paths in ``allow`` (what the user's own
    config names). Nothing is imported by the check.

    Raises:
        CheckpointError: naming the file and every class path outside the list.
    """
    allowed = tuple(ALLOWED_CLASS_PATHS) + tuple(allow)

    def ok(name: str) -> bool:
        return any(name == a or (a.endswith(".") and name.startswith(a)) for a in allowed)

    bad = sorted({c for c in class_paths(hparams) if not ok(c)})
    if bad:
        raise CheckpointError(
            f"{str(path)!r} names classes outside badger_graph and torch.optim in its saved "
            f"hyperparameters ({', '.join(bad[:5])}); not importing them, since a checkpoint "
            f"must not choose what code runs. Build the model from your config instead "
            f"(--config, or BadgerModule.load_from_checkpoint(..., allow=[...]) naming the "
            f"modules you trust)"
        )


def comparable(value):
    """A saved setting as a plain value to compare with another's.

    Namespaces (``as_dict``) and dicts become dicts without ``None`` entries, tuples become
    lists, at any depth: a config's ``betas: [0.9, 0.999]`` equals a checkpoint's tuple.
    """
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return value


def same_setting(config_value, saved_value) -> bool:
    """Whether a config's setting is what a checkpoint saved (:func:`comparable` values).

    An argument the checkpoint's class settings lack (the checkpoint predates it) counts as
    the same when the config gives it its default, so a new option of a class does not make
    every older checkpoint "trained with other settings".
    """
    saved = comparable(saved_value)
    return _without_new_defaults(comparable(config_value), saved) == saved


def _without_new_defaults(new, old):
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [_without_new_defaults(n, o) for n, o in zip(new, old, strict=True)]
    if not (isinstance(new, dict) and isinstance(old, dict)):
        return new
    out = {k: _without_new_defaults(v, old[k]) if k in old else v for k, v in new.items()}
    args, saved = new.get("init_args"), old.get("init_args")
    if (
        isinstance(args, dict)
        and isinstance(saved, dict)
        and new.get("class_path") == old.get("class_path")
    ):
        defaults = _parameter_defaults(new["class_path"])
        out["init_args"] = {
            k: v
            for k, v in out["init_args"].items()
            if k in saved or k not in defaults or comparable(defaults[k]) != v
        }
    return out


def _parameter_defaults(class_path) -> dict:
    """``{argument: default}`` of a class the config names (already imported by the CLI)."""
    import importlib
    import inspect

    if not isinstance(class_path, str) or "." not in class_path:
        return {}
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        params = inspect.signature(cls).parameters.values()
    except (ImportError, AttributeError, TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def load_weights(model: torch.nn.Module, path: str | Path) -> dict:
    """Load the weights of a checkpoint into ``model``; returns the checkpoint.

    Any number of experts, ports and agents fits: weights depend on channel sizes only.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a checkpoint (see :func:`read_checkpoint`), or its
            weights do not fit the model (missing / unexpected keys, other shapes such as a
            different hidden size), with the offending names and shapes.
    """
    ckpt = read_checkpoint(path)
    own = model.state_dict()
    theirs = ckpt["state_dict"]
    missing = sorted(set(own) - set(theirs))
    unexpected = sorted(set(theirs) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(theirs[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in theirs and tuple(theirs[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this model (different channel sizes, "
            f"ports or policy?): missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatches {shapes[:5]}"
        )
    bad = [k for k, v in theirs.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds NaN or inf in the weights {bad[:5]}: it cannot "
            f"be run or trained further; use an earlier checkpoint of the run"
        )
    model.load_state_dict(theirs)
    return ckpt
