"""A lifetime: an agent's start state and inner loop against an episode, eager or captured.

:func:`begin` is what :meth:`Agent.begin <badger_graph.Agent.begin>` does (the state a
lifetime starts from); :func:`run` is what :meth:`Agent.forward <badger_graph.Agent.forward>`
does: both paths (eager, and ``execution.capture``'s compiled steps) run the one step body
:func:`step_body` and, like the baselines' ``play``, step through the one loop of the task
protocol, :func:`~badger_graph.tasks.base.run_steps`; chunks of a longer lifetime
(truncated backpropagation) are calls with ``total_steps`` and ``result``
(:meth:`LifetimeCall.next <badger_graph.records.LifetimeCall.next>`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from badger_graph.errors import NonFiniteError, check_finite
from badger_graph.execution import (
    adjacency,
    capture_step,
    mark_step_begin,
    replays_reuse_outputs,
)
from badger_graph.growth import GrowthEvent, grow
from badger_graph.memory import check_nodes_fit
from badger_graph.ports import PortLinks, random_addresses
from badger_graph.records import Lifetime, LifetimeCall, StepRecord
from badger_graph.seeds import generator as seeded
from badger_graph.state import ExpertGraph
from badger_graph.tasks.base import (
    Episode,
    StepResult,
    Task,
    check_step_result,
    first_result,
    run_steps,
)


def _needs_grad(value: Tensor) -> Tensor:
    """``value`` itself if it requires grad, else a leaf copy of it that does."""
    return value if value.requires_grad else value.detach().requires_grad_()


def _uniform(result: StepResult, state: ExpertGraph, inputs: int, grad: bool) -> StepResult:
    """The task's answer in one form for every step, so that one graph serves them all.

    A missing feedback or signal (observation, with ``inputs`` columns) becomes zeros
    (what :meth:`Agent.write` writes for it anyway); with ``grad`` each one requires grad.
    """
    B, d = state.num_agents, state.num_outputs
    zeros = state.h.new_zeros
    feedback = result.feedback if result.feedback is not None else zeros(B)
    signal = result.signal if result.signal is not None else zeros(B, d)
    observation = result.observation
    if observation is None and inputs:
        observation = zeros(B, inputs)
    if grad:
        feedback, signal = _needs_grad(feedback), _needs_grad(signal)
        observation = None if observation is None else _needs_grad(observation)
    return StepResult(result.error, feedback, signal, observation)


def _check_result(
    result, episode: Episode, state: ExpertGraph, inputs: tuple[Tensor, Tensor, Tensor]
) -> StepResult:
    """A task's answer checked against the episode (:func:`check_step_result`) and the state.

    ``inputs``: the state's input nodes (:meth:`ExpertGraph.input_nodes`, known per
    lifetime, so that no step reads back from the device whether there are any).
    """
    if isinstance(result, StepResult) and result.observation is not None and not inputs[0].numel():
        raise ValueError(
            f"{type(episode).__name__} returned an observation but the agent has no input "
            f"nodes: the episode must declare num_inputs >= 1 (got {episode.num_inputs!r}) "
            f"and the state be built with them"
        )
    return check_step_result(result, episode)


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """What an inner step needs that depends only on the graph's structure."""

    state: ExpertGraph  # the structure; its h / value are replaced every step
    constant: dict[str, Tensor]
    links: PortLinks | None
    owners: tuple[Tensor, Tensor, Tensor]
    inputs: tuple[Tensor, Tensor, Tensor]
    edges: tuple | None  # a fixed-edges topology's (adj, edge_weight, edge_index), else None

    @classmethod
    def of(cls, agent, state: ExpertGraph, task: Task, episode: Episode) -> StepPlan:
        """The plan of ``state``'s graph (built once per lifetime, again after a growth)."""
        constant = agent.constant_features(state, task, episode)
        links = agent.ports.links(state) if agent.ports is not None else None
        owners, inputs = state.output_owners(), state.input_nodes()
        return cls(state.replace(step=0), constant, links, owners, inputs, None)


