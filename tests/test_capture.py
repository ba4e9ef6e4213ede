"""``Execution(capture=True)``: each inner step compiled as one graph (CUDA graphs on a GPU).

Most cases trace with a counting backend (dynamo's whole-graph trace, then eager aten ops):
that is what decides whether a step can be captured, and it is fast. One case compiles with
inductor, as a user's run does.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import grads, tiny_policy
from torch._dynamo.testing import CompileCounter

import badger_graph.lifetime as lifetime_module
from badger_graph import Agent
from badger_graph.errors import NonFiniteError
from badger_graph.execution import CapturedStep, Execution
from badger_graph.policies import RelayFeedback, RolePolicies
from badger_graph.ports import AddressedPorts
from badger_graph.records import LifetimeCall
from badger_graph.runner import EpisodeRunner
from badger_graph.tasks import GuessingGame, OnlineRegression
from badger_graph.tasks.base import StepResult
from badger_graph.topologies import Attention, FullyConnected, RandomOutDegree


@pytest.fixture
def counter(monkeypatch):
    """Every captured step compiles with one shared counting backend."""
    backend = CompileCounter()
    monkeypatch.setattr(
        lifetime_module, "capture_step", lambda fn, device: CapturedStep(fn, device, backend)
    )
    torch._dynamo.reset()  # compiled steps are cached per code object, across agents
    yield backend
    torch._dynamo.reset()


def _agent(kind: str, capture: bool) -> Agent:
    torch.manual_seed(0)
    ex = Execution(capture=capture)
    if kind == "fig6":
        return Agent(tiny_policy(aggr="mean"), FullyConnected(), execution=ex)
    if kind == "ports":  # the Fig. 7 setup: addressed output ports
        ports = AddressedPorts(16, address_channels=4)
        policy = tiny_policy(aggr="mean")
        return Agent(policy, FullyConnected(), identity="random", ports=ports, execution=ex)
    if kind == "attention":
        policy = tiny_policy(aggr="weighted")
        return Agent(policy, Attention(16, 4, top_k=3), output_ports=True, execution=ex)
    if kind == "mixed":  # role policies: a handcrafted relay receives the feedback
        policy = RolePolicies(
            [tiny_policy(aggr="mean"), RelayFeedback(16, 8)], roles={"feedback": 1}
        )
        return Agent(policy, FullyConnected(), execution=ex)
    if kind in ("inputs", "inputs varied"):  # observations on input nodes, 2 rounds
        policy = tiny_policy(aggr="mean")
        return Agent(policy, FullyConnected(), rounds=2, output_ports=True, execution=ex)
    raise ValueError(kind)


def _task(kind: str):
    if kind == "inputs":
        return OnlineRegression(num_inputs=3, feedback_to="nodes")
    if kind == "inputs varied":  # agents of different sizes: the edge list, built once
        return OnlineRegression(num_inputs=[1, 4], feedback_to="nodes")
    feedback_to = {"fig6": [0], "mixed": [4]}.get(kind, "all")
    return GuessingGame(num_outputs=3, feedback_to=feedback_to)


def _run(agent: Agent, kind: str, seed: int = 3, batch: int = 6, experts: int = 5):
    runner = EpisodeRunner(agent, _task(kind), num_experts=experts, inner_steps=6)
    agent.zero_grad()
    life = runner.run(seed=seed, batch_size=batch)
    life.errors.mean().backward()
    return life, grads(agent)


def _same(a, b):
    (la, ga), (lb, gb) = a, b
    torch.testing.assert_close(la.actions, lb.actions, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(la.errors, lb.errors, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(la.state.h, lb.state.h, rtol=1e-5, atol=1e-6)
    assert la.state.step == lb.state.step
    assert ga
    assert ga.keys() == gb.keys()
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["fig6", "ports", "attention", "inputs", "inputs varied", "mixed"])
def test_captured_lifetime_equals_eager_in_one_graph(counter, kind):
    """Same actions, errors, final states and gradients; one graph for every step."""
    eager, captured = _agent(kind, False), _agent(kind, True)
    captured.load_state_dict(eager.state_dict())
    _same(_run(eager, kind), _run(captured, kind))
    assert counter.frame_count == 1  # the whole step traced once, no graph break
    seed = 3 if kind == "inputs varied" else 4  # (other seeds give other agent sizes)
    _same(_run(eager, kind, seed=seed), _run(captured, kind, seed=seed))
    assert counter.frame_count == 1  # a second lifetime of the same shape: no recompile
    assert captured.runtime.steps["cpu"].failed is None


def test_new_shapes_recompile_then_generalise(counter):
    """A new agent size or d compiles once more, then shapes are dynamic (curricula)."""
    agent = _agent("ports", True)
    frames = []
    for experts, d in [(5, 3), (7, 3), (9, 3), (5, 4), (6, 5), (11, 2)]:
        runner = EpisodeRunner(agent, GuessingGame(d, feedback_to="all"), experts, 4)
        with torch.no_grad():
            life = runner.run(seed=1, batch_size=4)
        assert life.actions.shape == (4, 4, d)
        frames.append(counter.frame_count)
    assert frames[-1] <= 3
    assert frames[-1] == frames[-3]  # no compile for the last shapes


def test_captured_lifetime_in_chunks_equals_one_piece(counter):
    """A lifetime run in two chunks (truncated outer loops) gives the one-piece result."""
    agent = _agent("fig6", True)
    runner = EpisodeRunner(agent, _task("fig6"), num_experts=5, inner_steps=6)
    with torch.no_grad():
        whole = runner.run(seed=2, batch_size=4)
        episode, state = runner.begin(seed=2, batch_size=4)
        first = agent(LifetimeCall(_task("fig6"), episode, state, 2, total_steps=6))
        rest = agent(
            LifetimeCall(
                _task("fig6"), episode, first.state, 4, total_steps=6, result=first.last_result
            )
        )
    torch.testing.assert_close(torch.cat([first.actions, rest.actions]), whole.actions)


def test_recording_and_growth_run_eagerly(counter):
    """Recorded lifetimes and lifetimes with growth keep the eager path (and its records)."""
    from badger_graph.growth import GrowthEvent

    agent = _agent("fig6", True)
    runner = EpisodeRunner(agent, _task("fig6"), num_experts=5, inner_steps=6)
    with torch.no_grad():
        life = runner.run(seed=2, batch_size=4, record=True)
        grown = runner.run(seed=2, batch_size=4, growth=[GrowthEvent(3, 2)])
    assert len(life.records) == 6
    assert grown.state.num_nodes == 4 * 7
    assert counter.frame_count == 0


class _NaNAfter:
    """Wraps an episode: from step ``k`` on its feedback is NaN."""

    def __init__(self, episode, k: int) -> None:
        self.episode, self.k, self.calls = episode, k, 0

    def __getattr__(self, name):
        return getattr(self.episode, name)

    def step(self, action) -> StepResult:
        r = self.episode.step(action)
        self.calls += 1
        if self.calls > self.k:
            return StepResult(r.error, torch.full_like(r.feedback, float("nan")), r.signal)
        return r


def test_captured_nonfinite_names_the_first_bad_step(counter):
    agent = _agent("fig6", True)
    task = _task("fig6")
    runner = EpisodeRunner(agent, task, num_experts=5, inner_steps=6)
    episode, state = runner.begin(seed=2, batch_size=4)
    with pytest.raises(NonFiniteError, match=r"at inner step \(captured\) 3") as err:
        agent(
            LifetimeCall(task, _NaNAfter(episode, 2), state, 6)
        )  # answers 3.. carry NaN: step 3 reads it
    assert err.value.step == 3
    unchecked = dataclasses.replace(agent.execution, check_finite=False)
    agent.execution = unchecked
    episode, state = runner.begin(seed=2, batch_size=4)
    life = agent(LifetimeCall(task, _NaNAfter(episode, 2), state, 6))
    assert life.actions[:3].isfinite().all()
    assert not life.actions[3:].isfinite().all()


class _HostTopology(FullyConnected):
    """A user topology that reads a value back to the host every step."""

    def forward(self, state):
        if float(state.h.abs().sum()) < 0:  # never true: a host read-back only
            raise AssertionError
        return super().forward(state)

    supports_dense = False
    fixed_edges = False  # asked every step (a fixed topology's edges are built outside)


def test_untraceable_step_warns_once_and_runs_eagerly():
    """A step that cannot be one graph: one warning naming why, then eager, same results."""
    torch.manual_seed(0)
    policy = tiny_policy(aggr="mean")
    eager = Agent(policy, _HostTopology())
    captured = Agent(policy, _HostTopology(), execution=Execution(capture=True))
    captured.load_state_dict(eager.state_dict())
    with pytest.warns(UserWarning, match="cannot be compiled as one graph"):
        b = _run(captured, "fig6")
    _same(_run(eager, "fig6"), b)
    assert captured.runtime.steps["cpu"].failed


def test_random_topology_runs_eagerly_with_a_warning(counter):
    """Random draws are not captured: one warning, the eager path, the same edges."""
    torch.manual_seed(0)
    policy = tiny_policy(aggr="mean")
    eager = Agent(policy, RandomOutDegree(2, seed=0))
    captured = Agent(policy, RandomOutDegree(2, seed=0), execution=Execution(capture=True))
    captured.load_state_dict(eager.state_dict())
    with pytest.warns(UserWarning, match="RandomOutDegree draws its edges outside"):
        b = _run(captured, "fig6")
    _same(_run(eager, "fig6"), b)
    assert counter.frame_count == 0


def test_inductor_capture_equals_eager():
    """The compiled step as a user gets it (inductor on the CPU)."""
    eager, captured = _agent("ports", False), _agent("ports", True)
    captured.load_state_dict(eager.state_dict())
    _same(_run(eager, "ports"), _run(captured, "ports"))
    assert captured.runtime.steps["cpu"].failed is None


class _CrossingTopology(_HostTopology):
    """A broken user topology: one edge joins two agents."""

    def forward(self, state):
        edge_index, w = super().forward(state)
        return torch.cat([edge_index, torch.tensor([[0], [state.num_nodes - 1]])], 1), w


def test_a_real_error_of_the_step_is_raised_as_eagerly(recwarn):
    """Bad user edges raise the eager run's own error, not a compile warning."""
    policy = tiny_policy(aggr="mean")
    agent = Agent(policy, _CrossingTopology(), execution=Execution(capture=True))
    with pytest.raises(ValueError, match="between different agents"):
        _run(agent, "fig6")
    assert not [w for w in recwarn if "capture" in str(w.message)]


