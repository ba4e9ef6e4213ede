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
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from badger_graph.errors import NonFiniteError, TaskTooWideError
from badger_graph.execution import Execution
from badger_graph.records import Lifetime, LifetimeCall
from badger_graph.tasks.base import (
    Episode,
    StepResult,
    Task,
    check_step_result,
    first_result,
    run_steps,
)


@runtime_checkable
class LearnerState(Protocol):
    """What the runner and the outer loops use of a learner's state.

    :class:`RecurrentState`, :class:`TransformerState`, :class:`SupervisedState` and
    :class:`~badger_graph.ExpertGraph` are ones.
    """

    #: inner steps done
    step: int

    @property
    def num_agents(self) -> int:
        """B, the learners this state holds."""

    def agent_range(self, start: int, stop: int) -> LearnerState:
        """The learners ``start..stop-1`` (data-parallel training)."""

    def detach(self) -> LearnerState:
        """The same state cut from the autograd graph (between truncated-BPTT chunks)."""


@runtime_checkable
class Learner(Protocol):
    """What the runner, the outer loops and the tools call on a learned learner.

    Its state (what :meth:`begin` returns and a lifetime's ``state``) is a
    :class:`LearnerState`; one call (:class:`~badger_graph.records.LifetimeCall`) plays a
    lifetime or a chunk of one.

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

    def __call__(self, call: LifetimeCall) -> Lifetime:
        """Play ``call.steps`` steps of ``call.episode`` from ``call.state``.

        Weights never change within a lifetime. The returned lifetime's ``state`` is a
        :class:`LearnerState`.
        """


def build_learner(
    policy=None,
    topology=None,
    learner: nn.Module | None = None,
    rounds: int = 1,
    output_ports: bool = False,
    identity: str = "index",
    ports=None,
    execution: Execution | None = None,
    readout_norm: bool = False,
) -> nn.Module:
    """The learner of a training run, checked against the :class:`Learner` protocol.

    A BADGER agent from a policy and a topology, or ``learner`` itself (then give neither).
    """
    if learner is None:
        if policy is None or topology is None:
            raise ValueError(
                "give a BADGER agent's policy and topology, or another learner "
                "(e.g. learner: badger_graph.learner.RecurrentLearner)"
            )
        from badger_graph.agent import Agent

        return Agent(
            policy, topology, rounds, output_ports, identity, ports, execution, readout_norm
        )
    if readout_norm:
        raise ValueError(
            f"readout_norm=True is a BADGER agent's option; learner={type(learner).__name__} "
            f"has its own read-out"
        )
    if policy is not None or topology is not None:
        raise ValueError(
            f"learner={type(learner).__name__} replaces the BADGER agent: give no policy "
            f"or topology with it"
        )
    if not isinstance(learner, Learner):
        raise TypeError(
            f"learner must implement badger_graph.learner.Learner, got {type(learner).__name__}"
        )
    return learner


@dataclasses.dataclass(frozen=True)
class WidthMap:
    """How a width-agnostic learner sees one episode: a random input projection, output slots.

    As in general-purpose in-context learning (Kirsch et al. 2022), drawn anew for every
    episode so that no input or output column has a fixed meaning: the learner must find
    out in context which slot is which, and can then play any number of inputs and any
    number of outputs up to its slots.

    Attributes:
        projection (torch.Tensor): ``[B, m, max_inputs]`` the episode's observation columns
            to the learner's inputs (Gaussian, variance ``1/m``).
        slots (torch.Tensor): ``[B, d]`` the learner's output slot of each of the episode's
            outputs (distinct, random among ``max_outputs``).
    """

    projection: Tensor
    slots: Tensor

    def agent_range(self, start: int, stop: int) -> WidthMap:
        """The maps of agents ``start..stop-1``."""
        return WidthMap(self.projection[start:stop], self.slots[start:stop])


class MemoryState:
    """The members of a step-wise learner's state, whatever its memory is called.

    A subclass is a frozen dataclass whose first field is the memory (named by
    :attr:`MEMORY`, ``[B, ...]``), then ``step``, ``action`` and ``io``.
    """

    #: the name of the memory field
    MEMORY: ClassVar[str]
    step: int
    action: Tensor | None
    io: WidthMap | None

    @property
    def memory(self) -> Tensor:
        """The memory, ``[B, ...]``."""
        return getattr(self, self.MEMORY)

    @property
    def num_agents(self) -> int:
        """B."""
        return self.memory.size(0)

    def replace(self, **changes):
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def agent_range(self, start: int, stop: int):
        """The learners ``start..stop-1`` (data-parallel training)."""
        action = None if self.action is None else self.action[start:stop]
        io = None if self.io is None else self.io.agent_range(start, stop)
        return self.replace(**{self.MEMORY: self.memory[start:stop]}, action=action, io=io)

    def detach(self):
        """The same state cut from the autograd graph (between truncated-BPTT chunks)."""
        action = None if self.action is None else self.action.detach()
        return self.replace(**{self.MEMORY: self.memory.detach()}, action=action)


@dataclasses.dataclass(frozen=True)
class RecurrentState(MemoryState):
    """The state of B monolithic learners: one hidden vector each, and the step counter.

    Attributes:
        h (torch.Tensor): ``[B, hidden]``.
        step (int): inner steps done.
        action (torch.Tensor, optional): ``[B, max_outputs]`` the last action (the next
            step's input); ``None`` before the first step.
        io (WidthMap, optional): a width-agnostic learner's map of this episode.
    """

    MEMORY: ClassVar[str] = "h"
    h: Tensor
    step: int = 0
    action: Tensor | None = None
    io: WidthMap | None = None


def _columns(width: int, dims: Tensor | None, full: int, device) -> Tensor:
    """``[B or 1, width]`` mask of the columns an agent uses (its own ``m`` or ``d``)."""
    cols = torch.arange(width, device=device)
    if dims is None:
        return (cols < full).float().unsqueeze(0)
    return (cols < dims.to(device).unsqueeze(1)).float()


class FixedWidthLearner(nn.Module):
    """Base of learners built for at most ``max_outputs`` outputs and ``max_inputs`` inputs.

    The Learner members that do not depend on the network: width checks (a task wider
    than the learner is refused, naming both), no experts, nothing random. Subclasses set
    ``self.max_outputs``, ``self.max_inputs`` and ``self.execution`` and define ``device``,
    ``begin`` and ``forward``.
    """

    max_outputs: int
    max_inputs: int
    execution: Execution

    @staticmethod
    def _check_ints(**values: tuple[int, int]) -> None:
        """Raise ``ValueError`` naming the first value that is not an int >= its low."""
        for name, (value, low) in values.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")

    def _check_width(self, d: int, m: int) -> None:
        if d > self.max_outputs or m > self.max_inputs:
            raise TaskTooWideError(
                f"{type(self).__name__} was built for at most {self.max_outputs} outputs and "
                f"{self.max_inputs} inputs, got d={d}, m={m}: it cannot play a wider task "
                f"than it was built for",
                d, m, self.max_outputs, self.max_inputs,
            )  # fmt: skip

    def _start(self, call: LifetimeCall, device) -> tuple[Tensor, StepResult]:
        """Check a call; the ``[B, max_outputs]`` output mask and the first result."""
        if call.record or call.growth:
            raise ValueError(
                f"{type(self).__name__} has no experts: record and growth apply to BADGER "
                f"agents only"
            )
        episode, result = call.episode, call.result
        self._check_width(episode.num_outputs, episode.num_inputs)
        mask_d = _columns(self.max_outputs, episode.dims, episode.num_outputs, device)
        if result is None:
            result = check_step_result(first_result(episode, call.state.step), episode)
        return mask_d.expand(episode.num_agents, -1), result

    def check_task(self, task: Task, num_experts: int) -> None:
        """Raise if ``task`` can draw more outputs than this learner has."""
        self._check_width(task.num_outputs, 0)

    def experts_for(self, num_outputs: int, num_experts: int) -> int:
        """No experts: the argument is passed through."""
        return num_experts

    def reseed(self, seed: int) -> None:
        """Nothing random in the learner."""


class StepwiseLearner(FixedWidthLearner):
    r"""Base of the monolithic learners that read one input vector per inner step.

    Every inner step the input is
    :math:`[o_t, f_t, s_t, a_{t-1}, \text{mask}_d, \text{mask}_m, t/T]`: the observation
    (padded to ``max_inputs``), the scalar feedback, the per-output signal and the previous
    action (padded to ``max_outputs``), which columns this agent really has, and the time
    (:meth:`step_input`, ``input_size`` numbers). A subclass turns it into the action with
    its own memory: :meth:`initial_memory` and :meth:`advance` (a GRU's hidden vector, a
    Transformer's past tokens); the lifetime loop (:meth:`forward`, the ``Learner`` call)
    is written once here. Weights are frozen within a lifetime exactly as BADGER's.
    """

    #: the width of :meth:`step_input`
    input_size: int
    #: the class of the learner's state (its memory field: :attr:`MemoryState.MEMORY`)
    state_class: type[MemoryState] = RecurrentState
    #: whether every episode gets a random input projection and random output slots
    width_agnostic: bool = False

    def _set_sizes(self, max_outputs: int, max_inputs: int, width_agnostic: bool = False) -> None:
        self.max_outputs, self.max_inputs = max_outputs, max_inputs
        self.width_agnostic = bool(width_agnostic)
        self.input_size = self.sizes_in(max_outputs, max_inputs)

    def _check_width(self, d: int, m: int) -> None:
        if not self.width_agnostic:
            super()._check_width(d, m)
        elif d > self.max_outputs:
            raise ValueError(
                f"{type(self).__name__} (width-agnostic) has {self.max_outputs} output slots, "
                f"got d={d}: it cannot play more outputs than it has slots"
            )

    def draw_width_map(self, episode: Episode, generator: torch.Generator, device) -> WidthMap:
        """This episode's random input projection and output slots (:class:`WidthMap`)."""
        B, d, m, M = episode.num_agents, episode.num_outputs, episode.num_inputs, self.max_inputs
        proj = torch.randn(B, m, M, generator=generator) / math.sqrt(max(m, 1))
        slots = torch.rand(B, self.max_outputs, generator=generator).argsort(1)[:, :d]
        return WidthMap(proj.to(device), slots.to(device))

    @staticmethod
    def sizes_in(max_outputs: int, max_inputs: int = 0) -> int:
        """``input_size`` for these widths."""
        return 2 * max_inputs + 3 * max_outputs + 2

    def initial_memory(self, num_agents: int, device) -> Tensor:  # pragma: no cover - abstract
        """The memory of ``num_agents`` learners before their first step."""
        raise NotImplementedError

    def advance(self, x: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        """One step: ``[B, input_size]`` input and memory -> ``[B, max_outputs]`` action, memory."""
        raise NotImplementedError

    def make_state(self, memory: Tensor, step: int = 0, action: Tensor | None = None, io=None):
        """The learner's state holding ``memory`` (a :attr:`state_class`)."""
        return self.state_class(memory, step, action, io)

    def begin(
        self,
        episode: Episode,
        num_experts: int,
        generator: torch.Generator,
        device: torch.device | str,
        address_seed: int | None = None,
    ):
        """The initial memory per agent (and, width-agnostic, the episode's :class:`WidthMap`).

        ``num_experts`` and ``address_seed`` are unused.
        """
        self._check_width(episode.num_outputs, episode.num_inputs)
        io = self.draw_width_map(episode, generator, device) if self.width_agnostic else None
        return self.make_state(self.initial_memory(episode.num_agents, device), io=io)

    def step_input(
        self,
        result: StepResult,
        action: Tensor,
        masks: tuple[Tensor, Tensor],
        time: float,
        io: WidthMap | None = None,
    ) -> Tensor:
        """The ``[B, input_size]`` input of a step (see the class).

        With a :class:`WidthMap` the observation goes through the episode's projection and
        the signal into the episode's output slots.
        """
        mask_d, mask_m = masks
        B, dev = action.size(0), action.device
        if io is None:
            observation = _pad(result.observation, B, self.max_inputs, dev)
            signal = _pad(result.signal, B, self.max_outputs, dev)
        else:
            d = io.slots.size(1)
            obs = _pad(result.observation, B, io.projection.size(1), dev)
            observation = torch.bmm(obs.unsqueeze(1), io.projection).squeeze(1)
            signal = action.new_zeros(B, self.max_outputs).scatter(
                1, io.slots, _pad(result.signal, B, d, dev)
            )
        return torch.cat(
            [
                observation,
                _pad(result.feedback, B, 1, dev),
                signal,
                action,
                mask_d,
                mask_m,
                action.new_full((B, 1), time),
            ],
            dim=1,
        )

    def forward(self, call: LifetimeCall) -> Lifetime:
        """Play ``call`` (``record`` and ``growth`` do not apply and are refused)."""
        state, episode, steps = call.state, call.episode, call.steps
        memory = state.memory
        dev = memory.device
        mask_d, result = self._start(call, dev)
        d, m, B = episode.num_outputs, episode.num_inputs, episode.num_agents
        io = getattr(state, "io", None)
        if self.width_agnostic and io is None:
            raise ValueError(f"{type(self).__name__} is width-agnostic: start with begin()")
        if io is None:
            mask_m = _columns(self.max_inputs, episode.input_dims, m, dev).expand(B, -1)
        else:  # the projection fills every input; an agent's own d picks its slots
            mask_m = memory.new_ones(B, self.max_inputs)
            used = _columns(d, episode.dims, d, dev).expand(B, -1)
            mask_d = memory.new_zeros(B, self.max_outputs).scatter(1, io.slots, used)
        total = call.total
        action = state.action if state.action is not None else memory.new_zeros(B, self.max_outputs)

        def act(result: StepResult, t: int) -> Tensor:
            nonlocal memory, action
            if call.detach_feedback:
                result = result.detach()
            x = self.step_input(result, action, (mask_d, mask_m), t / total, io)
            out, memory = self.advance(x, memory)
            action = out * mask_d
            if self.execution.check_finite and not bool(action.isfinite().all()):
                raise NonFiniteError("actions", action, step=t, where="inner step")
            return action[:, :d] if io is None else action.gather(1, io.slots)

        actions, errors, result = run_steps(
            episode, result, steps, act, state.step, lambda r: check_step_result(r, episode)
        )
        end = self.make_state(memory, state.step + steps, action, io)
        return Lifetime(torch.stack(actions), torch.stack(errors), end, [], episode, result)


class RecurrentLearner(StepwiseLearner):
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
        width_agnostic (bool, optional): every episode's observation goes through a fresh
            random projection to ``max_inputs`` and its outputs sit in random slots of
            ``max_outputs`` (:class:`WidthMap`, as in GPICL): it then plays any number of
            inputs and up to ``max_outputs`` outputs. (default: ``False``)
        parameters (int, optional): a weight budget: the GRU width is chosen to match it
            (within 1 %; ``hidden_channels`` is then ignored), e.g. another model's count,
            so a tuning space can vary everything else at equal weights.
    """

    def __init__(
        self,
        max_outputs: int,
        max_inputs: int = 0,
        hidden_channels: int = 64,
        execution: Execution | None = None,
        width_agnostic: bool = False,
        parameters: int | None = None,
    ) -> None:
        super().__init__()
        if parameters is not None:
            self._check_ints(parameters=(parameters, 1), max_outputs=(max_outputs, 1))
            hidden_channels = self.width_for(parameters, max_outputs, max_inputs)
        self._check_ints(
            max_outputs=(max_outputs, 1),
            max_inputs=(max_inputs, 0),
            hidden_channels=(hidden_channels, 1),
        )
        self._set_sizes(max_outputs, max_inputs, width_agnostic)
        self.hidden_channels = hidden_channels
        self.execution = execution if execution is not None else Execution()
        self.cell = nn.GRUCell(self.input_size, hidden_channels)
        self.head = nn.Linear(hidden_channels, max_outputs)

    @staticmethod
    def parameters_for(hidden: int, max_outputs: int, max_inputs: int = 0) -> int:
        """Parameter count of a learner of these sizes (to match another model's)."""
        n_in = 2 * max_inputs + 3 * max_outputs + 2
        return 3 * hidden * (n_in + hidden) + 6 * hidden + hidden * max_outputs + max_outputs

    @classmethod
    def width_for(cls, parameters: int, max_outputs: int, max_inputs: int = 0) -> int:
        """The GRU width whose parameter count is closest to ``parameters``."""
        n_in = 2 * max_inputs + 3 * max_outputs + 2
        b = 3 * n_in + 6 + max_outputs  # 3 H^2 + b H + D = parameters
        h = (-b + math.sqrt(max(b * b + 12 * (parameters - max_outputs), 0))) / 6
        return min(
            (max(1, math.floor(h)), max(1, math.ceil(h))),
            key=lambda x: abs(cls.parameters_for(x, max_outputs, max_inputs) - parameters),
        )

    @classmethod
    def matched(
        cls, parameters: int, max_outputs: int, max_inputs: int = 0, **kwargs
    ) -> RecurrentLearner:
        """The learner whose parameter count is closest to ``parameters``."""
        width = cls.width_for(parameters, max_outputs, max_inputs)
        return cls(max_outputs, max_inputs, width, **kwargs)

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.head.weight.device

    def initial_memory(self, num_agents: int, device) -> Tensor:
        """A zero hidden vector per agent."""
        return torch.zeros(num_agents, self.hidden_channels, device=device)

    def advance(self, x: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """The GRU cell's update, then the linear head."""
        h = self.cell(x, memory)
        return self.head(h), h

    def extra_repr(self) -> str:
        """Sizes shown in ``repr``."""
        return (
            f"max_outputs={self.max_outputs}, max_inputs={self.max_inputs}, "
            f"hidden_channels={self.hidden_channels}"
        )


@dataclasses.dataclass(frozen=True)
class TransformerState(MemoryState):
    """The state of B Transformer learners: the tokens of the steps so far.

    Attributes:
        tokens (torch.Tensor): ``[B, t, width]`` one embedded input per step played.
        step (int): inner steps done.
        action (torch.Tensor, optional): ``[B, max_outputs]`` the last action.
        io (WidthMap, optional): a width-agnostic learner's map of this episode.
    """

    MEMORY: ClassVar[str] = "tokens"
    tokens: Tensor
    step: int = 0
    action: Tensor | None = None
    io: WidthMap | None = None


class TransformerLearner(StepwiseLearner):
    r"""A causal Transformer over the lifetime: one token per inner step (in-context learning).

    The strongest modern monolithic in-context learner (Kirsch et al. 2022, "General-purpose
    in-context learning by meta-learning Transformers"; Chen et al. 2021). Every step's input
    is the same vector :class:`RecurrentLearner` reads (observation, feedback, signal,
    previous action, masks, time), embedded into a token of ``width``; the tokens of all
    steps so far go through ``layers`` pre-norm Transformer encoder layers with a causal
    mask, and the last position's output gives the action. The learner's state is its past
    tokens (its context grows by one token a step); weights never change within a lifetime.
    Attention over the whole context is recomputed each step (``O(T^2)`` per lifetime, cheap
    for the lifetimes here), and is exactly causal: a step never sees a later one.

    Args:
        max_outputs (int): the largest ``d`` it can play.
        max_inputs (int, optional): the largest ``m``. (default: :obj:`0`)
        width (int, optional): token width (a multiple of ``heads``). (default: :obj:`32`)
        layers (int, optional): encoder layers. (default: :obj:`2`)
        heads (int, optional): attention heads. (default: :obj:`4`)
        ff_width (int, optional): feed-forward width. (default: ``2 * width``)
        execution (Execution, optional): only ``check_finite`` applies.
        width_agnostic (bool, optional): random input projection and output slots per
            episode, as :class:`RecurrentLearner`'s. (default: ``False``)
        parameters (int, optional): a weight budget: ``width`` and ``ff_width`` are chosen
            to match it for these ``layers`` and ``heads`` (within 1 %; see :meth:`sizes_for`).
    """

    state_class = TransformerState

    def __init__(
        self,
        max_outputs: int,
        max_inputs: int = 0,
        width: int = 32,
        layers: int = 2,
        heads: int = 4,
        ff_width: int | None = None,
        execution: Execution | None = None,
        width_agnostic: bool = False,
        parameters: int | None = None,
    ) -> None:
        super().__init__()
        if parameters is not None:
            self._check_ints(parameters=(parameters, 1), layers=(layers, 1), heads=(heads, 1))
            width, ff_width = self.sizes_for(parameters, max_outputs, max_inputs, layers, heads)
        ff_width = 2 * width if ff_width is None else ff_width
        self._check_ints(
            max_outputs=(max_outputs, 1),
            max_inputs=(max_inputs, 0),
            width=(width, 1),
            layers=(layers, 1),
            heads=(heads, 1),
            ff_width=(ff_width, 1),
        )
        if width % heads:
            raise ValueError(f"width must be a multiple of heads, got width={width}, heads={heads}")
        self._set_sizes(max_outputs, max_inputs, width_agnostic)
        self.width, self.layers, self.heads, self.ff_width = width, layers, heads, ff_width
        self.execution = execution if execution is not None else Execution()
        self.embed = nn.Linear(self.input_size, width)
        layer = nn.TransformerEncoderLayer(
            width, heads, ff_width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, max_outputs)

    @staticmethod
    def parameters_for(
        width: int,
        max_outputs: int,
        max_inputs: int = 0,
        layers: int = 2,
        ff_width: int | None = None,
    ) -> int:
        """Parameter count of a learner of these sizes (to match another model's)."""
        n_in = StepwiseLearner.sizes_in(max_outputs, max_inputs)
        W = width
        F = 2 * W if ff_width is None else ff_width
        per_layer = (3 * W * W + 3 * W) + (W * W + W) + (W * F + F) + (F * W + W) + 4 * W
        return (n_in * W + W) + layers * per_layer + 2 * W + (W * max_outputs + max_outputs)

    @classmethod
    def sizes_for(
        cls, parameters: int, max_outputs: int, max_inputs: int = 0, layers: int = 2, heads: int = 4
    ) -> tuple[int, int]:
        """``(width, ff_width)`` with about ``parameters`` weights (within a fraction of a %).

        The width is a multiple of ``heads``; the feed-forward width is solved for the rest
        of the weights, kept near ``2 * width``.

        Raises:
            ValueError: no such sizes (a budget too small for these layers and heads).
        """
        best = None
        for W in range(heads, 256 * heads + 1, heads):
            base = cls.parameters_for(W, max_outputs, max_inputs, layers, ff_width=0)
            F = round((parameters - base) / (layers * (2 * W + 1)))
            if not W <= F <= 4 * W:
                continue
            key = (abs(F - 2 * W), W)
            if best is None or key < best[0]:
                best = (key, W, F)
        if best is None:
            raise ValueError(
                f"no Transformer of {layers} layers and {heads} heads has about {parameters} "
                f"weights for max_outputs={max_outputs}, max_inputs={max_inputs}"
            )
        return best[1], best[2]

    @classmethod
    def matched(
        cls,
        parameters: int,
        max_outputs: int,
        max_inputs: int = 0,
        layers: int = 2,
        heads: int = 4,
        **kwargs,
    ) -> TransformerLearner:
        """The learner with about ``parameters`` weights (see :meth:`sizes_for`)."""
        W, F = cls.sizes_for(parameters, max_outputs, max_inputs, layers, heads)
        return cls(max_outputs, max_inputs, W, layers, heads, F, **kwargs)

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.head.weight.device

    def initial_memory(self, num_agents: int, device) -> Tensor:
        """No tokens yet: ``[B, 0, width]``."""
        return torch.zeros(num_agents, 0, self.width, device=device)

    def advance(self, x: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Append this step's token; the last position's output, through the head."""
        tokens = torch.cat([memory, self.embed(x).unsqueeze(1)], dim=1)
        n = tokens.size(1)
        mask = nn.Transformer.generate_square_subsequent_mask(n, device=tokens.device)
        out = self.encoder(tokens, mask=mask, is_causal=True)
        return self.head(self.norm(out[:, -1])), tokens

    def extra_repr(self) -> str:
        """Sizes shown in ``repr``."""
        return (
            f"max_outputs={self.max_outputs}, max_inputs={self.max_inputs}, width={self.width}, "
            f"layers={self.layers}, heads={self.heads}, ff_width={self.ff_width}"
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


@dataclasses.dataclass(frozen=True)
class SupervisedState:
    """What a gradient-adapted learner keeps: the labelled points seen so far, per agent.

    Attributes:
        x (torch.Tensor): ``[B, n, max_inputs]`` inputs seen (n grows by one per step).
        y (torch.Tensor): ``[B, n, max_outputs]`` their targets (regression) or one-hot
            labels (classification).
        step (int): inner steps done.
    """

    x: Tensor
    y: Tensor
    step: int = 0

    @property
    def num_agents(self) -> int:
        """B."""
        return self.x.size(0)

    def agent_range(self, start: int, stop: int) -> SupervisedState:
        """The learners ``start..stop-1``."""
        return dataclasses.replace(self, x=self.x[start:stop], y=self.y[start:stop])

    def detach(self) -> SupervisedState:
        """The same points cut from the autograd graph (between truncated-BPTT chunks)."""
        return dataclasses.replace(self, x=self.x.detach(), y=self.y.detach())


class MAMLLearner(FixedWidthLearner):
    r"""MAML (Finn et al., 2017) as a learner of the same lifetimes: a network adapted by SGD.

    A small MLP (``max_inputs`` → ``hidden`` → ``hidden`` → ``max_outputs``, ReLU) with
    meta-learned initial weights :math:`\theta`. Every inner step it takes ``inner_steps``
    gradient steps of size ``inner_lr`` from :math:`\theta` on the labelled points seen so
    far in the lifetime (K of them after K steps: K-shot adaptation), predicts the shown
    input with the adapted weights, and is scored by the task. The outer loop
    (:class:`~badger_graph.outer.Backprop`) differentiates through the adaptation
    (second order). Only supervised families apply, where the task reveals the target:

    - ``target="miss"``: the signal is the signed miss :math:`y - \hat y` (regression,
      sinusoid): target :math:`y = \hat y + s`, squared-error inner loss;
    - ``target="label"``: the signal's largest entry marks the true class
      (classification): cross-entropy inner loss.

    Args:
        max_outputs (int): outputs (1 for regression, ``c`` for classification).
        max_inputs (int): input width ``m`` (narrower episodes are zero-padded).
        target (str): ``"miss"`` or ``"label"`` (above).
        hidden_channels (int, optional): MLP width. (default: :obj:`40`, MAML's)
        inner_steps (int, optional): gradient steps per inner step. (default: :obj:`1`)
        inner_lr (float, optional): their step size. (default: :obj:`0.01`, MAML's)
        execution (Execution, optional): only ``check_finite`` applies.
    """

    def __init__(
        self,
        max_outputs: int,
        max_inputs: int,
        target: str = "miss",
        hidden_channels: int = 40,
        inner_steps: int = 1,
        inner_lr: float = 0.01,
        execution: Execution | None = None,
    ) -> None:
        super().__init__()
        self._check_ints(
            max_outputs=(max_outputs, 1),
            max_inputs=(max_inputs, 1),
            hidden_channels=(hidden_channels, 1),
            inner_steps=(inner_steps, 0),
        )
        if target not in ("miss", "label"):
            raise ValueError(f"target must be 'miss' or 'label', got {target!r}")
        if not inner_lr > 0:
            raise ValueError(f"inner_lr must be > 0, got {inner_lr!r}")
        self.max_outputs, self.max_inputs, self.target = max_outputs, max_inputs, target
        self.hidden_channels, self.inner_steps, self.inner_lr = (
            hidden_channels,
            inner_steps,
            float(inner_lr),
        )
        self.execution = execution if execution is not None else Execution()
        self.layers = nn.ModuleList(
            [
                nn.Linear(max_inputs, hidden_channels),
                nn.Linear(hidden_channels, hidden_channels),
                nn.Linear(hidden_channels, max_outputs),
            ]
        )

    # -- the Learner interface -----------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.layers[0].weight.device

    def begin(
        self,
        episode: Episode,
        num_experts: int,
        generator: torch.Generator,
        device: torch.device | str,
        address_seed: int | None = None,
    ) -> SupervisedState:
        """No point seen yet."""
        self._check_width(episode.num_outputs, episode.num_inputs)
        B = episode.num_agents
        return SupervisedState(
            torch.zeros(B, 0, self.max_inputs, device=device),
            torch.zeros(B, 0, self.max_outputs, device=device),
        )

    # -- the batched network with per-agent weights ----------------------------------------
    def _net(self, weights: list[Tensor], x: Tensor) -> Tensor:
        """``x`` ``[B, n, in]`` through per-agent weights (``[B, ...]`` each)."""
        h = x
        for i in range(0, len(weights), 2):
            h = torch.baddbmm(weights[i + 1].unsqueeze(1), h, weights[i])
            if i + 2 < len(weights):
                h = torch.relu(h)
        return h

    def _loss(self, weights: list[Tensor], x: Tensor, y: Tensor, mask_d: Tensor) -> Tensor:
        out = self._net(weights, x)  # [B, n, D]
        if self.target == "miss":
            return ((out - y).pow(2) * mask_d.unsqueeze(1)).sum(2).mean(1).sum()
        logits = out.masked_fill(mask_d.unsqueeze(1) == 0, float("-inf"))
        logp = torch.log_softmax(logits, dim=2)
        return -(logp * y).sum(2).mean(1).sum()

    def adapt(self, x: Tensor, y: Tensor, mask_d: Tensor) -> list[Tensor]:
        """Per-agent weights after ``inner_steps`` SGD steps from the meta-weights on (x, y)."""
        B = x.size(0)
        weights = []
        for layer in self.layers:
            weights += [layer.weight.t().expand(B, -1, -1), layer.bias.expand(B, -1)]
        if x.size(1) == 0:
            return weights
        create = torch.is_grad_enabled()
        for _ in range(self.inner_steps):
            with torch.enable_grad():
                if not create:
                    weights = [w.detach().requires_grad_() for w in weights]
                grads = torch.autograd.grad(
                    self._loss(weights, x, y, mask_d), weights, create_graph=create
                )
            weights = [w - self.inner_lr * g for w, g in zip(weights, grads, strict=True)]
        return weights

    def forward(self, call: LifetimeCall) -> Lifetime:
        """Play ``call``, adapting from the meta-weights on the points seen so far."""
        state, episode, steps = call.state, call.episode, call.steps
        dev = state.x.device
        mask_d, result = self._start(call, dev)
        d = episode.num_outputs
        D, M, B = self.max_outputs, self.max_inputs, episode.num_agents
        xs, ys = state.x, state.y
        shown = None  # the input and the action that the next result answers

        def absorb(result: StepResult) -> None:
            """Add the labelled point that ``result`` reveals for the shown input."""
            nonlocal xs, ys
            x, action = shown
            signal = _pad(result.signal, B, D, dev).detach()
            if self.target == "miss":
                y = action.detach() + signal
            else:
                y = torch.nn.functional.one_hot(
                    signal.masked_fill(mask_d == 0, float("-inf")).argmax(1), D
                ).float()
            xs = torch.cat([xs, x], 1)
            ys = torch.cat([ys, y.unsqueeze(1)], 1)

        def act(result: StepResult, t: int) -> Tensor:
            nonlocal shown
            if shown is not None:
                absorb(result)
            x = _pad(result.observation, B, M, dev).unsqueeze(1)  # [B, 1, M]
            action = self._net(self.adapt(xs, ys, mask_d), x)[:, 0] * mask_d
            if self.execution.check_finite and not bool(action.isfinite().all()):
                raise NonFiniteError("actions", action, step=t, where="inner step")
            shown = (x, action)
            return action[:, :d]

        actions, errors, result = run_steps(
            episode, result, steps, act, state.step, lambda r: check_step_result(r, episode)
        )
        absorb(result)
        end = SupervisedState(xs, ys, state.step + steps)
        return Lifetime(torch.stack(actions), torch.stack(errors), end, [], episode, result)

    def extra_repr(self) -> str:
        """Sizes shown in ``repr``."""
        return (
            f"max_outputs={self.max_outputs}, max_inputs={self.max_inputs}, "
            f"target={self.target!r}, inner_steps={self.inner_steps}, inner_lr={self.inner_lr}"
        )
