"""Faults injected into a training run by ``tests/reliability/test_faults.py``."""

from __future__ import annotations

import os
import signal

import torch
from lightning.pytorch.callbacks import Callback

from badger_graph.tasks.base import StepResult

KINDS = ("sigkill", "sigterm", "keyboard", "error", "nan_weights", "nan_feedback", "inf_loss")


class _NaNFeedback:
    """Wraps an episode: its answers carry NaN feedback."""

    def __init__(self, episode) -> None:
        self.episode = episode

    def __getattr__(self, name):
        return getattr(self.episode, name)

    def first(self) -> StepResult:
        return self.episode.first()

    def step(self, action) -> StepResult:
        r = self.episode.step(action)
        return StepResult(r.error, torch.full_like(r.feedback, float("nan")), r.signal)


class _InfError(_NaNFeedback):
    """Wraps an episode: its errors (hence the loss) are inf."""

    def step(self, action) -> StepResult:
        r = self.episode.step(action)
        return StepResult(torch.full_like(r.error, float("inf")), r.feedback, r.signal)


class Fault(Callback):
    """Inject fault ``kind`` at training batch ``step`` (once, or ``times`` batches in a row)."""

    def __init__(self, kind: str, step: int, times: int = 1) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.step, self.times = kind, step, times

    def _active(self, pl_module) -> bool:
        # the module's batch counter (skipped batches included; restored on resume)
        return self.step <= pl_module.train_batches < self.step + self.times

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        task = pl_module.task
        if getattr(task, "_faulty", False):
            del task.reset  # the wrapper poisons this training batch only
            task._faulty = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        task = pl_module.task
        if not self._active(pl_module):
            return
        if self.kind == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.kind == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning stops after this batch
        elif self.kind == "keyboard":
            raise KeyboardInterrupt
        elif self.kind == "error":
            raise RuntimeError("injected fault")
        elif self.kind == "nan_weights":
            with torch.no_grad():
                pl_module.agent.policy.lin_send.weight.fill_(float("nan"))
        else:
            wrap = _NaNFeedback if self.kind == "nan_feedback" else _InfError
            reset = type(task).reset.__get__(task)
            task.reset = lambda *a, **k: wrap(reset(*a, **k))
            task._faulty = True