def test_inside_torch_func_transforms_steps_run_eagerly(counter):
    """Under vmap (the ES population) nothing is compiled; outside, it is."""
    agent = _agent("fig6", True)
    runner = EpisodeRunner(agent, _task("fig6"), num_experts=5, inner_steps=4)
    with torch.no_grad():
        out = torch.func.vmap(
            lambda x: runner.run(seed=1, batch_size=2).errors.mean() + x, randomness="same"
        )(torch.zeros(2))
        assert out.shape == (2,)
        assert counter.frame_count == 0
        runner.run(seed=1, batch_size=2)
    assert counter.frame_count == 1


@pytest.mark.parametrize("option", ["capture", "compile"])
def test_a_copy_compiles_its_own_steps(counter, option):
    """A deep copy (or pickle) made after compiling runs the copy's weights, not the original's."""
    import copy
    import pickle

    agent = _agent("fig6", False)
    agent.execution = Execution(**{option: True})
    runner = EpisodeRunner(agent, _task("fig6"), num_experts=5, inner_steps=4)
    with torch.no_grad():
        runner.run(seed=1, batch_size=2)  # compiles and caches on the original
        for clone in (copy.deepcopy(agent), pickle.loads(pickle.dumps(agent))):
            for p in clone.parameters():
                p.mul_(0.5)
            mine = EpisodeRunner(clone, _task("fig6"), 5, 4).run(seed=1, batch_size=2)
            clone.execution = Execution()
            eager = EpisodeRunner(clone, _task("fig6"), 5, 4).run(seed=1, batch_size=2)
            torch.testing.assert_close(mine.errors, eager.errors)


