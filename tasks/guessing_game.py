"""The guessing game of BADGER (paper Sec. 5, Fig. 6, 7 and 9)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from badger_graph.tasks.base import Episode, StepResult, Task, check_batch_size, play


def guessing_error(action: Tensor, target: Tensor) -> Tensor:
    """The paper's error: ``3 · mean((action − target)²)`` over the d dimensions, ``[B]``."""
    return 3.0 * (action - target).pow(2).mean(-1)


def _step_error(step: int):
    """Mean error of guess ``step`` (1-based; the last one for shorter lifetimes)."""

    def metric(life) -> Tensor:
        errors = life.errors
        return errors[min(step, errors.size(0)) - 1].mean()

    return metric


class GuessingEpisode(Episode):
    """B hidden targets in ``[-1, 1]^d``; each step the agents guess and see their error."""

    def __init__(self, target: Tensor, feedback: str, dims: Tensor | None = None) -> None:
        self.target = target
        self.feedback_mode = feedback
        self.num_agents, self.num_outputs = target.shape
        #: per-agent d (``None``: all agents have ``num_outputs``); entries beyond an agent's
        #: d are padding: zero targets, ignored by the error
        self.dims = dims
        self.mask = None
        if dims is not None:
            cols = torch.arange(self.num_outputs, device=target.device)
            self.mask = (cols.unsqueeze(0) < dims.unsqueeze(1)).to(target.dtype)

    def agent_range(self, start: int, stop: int) -> GuessingEpisode:
        """The episodes of agents ``start..stop-1``."""
        dims = None if self.dims is None else self.dims[start:stop]
        return GuessingEpisode(self.target[start:stop], self.feedback_mode, dims)

    def first(self) -> StepResult:
        """Before the first guess nothing is known: zero feedback."""
        zeros = self.target.new_zeros(self.num_agents)
        return StepResult(
            error=zeros,
            feedback=zeros if self.feedback_mode == "scalar" else None,
            signal=torch.zeros_like(self.target) if self.feedback_mode == "vector" else None,
        )

    def step(self, action: Tensor) -> StepResult:
        """Error of ``action`` ``[B, d]`` and the feedback that the agent will see."""
        if action.shape != self.target.shape:
            raise ValueError(
                f"action must have shape {list(self.target.shape)} (agents × d), "
                f"got {list(action.shape)}"
            )
        if self.mask is None:
            error = guessing_error(action, self.target)
            diff = self.target - action
        else:
            diff = (self.target - action) * self.mask
            error = 3.0 * diff.pow(2).sum(-1) / self.dims.to(diff.dtype)
        if self.feedback_mode == "scalar":
            return StepResult(error=error, feedback=error)
        return StepResult(error=error, feedback=error, signal=diff)


