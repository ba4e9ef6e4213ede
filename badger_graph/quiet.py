"""Quiet first runs: the third-party notices a user cannot act on, silenced narrowly."""

from __future__ import annotations

import contextlib


def _no_advertisement(record) -> bool:
    """A logging filter: drop Lightning's tip advertising its cloud logger, nothing else."""
    return "litlogger" not in str(record.msg)


@contextlib.contextmanager
def quiet_lightning():
    """Silence, while Lightning runs, the third-party notices a user cannot act on.

    Lightning 2.6 on torch >= 2.10 checks tree specs the deprecated way (a warning every
    batch), LightningCLI warns that ``args`` is passed (on purpose: the overlays are
    expanded first), Lightning advertises its cloud logger, and under manual optimization
    (ES, truncated BPTT) it warns that checkpoints hold the weights after the batch's
    optimizer step (as ours do by design: a checkpoint's batch counter counts that step),
    and evaluating a checkpoint of another run folder it notes that the folder changed;
    nothing else is filtered.
    """
    import logging
    import warnings

    lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    lightning_log.addFilter(_no_advertisement)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`")
            warnings.filterwarnings(
                "ignore", message="Using ModelCheckpoint with manual optimization"
            )
            # evaluating a checkpoint of another run folder: its callback state is not ours
            warnings.filterwarnings("ignore", message="The dirpath has changed from")
            yield
    finally:
        lightning_log.removeFilter(_no_advertisement)


@contextlib.contextmanager
def no_trainer_notices():
    """Drop Lightning's INFO notices of building a trainer (devices found, seed set).

    For building a model from its config to evaluate it (no training follows): a loop over
    many models would print them once per model. Warnings and errors still show.
    """
    import logging

    loggers = [
        logging.getLogger("lightning.pytorch.utilities.rank_zero"),
        logging.getLogger("lightning.fabric.utilities.seed"),
    ]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
