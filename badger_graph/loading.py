"""Loading a checkpoint into a :class:`~badger_graph.BadgerModule`, and resuming one.

:func:`load_module` is ``BadgerModule.load_from_checkpoint``: the file is checked (format,
class paths) before Lightning builds the model, and what goes wrong is a
:class:`~badger_graph.errors.CheckpointError` naming the file. :func:`apply_optimizer_settings`
makes a resumed fit use the config's optimizer settings, saying what changed.
:class:`CheckpointHooks` is the module's side of it: its Lightning checkpoint hooks.
"""

from __future__ import annotations

import io

import torch
from lightning.pytorch.utilities import rank_zero_warn

from badger_graph.checkpoint import (
    check_class_paths,
    check_version,
    load_weights,
    read_checkpoint,
    safe_types,
    same_setting,
    stamp,
)
from badger_graph.errors import CheckpointError


def load_module(lightning_load, checkpoint_path, map_location=None, allow=(), **kwargs):
    """A module from a checkpoint, through Lightning's loader ``lightning_load``.

    The file is read and its class paths checked first (nothing is imported that the
    allow-list refuses); then Lightning builds the model from the saved hyperparameters.
    """
    ckpt = read_checkpoint(checkpoint_path)  # refuses unsafe files
    check_class_paths(ckpt.get("hyper_parameters") or {}, checkpoint_path, allow)
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    buffer.seek(0)
    kwargs.setdefault("weights_only", True)
    try:
        with torch.serialization.safe_globals(safe_types()):
            return lightning_load(buffer, map_location=map_location, **kwargs)
    except RuntimeError as e:  # load_state_dict: the hyperparameters were edited
        lines = [x.strip() for x in str(e).splitlines()[1:4]]
        raise CheckpointError(
            f"{str(checkpoint_path)!r}: its weights do not fit the model its saved "
            f"hyperparameters describe (were they edited?): {'; '.join(lines)}"
        ) from None
    except Exception as e:  # the saved hyperparameters do not build a model
        root = e
        while root.__cause__ is not None or root.__context__ is not None:
            root = root.__cause__ or root.__context__
        missing = _unimportable(read_checkpoint(checkpoint_path).get("hyper_parameters"))
        what = (
            f"name classes that cannot be imported: {missing}"
            if missing
            else (f"do not build a model: {str(e).strip().splitlines()[0]}")
        )
        raise CheckpointError(
            f"{str(checkpoint_path)!r}: its saved hyperparameters {what} "
            f"({type(root).__name__}: {root}); give the experiment's config with --config"
        ) from None


def batch_counters(checkpoint: dict) -> tuple[int, int]:
    """``(skipped batches, batches without an optimizer step)`` a checkpoint recorded.

    Checkpoints of earlier versions (no counters) count every batch as stepped.
    """
    step = int(checkpoint.get("global_step", 0))
    done = int(checkpoint.get("badger_graph_train_batches", step))
    skipped = int(checkpoint.get("badger_graph_skipped_batches", 0))
    return skipped, int(checkpoint.get("badger_graph_unstepped_batches", done - step))


