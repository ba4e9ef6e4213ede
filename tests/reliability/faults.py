"""Faults injected into a training run by ``tests/reliability/test_faults.py``."""

from __future__ import annotations

import os
import signal

import torch
from lightning.pytorch.callbacks import Callback

from badger_graph.tasks.base import StepResult

KINDS = (
    "sigkill",
    "sigterm",
    "sigint",  # a real Ctrl-C: SIGINT sent to the process
    "sigint_twice",  # Ctrl-C pressed twice in a row
    "keyboard",  # KeyboardInterrupt raised right there (what a forced stop does)
    "error",
    "nan_weights",
    "nan_feedback",
    "inf_loss",
)


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


#: moments of a training batch a signal can arrive at
MOMENTS = (
    "batch_start",
    "before_backward",
    "before_optimizer_step",
    "optimizer_step",  # half-way through the parameter updates (needs TwoPhaseAdam)
    "batch_end",
    "validation",
    "sanity",  # during the sanity-check validation before the first batch
)


class TwoPhaseAdam(torch.optim.Adam):
    """Adam that updates its parameters in two halves, with a moment in between.

    Each parameter gets exactly Adam's update (the single-tensor CPU path is per
    parameter); ``between`` (set by :class:`Fault`) runs after the first half, where a
    Ctrl-C under Python's default handler leaves a half-updated model.
    """

    def __init__(self, params, **kwargs) -> None:
        super().__init__(params, foreach=False, **kwargs)
        self.between = None

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        params = group["params"]
        half = len(params) // 2
        try:
            group["params"] = params[:half]
            super().step()
            if self.between is not None:
                between, self.between = self.between, None
                between()
                sum(range(1000))  # a few bytecodes: where Python runs a signal handler
            group["params"] = params[half:]
            super().step()
        finally:
            group["params"] = params
        return loss


class Fault(Callback):
    """Inject fault ``kind`` at training batch ``step`` (once, or ``times`` batches in a row).

    Signals and exceptions can be sent at any of :data:`MOMENTS` of the batch (``validation``:
    in the middle of the validation that follows batch ``step``), numerical faults at the
    batch start only.
    """

    def __init__(self, kind: str, step: int, times: int = 1, moment: str = "batch_start") -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if moment not in MOMENTS:
            raise ValueError(f"moment must be one of {MOMENTS}, got {moment!r}")
        self.kind, self.step, self.times, self.moment = kind, step, times, moment
        self._fired = False

    def _signal(self) -> None:
        self._fired = True
        if self.kind in ("sigint", "sigint_twice"):
            os.kill(os.getpid(), signal.SIGINT)
            if self.kind == "sigint_twice":
                sum(range(1000))  # let the first one be handled
                os.kill(os.getpid(), signal.SIGINT)
        elif self.kind == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.kind == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning stops after this batch
        elif self.kind == "keyboard":
            raise KeyboardInterrupt
        elif self.kind == "error":
            raise RuntimeError("injected fault")

    def _at(self, moment: str, pl_module) -> None:
        if self.moment == moment and not self._fired and self._active(pl_module):
            self._signal()

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self._at("before_backward", pl_module)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self._at("before_optimizer_step", pl_module)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        # the second batch of the validation after training batch `step` (counter: step + 1)
        after = pl_module.train_batches == self.step + 1
        mid = batch_idx == 1 and not trainer.sanity_checking
        if self.moment == "validation" and mid and after and not self._fired:
            self._signal()
        if self.moment == "sanity" and trainer.sanity_checking and not self._fired:
            self._signal()

    def _active(self, pl_module) -> bool:
        # the module's batch counter (skipped batches included; restored on resume)
        return self.step <= pl_module.train_batches < self.step + self.times

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        # the batch's step is done: the counter already names the next batch
        done = self.step + 1 <= pl_module.train_batches < self.step + 1 + self.times
        if self.moment == "batch_end" and done and not self._fired:
            self._signal()
        task = pl_module.task
        if getattr(task, "_faulty", False):
            del task.reset  # the wrapper poisons this training batch only
            task._faulty = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        task = pl_module.task
        if not self._active(pl_module):
            return
        if self.kind in ("sigkill", "sigterm", "sigint", "sigint_twice", "keyboard", "error"):
            if self.moment == "batch_start":
                self._signal()
            elif self.moment == "optimizer_step":
                optimizer = trainer.optimizers[0]
                if not isinstance(optimizer, TwoPhaseAdam):
                    raise TypeError("moment 'optimizer_step' needs faults.TwoPhaseAdam")
                optimizer.between = self._signal
        elif self.kind == "nan_weights":
            with torch.no_grad():
                pl_module.agent.policy.lin_send.weight.fill_(float("nan"))
        else:
            wrap = _NaNFeedback if self.kind == "nan_feedback" else _InfError
            reset = type(task).reset.__get__(task)
            task.reset = lambda *a, **k: wrap(reset(*a, **k))
            task._faulty = True