class GuessingGame(Task):
    r"""Guess a hidden vector from the error of the previous guess.

    Targets are uniform in :math:`[-1, 1]^d`; the error of a guess :math:`a` is
    :math:`3\,\overline{(a - t)^2}`, so guessing 0 scores 1.0 (chance) in expectation.
    Every step the agent sees the error of its previous guess: ``feedback="scalar"`` (the
    error alone, the paper's setup) or ``"vector"`` (plus the signed per-dimension
    difference ``t − a``, written into the node that owns each output).

    Args:
        num_outputs (int, optional): dimensions :math:`d`. (default: :obj:`3`)
        feedback (str, optional): ``"scalar"`` or ``"vector"``. (default: ``"scalar"``)
        feedback_to (list of int or "all", optional): experts that receive the scalar
            error (paper: expert 0 of 3). (default: ``[0]``)
    """

    def __init__(
        self,
        num_outputs: int = 3,
        feedback: Literal["scalar", "vector"] = "scalar",
        feedback_to: Sequence[int] | str = (0,),
    ) -> None:
        super().__init__(feedback_to)
        if not isinstance(num_outputs, int) or num_outputs < 1:
            raise ValueError(f"num_outputs (d) must be an int >= 1, got {num_outputs!r}")
        if feedback not in ("scalar", "vector"):
            raise ValueError(f"feedback must be 'scalar' or 'vector', got {feedback!r}")
        self.num_outputs = num_outputs
        self.feedback = feedback

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | Sequence[int] | None = None,
        device: torch.device | str | None = None,
    ) -> GuessingEpisode:
        """Draw ``batch_size`` targets (on the CPU generator, then moved to ``device``).

        ``num_outputs`` may be a list: one ``d`` per agent (targets padded to the largest).
        """
        d = self.num_outputs if num_outputs is None else num_outputs
        dims = None
        if not isinstance(d, int):
            dims = torch.tensor([int(x) for x in d], dtype=torch.long)
            if dims.numel() != batch_size:
                raise ValueError(f"num_outputs has {dims.numel()} entries for {batch_size} agents")
            d = int(dims.max()) if dims.numel() else 1
            if dims.numel() and int(dims.min()) < 1:
                raise ValueError(f"num_outputs (d) must be >= 1, got {dims.tolist()}")
        if d < 1:
            raise ValueError(f"num_outputs (d) must be >= 1, got {d}")
        check_batch_size(batch_size)
        target = torch.rand(batch_size, d, generator=generator) * 2 - 1
        if dims is not None:
            target = target * (torch.arange(d).unsqueeze(0) < dims.unsqueeze(1))
            dims = dims.to(device) if device is not None else dims
        target = target.to(device) if device is not None else target
        return GuessingEpisode(target, self.feedback, dims)

    def chance_level(self, num_outputs: int | None = None) -> float:
        """Expected error of guessing 0: ``3 · E[t²] = 1``."""
        return 1.0

    def mean_baseline(self, num_outputs: int | None = None) -> float:
        r"""Expected error of setting every dimension to the mean of the targets.

        :math:`3\,E[(t - \bar t)^2] = 1 - 1/d` (the "all = mean" line of Fig. 7).
        """
        d = self.num_outputs if num_outputs is None else num_outputs
        return 1.0 - 1.0 / d

    def metrics(self) -> dict:
        """Errors of the 5th and 6th guess (paper Fig. 9: how fast the target is found)."""
        return {"step5_error": _step_error(5), "step6_error": _step_error(6)}

    def baselines(self) -> dict:
        """Probe-and-solve: finds the target from the scalar error in d + 1 guesses."""
        return {"probe_and_solve": probe_and_solve}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(d={self.num_outputs}, feedback={self.feedback!r}, "
            f"feedback_to={self.feedback_to})"
        )


def _solver(d: int, tol: float = 1e-6):
    r"""Probe-and-solve from the scalar error alone, re-probing when the error reappears.

    The error of a guess :math:`a` is :math:`f(a) = \frac3d \sum_i (a_i - t_i)^2`: guess
    0, then each unit vector :math:`e_i`; :math:`t_i = (1 - \frac d3 (f(e_i) - f(0)))/2`
    gives the target exactly after :math:`d + 1` guesses. When the solved guess scores
    above ``tol`` again the target has moved, and it probes anew.
    """
    state = {"probe": 0, "f0": None, "solved": None, "target": None}

    def act(result: StepResult, t: int) -> Tensor:
        B = result.error.size(0)
        f = result.feedback
        if state["target"] is None:
            state["target"] = f.new_zeros(B, d)
            state["solved"] = torch.zeros(B, dtype=torch.bool, device=f.device)
            state["probe"] = torch.zeros(B, dtype=torch.long, device=f.device)
            state["f0"] = f.new_zeros(B)
            return f.new_zeros(B, d)
        probe, target = state["probe"], state["target"]
        # agents that were probing: record what the last probe said
        moved = state["solved"] & (f > tol)
        state["solved"] &= ~moved
        probe[moved] = 0
        rows = (~state["solved"]) & ~moved
        first = rows & (probe == 0)
        state["f0"] = torch.where(first, f, state["f0"])
        later = rows & (probe > 0)
        i = (probe - 1).clamp(min=0)
        value = (1 - (f - state["f0"]) * d / 3) / 2
        target[later, i[later]] = value[later]
        probe[rows] += 1
        done = rows & (probe > d)
        state["solved"] |= done
        action = f.new_zeros(B, d)
        probing = ~state["solved"] & ~moved & (probe >= 1) & (probe <= d)
        action[probing, probe[probing] - 1] = 1.0
        action[state["solved"]] = target[state["solved"]]
        return action

    return act


def probe_and_solve(episode: Episode, steps: int) -> Tensor:
    """Errors ``[T, B]`` of the probe-and-solve strategy on ``episode``."""
    return play(episode, steps, _solver(episode.num_outputs))