def step_body(
    agent,
    plan: StepPlan,
    state: ExpertGraph,
    result: StepResult,
    time: float | Tensor,
    check: bool,
    record: bool = False,
) -> tuple[ExpertGraph, Tensor, StepRecord | None]:
    """One inner step, the same for the eager and the captured lifetime.

    Write the task's answer into the nodes, run the step's rounds, push into the ports
    (if any), read the action. ``time`` is ``t / T`` (a float, or a 0-d tensor in a
    captured step); ``check`` runs the finite checks (raising, so off when captured).
    Returns the new state, the action and the step's record (``None`` unless ``record``).
    """
    x = agent.write(
        state,
        result,
        plan.constant,
        time,
        links=plan.links,
        owners=plan.owners,
        inputs=plan.inputs,
        check=check,
    )
    state, rec = agent.step(state, x, record, check=check, edges=plan.edges)
    if agent.ports is not None:
        state = state.replace(value=agent.ports.write(state, plan.links))
        if check:
            check_finite("port values", state.value, state.step - 1)
    return state, agent.read(state, plan.owners), rec


def captured_step(
    agent,
    plan: StepPlan,
    h: Tensor,
    value: Tensor | None,
    result: StepResult,
    time: Tensor,
) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """One inner step as a function of tensors: the part a CUDA graph can replay.

    :func:`step_body` on ``plan``'s structure (built once per lifetime) with the step time
    ``t / T`` as a 0-d tensor; no value is read back to the host: finite checks come back
    as a flag instead of raising here. Returns the new states, port values, the action and
    that flag.
    """
    state = plan.state.replace(h=h, value=value)
    new, action, _ = step_body(agent, plan, state, result, time, check=False)
    finite = new.h.isfinite().all() & action.isfinite().all()
    if new.value is not None:
        finite = finite & new.value.isfinite().all()
    return new.h, new.value, action, finite


def _capture(agent, state: ExpertGraph, record: bool, growth: Sequence[GrowthEvent]):
    """The compiled inner step of ``execution.capture``, or ``None`` to run eagerly."""
    if not agent.execution.capture or record or growth or state.num_agents == 0:
        return None
    if torch._C._functorch.maybe_current_level() is not None:
        return None  # inside torch.func transforms (the ES population's vmap): eager
    runtime = agent.runtime
    if not agent.topology.capturable:
        if not runtime.warned:  # once per agent
            runtime.warned = True
            warnings.warn(
                f"execution.capture: {type(agent.topology).__name__} draws its edges "
                "outside a compiled graph; its lifetimes run eagerly",
                stacklevel=4,
            )
        return None
    key = state.h.device.type
    if key not in runtime.steps:

        def step(plan, h, value, result, time):
            return captured_step(agent, plan, h, value, result, time)

        runtime.steps[key] = capture_step(step, state.h.device)
    return runtime.steps[key]


def _raise_nonfinite(agent, finite: list[Tensor], first_step: int, cause=None) -> None:
    """With ``check_finite``: raise for the first step whose flag is false (one read-back)."""
    if not agent.execution.check_finite or not finite:
        return
    bad = (~torch.stack(finite)).nonzero()
    if bad.numel():
        raise NonFiniteError(
            "node inputs, expert states or port values",
            None,
            step=first_step + int(bad[0, 0]),
            where="inner step (captured)",
        ) from cause


def _captured(
    agent, step_fn, call: LifetimeCall, plan: StepPlan, result: StepResult
) -> tuple[list, list, ExpertGraph, StepResult]:
    """The inner loop of ``call`` with every step through the compiled ``step_fn``."""
    episode, state, total = call.episode, call.state, call.total
    times = torch.arange(total + 1, dtype=torch.float64, device=state.h.device) / total
    grad = torch.is_grad_enabled()
    if grad:  # later steps' states need grad: one graph for every step
        state = state.replace(
            h=_needs_grad(state.h),
            value=None if state.value is None else _needs_grad(state.value),
        )
    finite = []
    num_inputs = episode.num_inputs if plan.inputs[0].numel() else 0
    mark_step_begin(state.h.device)
    copy_out = replays_reuse_outputs(state.h.device)

    def act(result: StepResult, t: int) -> Tensor:
        nonlocal state
        if call.detach_feedback:
            result = result.detach()
        result = _uniform(result, state, num_inputs, grad)
        h, value, action, ok = step_fn(plan, state.h, state.value, result, times[state.step])
        if copy_out:  # the next replay may reuse these outputs' memory: keep copies
            action, ok = action.clone(), ok.clone()
            if not grad:
                h, value = h.clone(), None if value is None else value.clone()
        state = state.replace(h=h, value=value, step=state.step + 1)
        finite.append(ok)
        return action

    def check(answer) -> StepResult:
        return _check_result(answer, episode, state, plan.inputs)

    start = state.step
    try:
        actions, errors, result = run_steps(episode, result, call.steps, act, start, check)
    except NonFiniteError:
        raise
    except Exception as error:
        # a task may fail on a NaN action: name the NaN, as an eager run would
        _raise_nonfinite(agent, finite, start, error)
        raise
    _raise_nonfinite(agent, finite, start)
    if copy_out and grad:  # the last states still live in the replayed graph's memory
        state = state.replace(
            h=state.h.clone(), value=None if state.value is None else state.value.clone()
        )
    return actions, errors, state, result


