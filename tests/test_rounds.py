"""The pieces of an inner step, tested directly: run_rounds, StepPlan, step_body, dense_pays."""

from __future__ import annotations

import pytest
import torch

from badger_graph import Agent, Execution, ExpertPolicy
from badger_graph.errors import NonFiniteError
from badger_graph.execution import CSR_EDGE_COST, DEFAULT_DENSE_NODES, adjacency, dense_pays
from badger_graph.lifetime import StepPlan, step_body
from badger_graph.ports import AddressedPorts
from badger_graph.rounds import run_rounds
from badger_graph.tasks import GuessingGame
from badger_graph.topologies import FullyConnected


def _round_inputs(rounds: int = 2, record: bool = False, **execution):
    torch.manual_seed(0)
    agent = Agent(ExpertPolicy(), FullyConnected(), rounds=rounds, execution=Execution(**execution))
    state = agent.init_state(4, 3, num_agents=2)
    u = agent.policy.encode(torch.randn(state.h.size(0), agent.policy.node_features))
    adj, edge_weight, _ = adjacency(agent.policy, agent.topology, state, agent.execution, record)
    return agent, state, u, adj, edge_weight


def test_run_rounds_records_every_round_and_ends_on_the_last():
    agent, state, u, adj, w = _round_inputs(rounds=3, record=True)  # recording: an edge list
    h, messages, states = run_rounds(agent, state.h, u, adj, w, 0, record=True, check=True)
    assert len(messages) == 3
    assert len(states) == 3
    assert torch.equal(states[-1], h.detach())
    assert not torch.equal(states[0], states[1])  # each round moves the states
    unrecorded, no_messages, no_states = run_rounds(agent, state.h, u, adj, w, 0, False, True)
    assert torch.allclose(unrecorded, h)
    assert no_messages == no_states == []


def test_run_rounds_names_the_first_non_finite_tensor_with_step_and_round():
    agent, state, u, adj, w = _round_inputs()
    h = state.h.clone()
    h[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="step 5, round 0"):
        run_rounds(agent, h, u, adj, w, 5, record=False, check=True)
    out, _, _ = run_rounds(agent, h, u, adj, w, 5, record=False, check=False)  # unchecked
    assert not out.isfinite().all()


def test_run_rounds_with_activation_checkpointing_gives_the_same_states_and_gradients():
    grads = []
    for checkpoint in (False, True):
        agent, state, u, adj, w = _round_inputs(checkpoint=checkpoint)
        h, _, _ = run_rounds(agent, state.h, u, adj, w, 0, record=False, check=True)
        h.square().sum().backward()
        grads.append([p.grad.clone() for p in agent.policy.parameters() if p.grad is not None])
        grads[-1].insert(0, h.detach())
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_step_plan_holds_the_structure_and_step_body_advances_one_step():
    torch.manual_seed(0)
    agent = Agent(ExpertPolicy(), FullyConnected(), rounds=2)
    task = GuessingGame(3)
    episode = task.reset(2, torch.Generator().manual_seed(0))
    state = agent.init_state(4, 3, num_agents=2)
    plan = StepPlan.of(agent, state, task, episode)
    assert plan.state.step == 0
    assert plan.links is None  # no ports
    for mine, fresh in zip(plan.owners, state.output_owners(), strict=True):
        assert torch.equal(mine, fresh)
    new, action, record = step_body(agent, plan, state, episode.first(), 0.0, check=True)
    assert new.step == state.step + 1
    assert action.shape == (2, 3)
    assert record is None
    assert not torch.equal(new.h, state.h)


def test_dense_pays_by_memory_cap_fixed_size_and_cost():
    ex = Execution()
    assert not dense_pays(10**6, 64, None, Execution(dense_max_bytes=1024))  # block too big
    assert dense_pays(2, 100, 10.0, Execution(dense_max_nodes=128))  # a fixed cap wins
    assert not dense_pays(2, 200, 10.0**6, Execution(dense_max_nodes=128))
    assert dense_pays(2, DEFAULT_DENSE_NODES, None, ex)  # unknown edges: up to the default
    assert not dense_pays(2, DEFAULT_DENSE_NODES + 1, None, ex)
    n = 512
    assert dense_pays(1, n, n * n / CSR_EDGE_COST, ex)  # the block costs what the edges do
    assert not dense_pays(1, n, n * n / CSR_EDGE_COST - 1, ex)


def test_readout_norm_with_ports_is_refused():
    with pytest.raises(ValueError, match="readout_norm=True.*port values"):
        Agent(ExpertPolicy(), FullyConnected(), ports=AddressedPorts(64), readout_norm=True)


def test_using_execution_changes_settings_in_the_block_and_restores_them_after_an_error():
    from badger_graph.execution import finite_checks_off, using_execution
    from badger_graph.topologies import FullyConnected

    agent = Agent(ExpertPolicy(8, 8), FullyConnected(), execution=Execution(dense="never"))
    with using_execution(agent, sparse="csr"):
        assert (agent.execution.dense, agent.execution.sparse) == ("never", "csr")
    assert agent.execution == Execution(dense="never")
    seen = []

    def fail_inside():
        with finite_checks_off(agent):
            seen.append(agent.execution.check_finite)
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        fail_inside()
    assert seen == [False]
    assert agent.execution == Execution(dense="never")
    with pytest.raises(TypeError), using_execution(agent, no_such_setting=1):
        pass
