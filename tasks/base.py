"""The task protocol: what an agent's lifetime runs against."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from badger_graph.records import Lifetime


@dataclasses.dataclass(frozen=True)
class StepResult:
    """What the environment answers to one action of a batch of agents.

    Attributes:
        error (torch.Tensor): per-agent error of the action, ``[B]`` (differentiable).
        feedback (torch.Tensor, optional): scalar feedback per agent, ``[B]``, written into
            the nodes the task names in ``feedback_to``.
        signal (torch.Tensor, optional): per-output-dimension feedback, ``[B, d]``, written
            into the node that owns each output.
        observation (torch.Tensor, optional): what the agents observe before their next
            action, ``[B, m]``, one column per input port node (``m`` is the episode's
            ``num_inputs``; columns beyond an agent's own ``m`` are padding and ignored).
    """

    error: Tensor
    feedback: Tensor | None = None
    signal: Tensor | None = None
    observation: Tensor | None = None

    def detach(self) -> StepResult:
        """The same result with every tensor cut from the autograd graph."""
        return StepResult(
            *(
                None if v is None else v.detach()
                for v in (self.error, self.feedback, self.signal, self.observation)
            )
        )


class Episode(ABC):
    """A batch of B task instances with hidden parameters (e.g. the targets).

    Attributes:
        num_agents (int): B.
        num_outputs (int): d, the width of an action (the largest d when it varies).
        dims (torch.Tensor, optional): ``[B]`` d of each agent when agents of one batch
            have different numbers of outputs (actions are padded to ``num_outputs``);
            ``None`` when all have ``num_outputs``.
        num_inputs (int): m, the width of the observation (the largest m when it varies);
            the agent gets one input port node per column. (default: :obj:`0`)
        input_dims (torch.Tensor, optional): ``[B]`` m of each agent when it varies.
        target (torch.Tensor, optional): ``[B, d]`` the hidden answer, where the task has a
            fixed one (``badger rollout`` draws it beside the outputs).
        feedback_to (list of int, "all" or "nodes", optional): who gets these episodes'
            scalar feedback when it is not the task's ``feedback_to`` (a
            :class:`~badger_graph.tasks.TaskMixture` sets its family's); ``None``: the
            task's.
        step_index (int): set by the agent before every call: ``0`` for :meth:`first`,
            ``t`` when :meth:`step` scores the action of inner step ``t`` (0-based), so an
            episode can change with time (e.g. a target that moves at a given step).
    """

    num_agents: int
    num_outputs: int
    dims: Tensor | None = None
    num_inputs: int = 0
    input_dims: Tensor | None = None
    target: Tensor | None = None
    feedback_to: Sequence[int] | str | None = None
    step_index: int = 0

    def input_sizes(self) -> int | list[int]:
        """Input port nodes per agent: ``num_inputs``, or each agent's ``input_dims``.

        Raises:
            ValueError: naming the episode when ``num_inputs`` is not an int >= 0.
        """
        m = self.num_inputs
        if not isinstance(m, int) or m < 0:
            raise ValueError(f"{type(self).__name__}.num_inputs must be an int >= 0, got {m!r}")
        return m if self.input_dims is None else [int(x) for x in self.input_dims.tolist()]

    @abstractmethod
    def first(self) -> StepResult:
        """Feedback available before the first action (nothing seen yet)."""

    @abstractmethod
    def step(self, action: Tensor) -> StepResult:
        """Score ``action`` ``[B, d]`` and return the feedback for the next step."""

    def agent_range(self, start: int, stop: int) -> Episode:
        """The episodes of agents ``start..stop-1`` (used to split a batch across processes).

        Tasks whose episodes should run under data-parallel training override this.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot be split across processes: implement agent_range"
        )


