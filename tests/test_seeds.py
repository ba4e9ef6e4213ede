"""Episode seeds are distinct as random streams, not only as integers."""

import pytest
import torch

from badger_graph.data import EpisodeData, train_seed
from badger_graph.seeds import derive, episode_seed, generator
from badger_graph.tasks import GuessingGame


def _episodes(seed: int) -> tuple:
    """The targets a batch of 4 guessing-game episodes draws from ``seed``."""
    target = GuessingGame(3).reset(4, generator(seed)).target
    return tuple(target.flatten().tolist())


def test_seeds_that_differ_only_in_high_bits_give_different_streams():
    # torch keeps 32 bits of a seed: the bug this module exists for
    raw = lambda s: torch.rand(3, generator=torch.Generator().manual_seed(s))  # noqa: E731
    assert torch.equal(raw(2**60), raw(2**61))
    assert _episodes(2**60) != _episodes(2**61) != _episodes(2**62)
    assert _episodes(0) != _episodes(2**32)


def test_train_val_test_and_command_defaults_never_share_an_episode():
    data = EpisodeData(batch_size=8, val_episodes=4096, test_episodes=10240, eval_batch_size=64)
    seeds = {
        "train": [train_seed(0, i) for i in range(2000)] + [train_seed(1, i) for i in range(200)],
        "val": [b["seed"] for b in data.val_dataloader()],
        "test": [b["seed"] for b in data.test_dataloader()],
        "rollout": [episode_seed("rollout", 0)],
        "analyze": [episode_seed("analyze", 0), episode_seed("analyze", 1)],
        "sweep": [derive(derive(episode_seed("sweep", 0), d, 20), 0) for d in range(1, 21)],
    }
    drawn = {}
    for purpose, values in seeds.items():
        for s in values:
            drawn.setdefault(_episodes(s), []).append(purpose)
    clashes = {k: v for k, v in drawn.items() if len(v) > 1}
    assert not clashes, clashes
    assert len(drawn) == sum(len(v) for v in seeds.values())


def test_streams_of_one_seed_are_independent_and_reproducible():
    g = [torch.rand(4, generator=generator(7, s)) for s in ("episodes", "identities", "growth")]
    assert not torch.equal(g[0], g[1])
    assert not torch.equal(g[1], g[2])
    assert torch.equal(torch.rand(4, generator=generator(7, "growth")), g[2])
    with pytest.raises(ValueError, match="stream"):
        generator(7, "weather")
    with pytest.raises(ValueError, match="purpose"):
        episode_seed("holiday", 0)
    with pytest.raises(ValueError, match="seeds must be >= 0, got -1"):
        generator(-1)