class _FailsOnNaN(_NaNAfter):
    """Like a task that cannot take a NaN action (e.g. sampling from NaN probabilities)."""

    def step(self, action) -> StepResult:
        if not action.isfinite().all():
            raise RuntimeError("probability tensor contains nan")
        return super().step(action)


def test_a_task_failing_on_nan_actions_still_names_the_nan(counter):
    agent = _agent("fig6", True)
    task = _task("fig6")
    episode, state = EpisodeRunner(agent, task, 5, 6).begin(seed=2, batch_size=4)
    with pytest.raises(NonFiniteError, match=r"inner step \(captured\) 3") as err:
        agent(LifetimeCall(task, _FailsOnNaN(episode, 2), state, 6))
    assert isinstance(err.value.__cause__, RuntimeError)


def test_copies_of_replay_outputs_change_nothing(counter, monkeypatch):
    """The copies a CUDA lifetime keeps of each replay's outputs give the same lifetime."""
    eager, captured = _agent("ports", False), _agent("ports", True)
    captured.load_state_dict(eager.state_dict())
    monkeypatch.setattr(lifetime_module, "replays_reuse_outputs", lambda device: True)
    _same(_run(eager, "ports"), _run(captured, "ports"))
    runner = EpisodeRunner(captured, _task("ports"), num_experts=5, inner_steps=6)
    with torch.no_grad():
        a = runner.run(seed=3, batch_size=6)
    torch.testing.assert_close(a.actions, _run(eager, "ports")[0].actions.detach())