class Task(ABC):
    """A family of episodes. Subclasses add chance level and simple analytic baselines.

    Args:
        feedback_to (list of int, "all" or "nodes", optional): local indices of the experts
            that receive the scalar feedback; ``"all"`` for every expert, ``"nodes"`` for
            every node (experts, input and output ports). (default: ``[0]``)
    """

    num_outputs: int

    def __init__(self, feedback_to: Sequence[int] | str = (0,)) -> None:
        if isinstance(feedback_to, str):
            if feedback_to not in ("all", "nodes"):
                raise ValueError(
                    f"feedback_to must be a list of ints, 'all' or 'nodes', got {feedback_to!r}"
                )
        else:
            feedback_to = tuple(int(i) for i in feedback_to)
            if any(i < 0 for i in feedback_to):
                raise ValueError(f"feedback_to indices must be >= 0, got {list(feedback_to)}")
        self.feedback_to = feedback_to

    def check_experts(self, num_experts: int) -> None:
        """Raise if feedback goes to an expert index that does not exist."""
        if not isinstance(self.feedback_to, str):
            bad = [i for i in self.feedback_to if i >= num_experts]
            if bad:
                raise ValueError(
                    f"feedback_to={list(self.feedback_to)} names expert(s) {bad} but the agent "
                    f"has {num_experts} experts (indices 0..{num_experts - 1})"
                )

    @abstractmethod
    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> Episode:
        """Draw ``batch_size`` fresh episodes."""

    @abstractmethod
    def chance_level(self, num_outputs: int | None = None) -> float:
        """Expected error of a trivial agent (e.g. always outputting 0)."""

    def mean_baseline(self, num_outputs: int | None = None) -> float:
        """Expected error of a simple analytic baseline (``nan`` if the task has none).

        Shown beside the agent's error in generalization sweeps and their plots.
        """
        return float("nan")

    def metrics(self) -> dict[str, Callable[[Lifetime], Tensor]]:
        """Task-specific evaluation metrics: name → function of a lifetime.

        Each function gets the :class:`~badger_graph.Lifetime` (``errors`` ``[T, B]``,
        ``actions`` ``[T, B, d]`` and the ``episode`` with its hidden parameters) and returns
        a scalar. Validation and test log each as ``{stage}/{name}`` beside the generic
        ``final_error``, ``mean_error`` and ``chance``. (default: none)
        """
        return {}

    def baselines(self) -> dict[str, Callable[[Episode, int], Tensor]]:
        """Hand-written strategies to compare with: name → ``play(episode, steps)``.

        Each plays ``steps`` steps of ``episode`` through the same :meth:`Episode.first` /
        :meth:`Episode.step` protocol as an agent (see :func:`play`) and returns its errors
        ``[T, B]``; given a fresh episode drawn from the same seed as the agent's, it faces
        the same hidden parameters and random outcomes. (default: none)
        """
        return {}


class BaselineUnavailable(ValueError):
    """A baseline that cannot be computed for these episodes (e.g. an exact optimum too large).

    :meth:`~badger_graph.runner.EpisodeRunner.baselines` leaves it out with a warning.
    """


def check_step_result(result, episode: Episode) -> StepResult:
    """Check a task's answer against the sizes its episode declares; returns it.

    ``error`` and ``feedback`` must be ``[B]``, ``signal`` ``[B, d]`` and ``observation``
    ``[B, m]`` floating-point tensors (``B``, ``d``, ``m``: the episode's ``num_agents``,
    ``num_outputs``, ``num_inputs``); only ``error`` is required.

    Raises:
        ValueError: naming the episode class, the field, and what it got.
    """
    name = type(episode).__name__
    if not isinstance(result, StepResult):
        raise ValueError(f"{name}.step must return a StepResult, got {type(result).__name__}")
    B, d, m = episode.num_agents, episode.num_outputs, episode.num_inputs
    wants = (("error", (B,)), ("feedback", (B,)), ("signal", (B, d)), ("observation", (B, m)))
    for field, want in wants:
        value = getattr(result, field)
        if value is None:
            if field == "error":
                raise ValueError(f"{name}.step returned no error")
            continue
        if not isinstance(value, Tensor) or tuple(value.shape) != want:
            got = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{name}: StepResult.{field} must have shape {list(want)}, got {got}")
        if not value.is_floating_point():
            raise ValueError(
                f"{name}: StepResult.{field} must be a floating-point tensor, got {value.dtype}"
            )
    return result


