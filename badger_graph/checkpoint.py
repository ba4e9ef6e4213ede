"""Checkpoint files: version stamps, loading weights into any agent size, old formats.

A checkpoint is a Lightning checkpoint of :class:`~badger_graph.BadgerModule`. Its weights
do not depend on the number of experts, ports or agents, so they load into a bigger or
smaller agent of the same channel sizes. Nothing here needs Lightning.
"""

from __future__ import annotations

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