def apply_optimizer_settings(checkpoint: dict, ours) -> list[str]:
    """Resume with the config's optimizer settings, saying each one that changed.

    Lightning restores the optimizer's state with its saved ``param_groups``, so a resumed
    run would silently keep the checkpoint's learning rate while the new checkpoints'
    hyperparameters claim the config's. Here every ``init_args`` entry that differs from
    the checkpoint's (``lr``, ``weight_decay``, ``betas``, ...) is written into the saved
    param groups before they are restored (a learning rate under a scheduler is scaled by
    the same factor, and the scheduler's base rates set), with a warning naming old and new
    values; the moments (Adam's averages) are kept. Another optimizer class is refused.
    Returns the descriptions of the changes.

    Raises:
        CheckpointError: the config names another optimizer class than the checkpoint.
    """
    theirs = (checkpoint.get("hyper_parameters") or {}).get("optimizer")
    ours = ours.as_dict() if hasattr(ours, "as_dict") else ours
    if not (isinstance(theirs, dict) and isinstance(ours, dict)):
        return []  # built in Python: the optimizer is a callable, not a saved setting
    if theirs.get("class_path") != ours.get("class_path"):
        raise CheckpointError(
            f"the checkpoint was trained with {theirs.get('class_path')}, the config names "
            f"{ours.get('class_path')}: its optimizer state cannot be resumed by another "
            f"optimizer; start a new run from its weights with --model.init_weights"
        )
    old, new = theirs.get("init_args") or {}, ours.get("init_args") or {}
    changed = {k: v for k, v in new.items() if k in old and not same_setting(v, old[k])}
    if not changed:
        return []
    said = [f"{k} {old[k]!r} -> {v!r}" for k, v in changed.items()]
    for state in checkpoint.get("optimizer_states") or []:
        for group in state.get("param_groups", []):
            for k, v in changed.items():
                if k == "lr" and old[k]:
                    group["lr"] = group["lr"] * (v / old[k])
                    if "initial_lr" in group:
                        group["initial_lr"] = v
                elif k in group:
                    group[k] = tuple(v) if isinstance(group[k], tuple) else v
    if "lr" in changed and old["lr"]:
        for sched in checkpoint.get("lr_schedulers") or []:
            if "base_lrs" in sched:
                sched["base_lrs"] = [changed["lr"] for _ in sched["base_lrs"]]
            if "_last_lr" in sched:
                sched["_last_lr"] = [x * changed["lr"] / old["lr"] for x in sched["_last_lr"]]
    rank_zero_warn(
        f"resuming with the config's optimizer settings, not the checkpoint's: {', '.join(said)}"
    )
    return said


def _unimportable(value) -> list[str]:
    """The ``class_path`` values in (nested) hyperparameters that cannot be imported."""
    import importlib

    found = []
    if isinstance(value, dict):
        path = value.get("class_path")
        if isinstance(path, str):
            module, _, name = path.rpartition(".")
            try:
                getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError, ValueError):
                found.append(path)
        for v in value.values():
            found += _unimportable(v)
    elif isinstance(value, list | tuple):
        for v in value:
            found += _unimportable(v)
    return found


def from_cli() -> bool:
    """Whether the module is being built by LightningCLI (its hyperparameters: the config)."""
    try:
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # pragma: no cover - older/newer Lightning
        return False
    return _given_hyperparameters.get() is not None


class CheckpointHooks:
    """The checkpoint side of :class:`~badger_graph.BadgerModule` (a LightningModule mixin).

    Loading checks the file before Lightning builds the model; saving stamps the library
    version and the batch counters; a resumed fit takes the config's optimizer settings;
    ``init_weights`` starts a new run from a checkpoint's weights.
    """

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, allow=(), **kwargs):
        """Lightning's loader, for checkpoints of this and of earlier formats.

        The model is built from the hyperparameters saved in the checkpoint; the classes
        they name must come from badger_graph or torch.optim, or from a module prefix (or
        exact class path) in ``allow`` (e.g. ``allow=["my_tasks."]`` for your own task):
        anything else is refused before it is imported
        (:func:`~badger_graph.checkpoint.check_class_paths`).
        """

        def lightning_load(source, **kw):
            return super(CheckpointHooks, cls).load_from_checkpoint(source, **kw)

        return load_module(lightning_load, checkpoint_path, map_location, allow, **kwargs)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Stamp the checkpoint with the library version and the batch counters."""
        stamp(checkpoint, self.train_batches, self.guard.skipped, self.unstepped_batches)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse checkpoints of an incompatible (newer major) library version."""
        check_version(checkpoint)
        self.guard.skipped, self.unstepped_batches = batch_counters(checkpoint)
        if self._trainer is not None and self.trainer.state.fn == "fit":
            apply_optimizer_settings(checkpoint, self.hparams.get("optimizer"))

    def setup(self, stage: str) -> None:
        """Load ``init_weights`` before fitting (a resumed checkpoint is restored after)."""
        if stage == "fit" and self.hparams.get("init_weights"):
            from badger_graph.pretrained import resolve_checkpoint

            load_weights(self, resolve_checkpoint(self.hparams.init_weights))