def begin(
    agent,
    episode: Episode,
    num_experts: int,
    generator: torch.Generator,
    device: torch.device | str,
    address_seed: int | None = None,
) -> ExpertGraph:
    """The initial state of agents of ``num_experts`` experts for ``episode``.

    ``address_seed`` (a curriculum's) fixes the port addresses for the whole batch.

    Raises:
        MemoryError: before allocating, when the agents' states cannot fit in memory.
    """
    B = episode.num_agents
    check_nodes_fit(B, num_experts, agent.policy.hidden_channels, device)
    addresses = None
    if agent.ports is not None and address_seed is not None:
        fixed = seeded(address_seed, "addresses")  # one set of addresses for the batch
        addresses = random_addresses(1, episode.num_outputs, agent.ports.address_channels, fixed)
        addresses = addresses.expand(B, -1, -1)
    if agent.rounds < 2 and episode.num_inputs:
        warnings.warn(
            f"{type(episode).__name__} shows observations on input nodes but the agent "
            f"runs rounds={agent.rounds}: an input node reads the observation in the "
            "step's first round, after its message has left, so the outputs of a step "
            "cannot depend on that step's observation; use rounds >= 2",
            stacklevel=4,
        )
    dims = episode.dims
    return agent.init_state(
        num_experts,
        episode.num_outputs if dims is None else dims.tolist(),
        num_agents=B,
        generator=generator,
        device=device,
        addresses=addresses,
        num_inputs=episode.input_sizes(),
    )


def run(agent, call: LifetimeCall) -> Lifetime:
    """Play ``call``: ``call.steps`` inner steps of ``agent`` from ``call.state``.

    What :meth:`Agent.forward <badger_graph.Agent.forward>` does (see
    :class:`~badger_graph.records.LifetimeCall` for the arguments). Growth events add
    experts to every agent before the given steps (existing states are kept bit-for-bit).
    """
    state, episode, steps, growth = call.state, call.episode, call.steps, call.growth
    if state.num_outputs != episode.num_outputs:
        raise ValueError(
            f"state has d={state.num_outputs} outputs but the episode has d={episode.num_outputs}"
        )
    late = [g.step for g in growth if g.step >= state.step + steps]
    if late:
        raise ValueError(
            f"growth at step(s) {late} but this lifetime ends before step {state.step + steps}"
        )
    plan = StepPlan.of(agent, state, call.task, episode)
    result = call.result
    if result is None:
        result = _check_result(first_result(episode, state.step), episode, state, plan.inputs)
    step_fn = _capture(agent, state, call.record, growth)
    if step_fn is not None:
        if agent.topology.fixed_edges:  # the same edges every step: built once, not captured
            edges = adjacency(agent.policy, agent.topology, state, agent.execution)
            plan = dataclasses.replace(plan, edges=edges)
        actions, errors, state, result = _captured(agent, step_fn, call, plan, result)
        return Lifetime(torch.stack(actions), torch.stack(errors), state, [], episode, result)
    records = []
    total, check_finite_values = call.total, agent.execution.check_finite

    def act(result: StepResult, t: int) -> Tensor:
        nonlocal state, plan
        events = [g for g in growth if g.step == t]
        for event in events:
            state = grow(state, event.count, event.mode, None, call.generator, agent.identity)
        if events:
            plan = StepPlan.of(agent, state, call.task, episode)
        if call.detach_feedback:
            result = result.detach()
        state, action, rec = step_body(
            agent, plan, state, result, t / total, check_finite_values, call.record
        )
        if rec is not None:
            rec.action = action.detach()
            records.append(rec)
        return action

    def check(answer) -> StepResult:
        return _check_result(answer, episode, state, plan.inputs)

    actions, errors, result = run_steps(episode, result, steps, act, state.step, check)
    return Lifetime(torch.stack(actions), torch.stack(errors), state, records, episode, result)
