import pytest
import torch
from helpers import gen

from badger_graph.records import LifetimeCall
from badger_graph.tasks import GuessingGame, OnlineRegression, TaskMixture


def test_mixture_draws_families_from_the_seed():
    mix = TaskMixture([GuessingGame(3), OnlineRegression(2)])
    drawn = [mix.reset(4, torch.Generator().manual_seed(s)).family for s in range(40)]
    assert set(drawn) == {0, 1}
    again = [mix.reset(4, torch.Generator().manual_seed(s)).family for s in range(40)]
    assert drawn == again
    assert mix.num_outputs == 3


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"tasks": []}, "non-empty"), ({"tasks": [GuessingGame()], "weights": [1, 2]}, "weights")],
)
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        TaskMixture(**kw)


def test_each_family_keeps_its_feedback_convention(agent):
    from badger_graph.tasks import BernoulliBandits

    regression, bandits = OnlineRegression(2), BernoulliBandits(3)  # nodes / experts
    each = TaskMixture([regression, bandits], feedback_to="each")
    same = TaskMixture([regression, bandits], feedback_to="all")
    for seed in range(10):
        episode = each.reset(2, gen(seed))
        family = [regression, bandits][episode.family]
        assert episode.feedback_to == family.feedback_to
        state = agent.begin(episode, 3, gen(0), "cpu")
        receives = agent.constant_features(state, each, episode)["receives_feedback"]
        is_expert = agent.constant_features(state, each, episode)["is_expert"]
        if episode.family == 0:  # the regression's miss reaches every node
            assert receives.all()
        else:
            assert torch.equal(receives, is_expert)
        forced = same.reset(2, gen(seed))
        assert forced.feedback_to == "all"


def test_family_code_prepends_a_one_hot_to_the_observation(agent):
    from badger_graph.tasks import BernoulliBandits

    mix = TaskMixture([GuessingGame(3), OnlineRegression([2, 3])], family_code=True)
    families = set()
    for seed in range(12):
        episode = mix.reset(4, gen(seed))
        families.add(episode.family)
        g = gen(seed)
        torch.multinomial(mix.weights, 1, generator=g)  # the mixture's draw of the family
        plain = mix.tasks[episode.family].reset(4, g)
        first, ref = episode.first(), plain.first()
        code = torch.zeros(4, 2)
        code[:, episode.family] = 1
        assert torch.equal(first.observation[:, :2], code)
        if ref.observation is not None:
            assert torch.equal(first.observation[:, 2:], ref.observation)
            assert torch.equal(episode.input_dims, plain.input_dims + 2)
        else:
            assert episode.num_inputs == 2
        action = torch.randn(4, episode.num_outputs, generator=gen(1))
        assert torch.equal(episode.step(action).error, plain.step(action).error)
    assert families == {0, 1}
    # a family the mixture never trained on plays with a zero code; its baselines as usual
    view = mix.view(BernoulliBandits(3))
    episode = view.reset(4, gen(0))
    assert torch.equal(episode.first().observation, torch.zeros(4, 2))
    plain = BernoulliBandits(3)
    for name, play in view.baselines().items():
        want = plain.baselines()[name](plain.reset(4, gen(0)), 5)
        torch.testing.assert_close(play(view.reset(4, gen(0)), 5), want)
    assert mix.view(GuessingGame(3)).reset(1, gen(0)).family == 0


def test_a_coded_mixture_runs_a_lifetime(agent):
    mix = TaskMixture([GuessingGame(3), OnlineRegression(2)], feedback_to="each", family_code=True)
    agent.rounds = 2
    for seed in (0, 1, 2, 3):
        episode = mix.reset(3, gen(seed))
        state = agent.begin(episode, 3, gen(0), "cpu")
        life = agent(LifetimeCall(mix, episode, state, 4))
        assert life.errors.shape == (4, 3)
        assert life.errors.isfinite().all()


def test_family_curriculum_sets_the_weights_of_each_stage():
    from badger_graph.curriculum import FamilyCurriculum, episode_spec

    curriculum = FamilyCurriculum([[0, [1, 0]], [100, [1, 1]]])
    assert episode_spec([curriculum], 99).family_weights == (1.0, 0.0)
    assert episode_spec([curriculum], 100).family_weights == (1.0, 1.0)
    mix = TaskMixture([GuessingGame(3), OnlineRegression(2)])
    drawn = {mix.reset(2, gen(s), weights=(1.0, 0.0)).family for s in range(30)}
    assert drawn == {0}
    for stages, match in [
        ([[5, [1, 1]]], "step 0"),
        ([[0, [1, 1]], [10, [1]]], "one weight per family"),
        ([[0, [0, 0]]], "positive sum"),
    ]:
        with pytest.raises(ValueError, match=match):
            FamilyCurriculum(stages)


def test_family_curriculum_needs_a_mixture(make_module):
    from badger_graph.curriculum import FamilyCurriculum

    with pytest.raises(ValueError, match="needs a TaskMixture"):
        make_module(curriculum=[FamilyCurriculum([[0, [1, 1]]])])
    mix = TaskMixture([GuessingGame(3), GuessingGame(2)])
    with pytest.raises(ValueError, match="3 weights for a mixture of 2"):
        make_module(task=mix, curriculum=[FamilyCurriculum([[0, [1, 1, 1]]])])
    make_module(task=mix, curriculum=[FamilyCurriculum([[0, [1, 1]]])])


def test_matrix_plays_each_family_as_the_mixture_showed_it(agent):
    from badger_graph.matrix import evaluate
    from badger_graph.runner import EpisodeRunner

    agent.rounds = 2
    mix = TaskMixture([GuessingGame(3, feedback_to="all")], family_code=True)
    runner = EpisodeRunner(agent, mix, 3, 4)
    families = {"guessing": GuessingGame(3, feedback_to="all"), "regression": OnlineRegression(2)}
    rows = evaluate(runner, families, episodes=6, batch=3)
    assert [r["family"] for r in rows] == ["guessing", "regression"]
    assert all(r["agent"] == r["agent"] for r in rows)  # not NaN: both played
    assert rows[0]["best_baseline"] is not None
    assert runner.task is mix


def test_a_coded_episode_forwards_nothing_implicitly_and_family_metrics_read_the_family():
    from badger_graph.records import Lifetime
    from badger_graph.tasks import OnlineClassification
    from badger_graph.tasks.mixture import CodedEpisode

    mix = TaskMixture([GuessingGame(3), OnlineClassification(3, 2)], family_code=True)
    view = mix.view(OnlineClassification(3, 2))
    episode = view.reset(4, torch.Generator().manual_seed(0))
    assert isinstance(episode, CodedEpisode)
    assert not hasattr(episode, "labels")  # the family's own attributes stay on inner
    episode.first()
    for _ in range(6):
        episode.step(torch.zeros(4, 3))
    life = Lifetime(torch.zeros(6, 4, 3), torch.zeros(6, 4), None, episode=episode)
    accuracy = view.metrics()["late_accuracy"](life)  # reads inner.labels
    assert 0.0 <= float(accuracy) <= 1.0
    guess = mix.view(GuessingGame(3)).reset(2, torch.Generator().manual_seed(0))
    assert torch.equal(guess.target, guess.inner.target)
