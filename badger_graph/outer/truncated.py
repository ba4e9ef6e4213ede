"""Truncated backprop through time: memory independent of the lifetime length."""

from __future__ import annotations

import torch
from torch import Tensor

from badger_graph.outer.base import (
    OuterLoop,
    TrainingContext,
    check_differentiable,
    objective_loss,
    objective_weights,
)
from badger_graph.records import LifetimeCall


class TruncatedBPTT(OuterLoop):
    """Backprop through chunks of ``steps`` inner steps, the state detached in between.

    Each chunk's share of the objective is backpropagated before the next chunk starts,
    so memory holds one chunk's graph whatever the lifetime length (with
    ``Execution(checkpoint=True)``: one chunk of states plus one step's activations).
    Chunks with no share of the objective (all but the last for ``objective="last"``) run
    without a graph. Gradients then do not flow across chunk borders.

    Args:
        steps (int): inner steps per chunk ``K``.
        gradient_clip_val (float, optional): gradient-norm clip. (default: :obj:`1.0`)
    """

    automatic_optimization = False

    def __init__(self, steps: int, gradient_clip_val: float | None = 1.0) -> None:
        super().__init__(gradient_clip_val)
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps (K) must be an int >= 1, got {steps!r}")
        self.steps = steps

    def check(self, module: TrainingContext) -> None:
        """Refuse a growth curriculum (chunks of a growing lifetime are not supported yet)."""
        from badger_graph.curriculum import GrowthCurriculum

        if any(isinstance(c, GrowthCurriculum) for c in module.curriculum):
            raise ValueError("GrowthCurriculum does not support TruncatedBPTT yet")

    def training_step(self, module: TrainingContext, seed: int, batch_size: int) -> None:
        """One optimizer step from the chunked lifetimes of one batch."""
        module.optimizers().zero_grad()
        errors = self.backward_lifetime(module, seed, batch_size, module.manual_backward)
        self.apply_gradients(module)
        loss = objective_loss(errors, module.current_objective())
        module.log_errors(errors, loss, "train", batch_size)

    def backward_lifetime(
        self, module: TrainingContext, seed: int, batch_size: int, backward=None
    ) -> Tensor:
        """Run one batch in chunks, backpropagating each; returns the ``[T, B]`` errors."""
        backward = backward or Tensor.backward
        runner = module.runner
        T, K = runner.inner_steps, self.steps
        weights = objective_weights(module.current_objective())
        episode, state = runner.begin(seed, batch_size, spec=module.spec, device=module.device)
        share = self.batch_share(module, batch_size)
        if share is not None:  # data parallel: this process' agents of the global batch
            episode, state = episode.agent_range(*share), state.agent_range(*share)
        if runner.growth_events(seed, state, module.spec):
            raise ValueError("GrowthCurriculum does not support TruncatedBPTT yet")
        call = LifetimeCall(
            runner.task, episode, state, min(K, T),
            detach_feedback=runner.detach_feedback, total_steps=T,
        )  # fmt: skip
        learner = runner.learner_for(seed, module.spec)
        errors = []
        for start in range(0, T, K):
            n = min(K, T - start)
            needs_grad = weights["mean"] > 0 or start + n == T
            with torch.set_grad_enabled(needs_grad and torch.is_grad_enabled()):
                life = learner(call)
            if needs_grad:
                terms = []
                if weights["mean"]:
                    terms.append(weights["mean"] * life.errors.sum(0).mean() / T)
                if start + n == T and weights["last"]:  # the lifetime's last step
                    terms.append(weights["last"] * life.errors[-1].mean())
                chunk = sum(terms)
                check_differentiable(chunk, module)
                backward(chunk)
            errors.append(life.errors.detach())
            if start + n < T:  # the next chunk starts from this one's end, cut from its graph
                call = call.next(life, min(K, T - start - n))
                call = call.replace(state=call.state.detach(), result=call.result.detach())
        return torch.cat(errors)
