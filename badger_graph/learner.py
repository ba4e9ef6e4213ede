r"""Learned learners the runner can drive: the seam between BADGER and its alternatives.

:class:`Learner` is what :class:`~badger_graph.runner.EpisodeRunner`, the outer loops,
``badger test`` and ``badger matrix`` call. A BADGER :class:`~badger_graph.Agent` is one;
:class:`RecurrentLearner` is the monolithic alternative of RL² (Duan et al., 2016;
Wang et al., 2016; Hochreiter et al., 2001): ONE recurrent network that sees the whole
observation, the feedback, the per-output signal and its previous action, and outputs the
whole action. Both play the same :class:`~badger_graph.tasks.Task` protocol on the same
episodes, so every comparison between them is on equal terms.

Writing another learner: implement the members of :class:`Learner` on an ``nn.Module``
and pass it as ``learner`` to :class:`~badger_graph.BadgerModule` (``--model.learner``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from badger_graph.execution import Execution
from badger_graph.growth import GrowthEvent
from badger_graph.records import Lifetime
from badger_graph.tasks.base import Episode, StepResult, Task, check_step_result


@runtime_checkable
class Learner(Protocol):
    """What the runner, the outer loops and the tools call on a learned learner.

    Attributes:
        execution (Execution): finite checks and execution settings (the ES outer loop turns
            the checks off while it evaluates a population).
    """

    execution: Execution

    @property
    def device(self) -> torch.device:
        """Where the weights live."""

    def check_task(self, task: Task, num_experts: int) -> None:
        """Raise if this learner cannot play ``task`` (``num_experts``: BADGER's size)."""

    def experts_for(self, num_outputs: int, num_experts: int) -> int:
        """The ``num_experts`` to ask for when playing ``num_outputs`` outputs."""

    def reseed(self, seed: int) -> None:
        """Re-seed random parts (a function of the batch's seed)."""

    def begin(
        self,
        episode: Episode,
        num_experts: int,
        generator: torch.Generator,
        device: torch.device | str,
        address_seed: int | None = None,
    ) -> Any:
        """The initial state for ``episode``'s agents (random draws from ``generator``)."""

    def __call__(
        self,
        task: Task,
        episode: Episode,
        state: Any,
        steps: int,
        record: bool = False,
        detach_feedback: bool = False,
        total_steps: int | None = None,
        result: StepResult | None = None,
        growth: Sequence[GrowthEvent] = (),
        generator: torch.Generator | None = None,
    ) -> Lifetime:
        """Play ``steps`` steps of ``episode`` from ``state``; weights never change."""


@dataclasses.dataclass(frozen=True)
class RecurrentState:
    """The state of B monolithic learners: one hidden vector each, and the step counter.

    Attributes:
        h (torch.Tensor): ``[B, hidden]``.
        step (int): inner steps done.
    """

    h: Tensor
    step: int = 0

    @property
    def num_agents(self) -> int:
        """B."""
        return self.h.size(0)

    def agent_range(self, start: int, stop: int) -> RecurrentState:
        """The learners ``start..stop-1`` (data-parallel training)."""
        return dataclasses.replace(self, h=self.h[start:stop])

    def replace(self, **changes) -> RecurrentState:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def _columns(width: int, dims: Tensor | None, full: int, device) -> Tensor:
    """``[B or 1, width]`` mask of the columns an agent uses (its own ``m`` or ``d``)."""
    cols = torch.arange(width, device=device)
    if dims is None:
        return (cols < full).float().unsqueeze(0)
    return (cols < dims.to(device).unsqueeze(1)).float()


class RecurrentLearner(nn.Module):
    r"""The monolithic meta-learner (RL²): one GRU over the whole observation and feedback.

    Every inner step its input is
    :math:`[o_t, f_t, s_t, a_{t-1}, \text{mask}_d, \text{mask}_m, t/T]`: the observation
    (padded to ``max_inputs``), the scalar feedback, the per-output signal and the previous
    action (padded to ``max_outputs``), which columns this agent really has, and the time.
    A GRU cell updates one hidden vector per agent and a linear head gives the action
    (``max_outputs`` numbers, of which an agent with ``d`` outputs uses the first ``d``).
    Weights are frozen within a lifetime exactly as BADGER's: it adapts only through its
    hidden state. It cannot play a task wider than it was built for (``d >
    max_outputs`` or ``m > max_inputs``): :meth:`check_task` and every lifetime say so.

    Args:
        max_outputs (int): the largest ``d`` (outputs, arms, classes) it can play.
        max_inputs (int, optional): the largest ``m`` (observation width). (default: :obj:`0`)
        hidden_channels (int, optional): GRU width. (default: :obj:`64`)
        execution (Execution, optional): only ``check_finite`` applies. (default:
            ``Execution()``)
    """

    def __init__(
        self,
        max_outputs: int,
        max_inputs: int = 0,
        hidden_channels: int = 64,
        execution: Execution | None = None,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("max_outputs", max_outputs, 1),
            ("max_inputs", max_inputs, 0),
            ("hidden_channels", hidden_channels, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self.max_outputs, self.max_inputs = max_outputs, max_inputs
        self.hidden_channels = hidden_channels
        self.execution = execution if execution is not None else Execution()
        D, M = max_outputs, max_inputs
        self.input_size = M + 1 + D + D + D + M + 1
        self.cell = nn.GRUCell(self.input_size, hidden_channels)
        self.head = nn.Linear(hidden_channels, D)

    @staticmethod
    def parameters_for(hidden: int, max_outputs: int, max_inputs: int = 0) -> int:
        """Parameter count of a learner of these sizes (to match another model's)."""
        n_in = 2 * max_inputs + 3 * max_outputs + 2
        return 3 * hidden * (n_in + hidden) + 6 * hidden + hidden * max_outputs + max_outputs

    @classmethod
    def matched(
        cls, parameters: int, max_outputs: int, max_inputs: int = 0, **kwargs
    ) -> RecurrentLearner:
        """The learner whose parameter count is closest to ``parameters``."""
        n_in = 2 * max_inputs + 3 * max_outputs + 2
        b = 3 * n_in + 6 + max_outputs  # 3 H^2 + b H + D = parameters
        h = (-b + math.sqrt(b * b + 12 * (parameters - max_outputs))) / 6
        best = min(
            (max(1, math.floor(h)), math.ceil(h)),
            key=lambda x: abs(cls.parameters_for(x, max_outputs, max_inputs) - parameters),
        )
        return cls(max_outputs, max_inputs, best, **kwargs)

    # -- the Learner interface -----------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.head.weight.device

    def _check_width(self, d: int, m: int) -> None:
        if d > self.max_outputs or m > self.max_inputs:
            raise ValueError(
                f"{type(self).__name__} was built for at most {self.max_outputs} outputs and "
                f"{self.max_inputs} inputs, got d={d}, m={m}: a monolithic learner cannot "
                f"play a wider task than it was built for"
            )

    def check_task(self, task: Task, num_experts: int) -> None:
        """Raise if ``task`` can draw more outputs than this learner has."""
        self._check_width(task.num_outputs, 0)

    def experts_for(self, num_outputs: int, num_experts: int) -> int:
        """No experts: the argument is passed through."""
        return num_experts

    def reseed(self, seed: int) -> None:
        """Nothing random in the learner."""

    def begin(
        self,
        episode: Episode,
        num_experts: int,
        generator: torch.Generator,
        device: torch.device | str,
        address_seed: int | None = None,
    ) -> RecurrentState:
        """A zero hidden state per agent (``num_experts`` and ``address_seed`` unused)."""
        self._check_width(episode.num_outputs, episode.num_inputs)
        return RecurrentState(torch.zeros(episode.num_agents, self.hidden_channels, device=device))

    def forward(
        self,
        task: Task,
        episode: Episode,
        state: RecurrentState,
        steps: int,
        record: bool = False,
        detach_feedback: bool = False,
        total_steps: int | None = None,
        result: StepResult | None = None,
        growth: Sequence[GrowthEvent] = (),
        generator: torch.Generator | None = None,
    ) -> Lifetime:
        """Play ``steps`` steps (``record`` and ``growth`` do not apply and are refused)."""
        if record or growth:
            raise ValueError(
                f"{type(self).__name__} has no experts: record and growth apply to BADGER "
                f"agents only"
            )
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps (T) must be an int >= 1, got {steps!r}")
        d, m = episode.num_outputs, episode.num_inputs
        self._check_width(d, m)
        D, M, B = self.max_outputs, self.max_inputs, episode.num_agents
        dev = state.h.device
        mask_d = _columns(D, episode.dims, d, dev).expand(B, -1)
        mask_m = _columns(M, episode.input_dims, m, dev).expand(B, -1)
        total = steps if total_steps is None else total_steps
        if result is None:
            episode.step_index = state.step
            result = check_step_result(episode.first(), episode)
        h, step = state.h, state.step
        action = h.new_zeros(B, D)
        actions, errors = [], []
        for _ in range(steps):
            if detach_feedback:
                result = result.detach()
            x = torch.cat(
                [
                    _pad(result.observation, B, M, dev),
                    _pad(result.feedback, B, 1, dev),
                    _pad(result.signal, B, D, dev),
                    action,
                    mask_d,
                    mask_m,
                    h.new_full((B, 1), step / total),
                ],
                dim=1,
            )
            h = self.cell(x, h)
            action = self.head(h) * mask_d
            if self.execution.check_finite and not bool(action.isfinite().all()):
                from badger_graph.errors import NonFiniteError

                raise NonFiniteError("actions", action, step=step, where="inner step")
            episode.step_index = step
            result = check_step_result(episode.step(action[:, :d]), episode)
            actions.append(action[:, :d])
            errors.append(result.error)
            step += 1
        return Lifetime(
            torch.stack(actions), torch.stack(errors), RecurrentState(h, step), [], episode, result
        )

    def extra_repr(self) -> str:
        """Sizes shown in ``repr``."""
        return (
            f"max_outputs={self.max_outputs}, max_inputs={self.max_inputs}, "
            f"hidden_channels={self.hidden_channels}"
        )


def _pad(value: Tensor | None, B: int, width: int, device) -> Tensor:
    """``value`` (``[B]`` or ``[B, w]``, or ``None``) as ``[B, width]`` zero-padded floats."""
    if value is None:
        return torch.zeros(B, width, device=device)
    value = value.to(device=device, dtype=torch.float32)
    if value.dim() == 1:
        value = value.unsqueeze(1)
    if value.size(1) < width:
        value = torch.nn.functional.pad(value, (0, width - value.size(1)))
    return value[:, :width]
