import builtins

import pytest
import torch
from helpers import gen

from badger_graph.tasks import DatasetClassification, MLPClassification, OnlineClassification
from badger_graph.tasks.classification import NAMES, tuned_baselines
from badger_graph.tasks.datasets import DATASETS, load_dataset, split_halves

pytest.importorskip("sklearn")


@pytest.mark.parametrize("name", DATASETS)
def test_halves_split_every_class_and_never_overlap(name):
    X, y = load_dataset(name)
    train, test = split_halves(y)
    assert len(set(train.tolist()) & set(test.tolist())) == 0
    assert sorted(train.tolist() + test.tolist()) == list(range(len(y)))
    for k in torch.unique(y):
        n = int((y == k).sum())
        assert int((y[train] == k).sum()) == -(-n // 2)


@pytest.mark.parametrize("name", DATASETS)
def test_training_streams_never_show_a_meta_test_example(name):
    task = DatasetClassification(name, split="train")
    _, test = split_halves(load_dataset(name)[1])
    shown = set()
    for seed in range(20):
        episode = task.reset(16, gen(seed))
        for _ in range(60):  # longer than some pools: the order repeats
            episode.step(torch.zeros(16, episode.num_outputs))
        shown |= set(torch.cat(episode.shown).tolist())
    assert not shown & set(test.tolist())
    assert shown <= set(task.rows(name).tolist())
    test_task = DatasetClassification(name, split="test")
    episode = test_task.reset(16, gen(0))
    assert set(episode.shown[0].tolist()) <= set(test.tolist())


def test_labels_are_the_streams_own_classes():
    task = DatasetClassification("digits", split="test", num_classes=4)
    episode = task.reset(32, gen(1))
    assert episode.num_outputs == 4
    for _ in range(30):
        result = episode.step(torch.zeros(32, 4))
        assert result.observation.shape == (32, 8)
    labels = torch.stack(episode.labels)  # [T, B]
    assert labels.min() >= 0
    assert labels.max() <= 3
    # every stream's rows come from its 4 classes, mapped one to one onto the outputs
    rows = torch.stack(episode.shown[:-1])  # the rows whose labels were revealed
    digit = episode.y_all[rows]
    for b in range(32):
        pairs = set(zip(digit[:, b].tolist(), labels[:, b].tolist(), strict=True))
        assert len({d for d, _ in pairs}) == len(pairs) <= 4


def test_standardization_uses_only_past_examples():
    task = DatasetClassification("wine", split="train", num_classes=3)
    first = task.reset(8, gen(3))
    second = task.reset(8, gen(3))
    # change every row the streams show from step 5 on: steps 0..4 must not move
    later = torch.cat([first.order[b, 5:] for b in range(8)]).unique()
    earlier = torch.cat([first.order[b, :5] for b in range(8)]).unique()
    later = later[~torch.isin(later, earlier)]
    second.X = second.X.clone()
    second.X[later] += 1000.0
    xs1, xs2 = [first.x], [second.x]
    for _ in range(6):
        xs1.append(first.step(torch.zeros(8, 3)).observation)
        xs2.append(second.step(torch.zeros(8, 3)).observation)
    for t in range(5):
        torch.testing.assert_close(xs1[t], xs2[t])
    assert not torch.allclose(xs1[5], xs2[5])


def test_standardization_is_the_past_mean_and_spread():
    task = DatasetClassification("iris", split="train", num_classes=3, features="permute")
    episode = task.reset(4, gen(5))
    xs = [episode.x]
    for _ in range(6):
        xs.append(episode.step(torch.zeros(4, 3)).observation)
    raw = episode.X[torch.stack(episode.shown)].double()  # [T, B, D]
    t = 5
    mean, std = raw[:t].mean(0), raw[:t].std(0, unbiased=False)
    z = ((raw[t] - mean) / std).clamp(-5, 5).float()
    want = torch.einsum("bd,bdm->bm", z, episode.view)
    torch.testing.assert_close(xs[t], want)
    assert (xs[0] == 0).all()  # nothing seen: no statistics yet


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match=r"\[data\]"):
        DatasetClassification("iris")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"datasets": "mnist"}, "mnist"),
        ({"split": "val"}, "val"),
        ({"features": "pca"}, "pca"),
        ({"num_inputs": 0}, "num_inputs"),
        ({"datasets": "breast_cancer", "num_classes": [3, 5]}, "breast_cancer"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DatasetClassification(**kwargs)


def test_classes_drawn_per_batch_in_range():
    for task in (OnlineClassification([2, 5], 4, [0.5, 1.5]), MLPClassification([2, 5], 4)):
        seen = {task.reset(3, gen(s)).num_outputs for s in range(40)}
        assert seen == {2, 3, 4, 5}
        assert task.num_outputs == 5
    with pytest.raises(ValueError, match="num_classes"):
        MLPClassification(1)


def test_tuned_baselines_learn_iris():
    task = DatasetClassification("iris", split="test", num_classes=3)
    for name in NAMES:
        errors = tuned_baselines({name: 16.0})[name](task.reset(256, gen(2)), 30)
        assert errors[-10:].mean() < 0.8 * errors[:2].mean(), name