def run_steps(
    episode: Episode,
    result: StepResult,
    steps: int,
    act: Callable[[StepResult, int], Tensor],
    start: int = 0,
    check: Callable[[StepResult], StepResult] | None = None,
) -> tuple[list[Tensor], list[Tensor], StepResult]:
    """The lifetime loop every learner and baseline shares.

    For ``t = start, ..., start + steps - 1``: ``act(result, t)`` answers the action of
    step ``t`` from the last result; the episode scores it (with ``step_index = t``) and
    answers the next result, passed through ``check`` if given. Returns the actions, the
    errors (one per step) and the last result.
    """
    actions, errors = [], []
    for t in range(start, start + steps):
        action = act(result, t)
        episode.step_index = t
        result = episode.step(action)
        if check is not None:
            result = check(result)
        actions.append(action)
        errors.append(result.error)
    return actions, errors, result


def first_result(episode: Episode, step: int = 0) -> StepResult:
    """The episode's answer before the first action of a lifetime that starts at ``step``.

    With :func:`run_steps`, the only place that sets ``episode.step_index``.
    """
    episode.step_index = step
    return episode.first()


def play(episode: Episode, steps: int, act: Callable[[StepResult, int], Tensor]) -> Tensor:
    """Run a hand-written strategy for ``steps`` steps; its errors ``[T, B]``.

    ``act(result, t)`` gets the last :class:`StepResult` (the episode's ``first()`` at
    ``t = 0``) and returns the action ``[B, d]`` of step ``t`` (see :func:`run_steps`).
    """
    result = first_result(episode)
    with torch.no_grad():
        _, errors, _ = run_steps(episode, result, steps, act)
    return torch.stack(errors)


def outcome_generator(generator: torch.Generator | None) -> torch.Generator:
    """A private CPU generator for an episode's step-by-step random draws.

    Seeded from the batch's ``generator``, so the agent and every baseline that replays the
    same seed see the same outcomes (inputs, rewards, labels) whatever they do.
    """
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.Generator().manual_seed(seed)


def gamma(concentration, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gamma(concentration, 1) samples, one per entry, drawn from ``generator``.

    ``torch.distributions`` samples only from the global generator; this draws from the
    one a task was given (Marsaglia & Tsang's method; for a concentration below 1 the
    sample of concentration + 1 times ``U ** (1 / concentration)``), so episodes stay a
    function of their seed. Scale it for another rate. Float32 on the CPU.

    Raises:
        ValueError: a concentration that is not positive and finite, naming it.
    """
    a = torch.as_tensor(concentration, dtype=torch.float64)
    if not bool(torch.isfinite(a).all()) or bool((a <= 0).any()):
        raise ValueError(f"gamma: concentrations must be positive and finite, got {a.tolist()}")
    flat = a.reshape(-1)
    boost = flat < 1
    d = torch.where(boost, flat + 1, flat) - 1 / 3
    c = 1 / torch.sqrt(9 * d)
    out = torch.empty_like(flat)
    todo = torch.arange(flat.numel())
    while todo.numel():
        x = torch.randn(todo.numel(), generator=generator, dtype=torch.float64)
        u = torch.rand(todo.numel(), generator=generator, dtype=torch.float64)
        v = (1 + c[todo] * x) ** 3
        ok = (v > 0) & (
            torch.log(u) < 0.5 * x**2 + d[todo] * (1 - v + torch.log(v.clamp_min(1e-300)))
        )
        out[todo[ok]] = (d[todo] * v)[ok]
        todo = todo[~ok]
    if bool(boost.any()):
        u = torch.rand(int(boost.sum()), generator=generator, dtype=torch.float64)
        out[boost] = out[boost] * u ** (1 / flat[boost])
    return out.reshape(a.shape).float()


def dirichlet(concentration, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dirichlet samples drawn from ``generator``: one distribution per row of the last axis.

    ``dirichlet(torch.full((B, k), 0.5), g)`` gives ``B`` probability vectors over ``k``
    outcomes (normalized :func:`gamma` draws).
    """
    g = gamma(concentration, generator).double()
    return (g / g.sum(-1, keepdim=True)).float()


def check_batch_size(batch_size: int) -> None:
    """Refuse a negative number of episodes, naming it."""
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size}")
