"""Curricula return a typed spec per training batch; nothing stays behind when they stop."""

import pytest

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

    from badger_graph import BadgerModule, ExpertPolicy
    from badger_graph.ports import AddressedPorts
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import FullyConnected

    model = BadgerModule(
        ExpertPolicy(16, 8, 8, 4),
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
