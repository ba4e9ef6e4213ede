"""Curricula return a typed spec per training batch; nothing stays behind when they stop."""

import pytest
from helpers import tiny_policy

from badger_graph.curriculum import (
    AddressCurriculum,
    EpisodeSpec,
    GrowthCurriculum,
    RangeCurriculum,
    episode_spec,
)


def test_range_stops_applying_after_its_end_step():
    cur = [RangeCurriculum(num_outputs=[3, 6], num_experts=[5, 9], end_step=10, per_agent=True)]
    assert episode_spec(cur, 9) == EpisodeSpec(
        num_outputs=(3, 6), num_experts=(5, 9), per_agent=True
    )
    assert episode_spec(cur, 10) == EpisodeSpec()  # cleared: the model's defaults again
    late = [RangeCurriculum(num_outputs=[2, 2], start_step=5)]
    assert episode_spec(late, 4) == EpisodeSpec()
    assert episode_spec(late, 5).num_outputs == (2, 2)


def test_later_curricula_win_and_combine():
    cur = [
        RangeCurriculum(num_outputs=[3, 3], end_step=100),
        RangeCurriculum(num_outputs=[3, 6], num_experts=[5, 40], start_step=50),
        AddressCurriculum(fixed_steps=60, redraw_every=10),
        GrowthCurriculum(start_step=70),
    ]
    s = episode_spec(cur, 55)
    assert (s.num_outputs, s.num_experts, s.growth) == ((3, 6), (5, 40), None)
    assert s.address_seed == AddressCurriculum(fixed_steps=60, redraw_every=10).address_seed(55)
    s = episode_spec(cur, 80)
    assert s.address_seed is None
    assert s.growth is cur[3]
    assert episode_spec(cur, 80) == s  # a pure function of the step


def test_module_takes_the_spec_of_each_batch():
    import torch

    from badger_graph import BadgerModule
    from badger_graph.ports import AddressedPorts
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import FullyConnected

    model = BadgerModule(
        tiny_policy(),
        FullyConnected(),
        GuessingGame(3, feedback_to="all"),
        num_experts=4,
        inner_steps=3,
        ports=AddressedPorts(16, 4),
        curriculum=[RangeCurriculum(num_outputs=[5, 5], end_step=1)],
    )
    model.on_train_batch_start({}, 0)  # global step 0 (no trainer)
    assert model.spec.num_outputs == (5, 5)
    with torch.no_grad():
        assert model.lifetime(1, 2, train=True).actions.shape[-1] == 5
        assert model.lifetime(1, 2).actions.shape[-1] == 3  # evaluation: no curriculum


def test_bad_ranges():
    with pytest.raises(ValueError, match="start_step"):
        RangeCurriculum(num_outputs=[1, 2], start_step=3, end_step=2)
    with pytest.raises(ValueError, match="experts_scale must be 'uniform' or 'log', got 'exp'"):
        RangeCurriculum(num_experts=[2, 8], experts_scale="exp")


def test_log_uniform_expert_counts_cover_the_range_by_factors():
    from collections import Counter

    from badger_graph import Agent, EpisodeRunner, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import FullyConnected

    spec = episode_spec([RangeCurriculum(num_experts=[4, 63], experts_scale="log")], 0)
    assert spec.experts_scale == "log"
    assert episode_spec([RangeCurriculum(num_experts=[4, 63])], 0).experts_scale == "uniform"
    runner = EpisodeRunner(Agent(ExpertPolicy(8, 4, 4, 2), FullyConnected()), GuessingGame(1), 4, 1)
    counts = Counter(runner.begin(seed, 1, spec=spec)[1].num_nodes for seed in range(800))
    assert min(counts) >= 4
    assert max(counts) <= 63
    # log-uniform: about a quarter of the draws per factor of two (4-7, 8-15, 16-31, 32-63)
    shares = [sum(v for k, v in counts.items() if lo <= k < 2 * lo) / 800 for lo in (4, 8, 16, 32)]
    assert all(0.18 < s < 0.32 for s in shares), shares
    uniform = episode_spec([RangeCurriculum(num_experts=[4, 63])], 0)
    small = sum(runner.begin(s, 1, spec=uniform)[1].num_nodes < 8 for s in range(800)) / 800
    assert small < 0.12  # uniform: 4 of 60 counts


def test_a_rounds_range_plays_the_batch_with_those_rounds_on_the_same_weights():
    import torch

    from badger_graph import Agent
    from badger_graph.runner import EpisodeRunner
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import FullyConnected

    cur = [RangeCurriculum(rounds=[1, 1], end_step=5)]
    assert episode_spec(cur, 4).rounds == (1, 1)
    assert episode_spec(cur, 5) == EpisodeSpec()
    torch.manual_seed(0)
    two = Agent(tiny_policy(), FullyConnected(), rounds=2)
    one = Agent(tiny_policy(), FullyConnected(), rounds=1)
    one.load_state_dict(two.state_dict())
    task = GuessingGame(3)
    runner = EpisodeRunner(two, task, num_experts=3, inner_steps=4)
    curriculum = runner.run(7, 5, spec=episode_spec(cur, 0))
    plain = EpisodeRunner(one, task, num_experts=3, inner_steps=4).run(7, 5)
    torch.testing.assert_close(curriculum.errors, plain.errors, rtol=0, atol=0)
    assert not torch.equal(runner.run(7, 5).errors, plain.errors)  # 2 rounds differ
    assert two.rounds == 2  # the agent itself is untouched
    curriculum.errors.mean().backward()  # the copy's gradients are the agent's
    assert all(p.grad is not None for p in two.parameters())
    # a range draws per batch from the batch's seed: the same seed, the same rounds
    spread = EpisodeSpec(rounds=(1, 3))
    picks = {runner.learner_for(s, spread).rounds for s in range(40)}
    assert picks == {1, 2, 3}
    assert runner.learner_for(3, spread).rounds == runner.learner_for(3, spread).rounds


def test_a_rounds_curriculum_needs_an_agent_and_a_valid_range():
    from badger_graph.learner import RecurrentLearner
    from badger_graph.runner import EpisodeRunner
    from badger_graph.tasks import GuessingGame

    with pytest.raises(ValueError, match=r"rounds must satisfy 1 <= low <= high, got \[0, 2\]"):
        RangeCurriculum(rounds=[0, 2])
    rnn = RecurrentLearner(max_outputs=3, hidden_channels=8)
    runner = EpisodeRunner(rnn, GuessingGame(3), num_experts=3, inner_steps=4)
    with pytest.raises(ValueError, match="needs a BADGER Agent, not RecurrentLearner"):
        runner.run(0, 2, spec=EpisodeSpec(rounds=(1, 1)))
