"""Real datasets as online classification streams: the datasets scikit-learn ships.

Iris, wine, breast cancer and digits are read from scikit-learn's package (nothing is
downloaded); scikit-learn is the optional extra ``data`` (``pip install -e ".[data]"``).
Every dataset's examples are split once, per class, into a meta-train and a meta-test
half (fixed by ``split_seed``), so an agent tested on the meta-test half never sees an
example it was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from badger_graph.tasks.base import Task, check_batch_size
from badger_graph.tasks.classification import (
    LabelStream,
    class_range,
    late_accuracy,
    tuned_baselines,
)

#: the datasets scikit-learn ships inside its package, by name
DATASETS = ("iris", "wine", "breast_cancer", "digits")


def load_dataset(name: str) -> tuple[Tensor, Tensor]:
    """Features ``[N, D]`` (float32) and classes ``[N]`` of a bundled scikit-learn dataset.

    Raises:
        ImportError: naming the ``data`` extra, when scikit-learn is not installed.
        ValueError: naming the dataset, when it is not one of :data:`DATASETS`.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {name!r}")
    try:
        import sklearn.datasets
    except ImportError:
        raise ImportError(
            f"the {name!r} dataset needs scikit-learn, the optional extra 'data': "
            'pip install -e ".[data]" (or pip install scikit-learn)'
        ) from None
    X, y = getattr(sklearn.datasets, f"load_{name}")(return_X_y=True)
    return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)


def split_halves(y: Tensor, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Row indices of the meta-train and meta-test halves, split per class.

    Each class's rows are shuffled by ``seed``; the first ``ceil(n / 2)`` go to
    meta-train, the rest to meta-test. Both index tensors are sorted.
    """
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for k in torch.unique(y).tolist():
        rows = (y == k).nonzero().squeeze(1)
        rows = rows[torch.randperm(len(rows), generator=g)]
        half = math.ceil(len(rows) / 2)
        train.append(rows[:half])
        test.append(rows[half:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


class DatasetStream(LabelStream):
    """B streams of one dataset's examples, each from its own classes, order and view.

    Agent ``b`` is shown rows ``order[b, t % length[b]]`` (a random order of the examples
    of its ``c`` classes in the split, repeated if the lifetime is longer), standardized
    with the mean and standard deviation of the rows it was shown before (a feature with
    no spread yet shows the sign of its change; values clipped to ±5), then mapped by its
    own random ``view`` ``[D, m]``. ``labels_of[b, k]`` is the output of class ``k``
    (``-1``: not in this stream). ``shown`` lists the dataset rows shown, step by step.
    """

    def __init__(
        self,
        X: Tensor,
        y: Tensor,
        order: Tensor,
        length: Tensor,
        labels_of: Tensor,
        view: Tensor,
        num_classes: int,
    ) -> None:
        self.X, self.y_all = X, y
        self.order, self.length = order, length
        self.labels_of, self.view = labels_of, view
        self.num_agents = order.size(0)
        self.num_outputs = num_classes
        self.num_inputs = view.size(2)
        D = X.size(1)
        self._sum = X.new_zeros(self.num_agents, D, dtype=torch.float64)
        self._sumsq = X.new_zeros(self.num_agents, D, dtype=torch.float64)
        self._t = 0
        self.shown: list[Tensor] = []
        self._begin()

    def _draw(self) -> tuple[Tensor, Tensor]:
        B = self.num_agents
        rows = self.order[torch.arange(B), self._t % self.length]
        self.shown.append(rows)
        raw = self.X[rows].double()  # [B, D]
        n = self._t
        if n == 0:
            z = torch.zeros_like(raw)
        else:
            mean = self._sum / n
            std = (self._sumsq / n - mean.pow(2)).clamp(min=0).sqrt()
            dev = raw - mean
            z = torch.where(std > 1e-8, dev / std.clamp(min=1e-8), torch.sign(dev))
        self._sum += raw
        self._sumsq += raw.pow(2)
        self._t += 1
        x = torch.einsum("bd,bdm->bm", z.clamp(-5, 5).float(), self.view)
        return x.to(self.view.device), self.labels_of[torch.arange(B), self.y_all[rows]]


class DatasetClassification(Task):
    r"""Classify examples of real datasets shown one per step, learning the classes online.

    Each batch draws one of ``datasets``; each episode of it draws ``c`` of the dataset's
    classes (assigned to the outputs in a random order), a random order of the split's
    examples of those classes and a fresh random view of the features: a random Gaussian
    projection of the standardized features to ``m`` inputs (``features="project"``), or
    a random permutation of the features cut or zero-padded to ``m``
    (``features="permute"``). Features are standardized with the statistics of the
    episode's own past examples only. Scored, revealed and measured like
    :class:`~badger_graph.tasks.OnlineClassification` (cross-entropy in units of
    :math:`\log c`, ``late_accuracy``).

    Args:
        datasets (str or list of str, optional): names from :data:`DATASETS`.
            (default: all four)
        split (str, optional): ``"train"`` (meta-train half) or ``"test"``.
            (default: ``"train"``)
        num_classes (int, [low, high] or "all", optional): ``c`` per batch, at most the
            dataset's number of classes. (default: ``[2, 5]``)
        num_inputs (int, optional): ``m``. (default: :obj:`8`)
        features (str, optional): ``"project"`` or ``"permute"``. (default: ``"project"``)
        split_seed (int, optional): seed of the meta-train / meta-test split.
            (default: :obj:`0`)
        feedback_to (list of int or "all", optional): experts that get the error.
            (default: ``"all"``)

    Raises:
        ImportError: when scikit-learn (the ``data`` extra) is not installed.
    """

    def __init__(
        self,
        datasets: str | Sequence[str] = DATASETS,
        split: str = "train",
        num_classes: int | Sequence[int] | str = (2, 5),
        num_inputs: int = 8,
        features: str = "project",
        split_seed: int = 0,
        feedback_to: Sequence[int] | str = "all",
    ) -> None:
        super().__init__(feedback_to)
        names = [datasets] if isinstance(datasets, str) else list(datasets)
        if not names:
            raise ValueError("datasets must name at least one dataset")
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if features not in ("project", "permute"):
            raise ValueError(f"features must be 'project' or 'permute', got {features!r}")
        if not isinstance(num_inputs, int) or num_inputs < 1:
            raise ValueError(f"num_inputs (m) must be an int >= 1, got {num_inputs!r}")
        self.datasets, self.split, self.features = names, split, features
        self.num_inputs, self.split_seed = num_inputs, split_seed
        self._data = {}
        for name in names:
            X, y = load_dataset(name)
            train, test = split_halves(y, split_seed)
            self._data[name] = (X, y, train if split == "train" else test)
        classes = {name: int(y.max()) + 1 for name, (_, y, _) in self._data.items()}
        self.all_classes = num_classes == "all"
        if self.all_classes:
            self.class_range = (min(classes.values()), max(classes.values()))
        else:
            self.class_range = class_range(num_classes)
            too_few = {n: k for n, k in classes.items() if k < self.class_range[0]}
            if too_few:
                raise ValueError(
                    f"num_classes={num_classes!r} asks for at least {self.class_range[0]} "
                    f"classes but {too_few} have fewer"
                )
        self.classes = classes
        self.num_outputs = min(self.class_range[1], max(classes.values()))

    def rows(self, name: str) -> Tensor:
        """The dataset rows of this task's split (indices into the whole dataset)."""
        return self._data[name][2]

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> DatasetStream:
        """Draw a dataset, then ``batch_size`` streams of it (classes, order and view)."""
        check_batch_size(batch_size)
        pick = int(torch.randint(len(self.datasets), (1,), generator=generator))
        name = self.datasets[pick]
        X, y, rows = self._data[name]
        k = self.classes[name]
        if num_outputs is not None:
            if not isinstance(num_outputs, int) or not 2 <= num_outputs <= k:
                raise ValueError(
                    f"num_outputs (classes) must be an int in [2, {k}] for {name}, "
                    f"got {num_outputs!r}"
                )
            c = num_outputs
        elif self.all_classes:
            c = k
        else:
            lo, hi = self.class_range[0], min(self.class_range[1], k)
            c = int(torch.randint(lo, hi + 1, (1,), generator=generator))
        D, m = X.size(1), self.num_inputs
        pool_y = y[rows]
        orders, lengths, labels = [], [], []
        for _ in range(batch_size):
            chosen = torch.randperm(k, generator=generator)[:c]
            label_of = torch.full((k,), -1, dtype=torch.long)
            label_of[chosen] = torch.arange(c)
            pool = rows[label_of[pool_y] >= 0]
            orders.append(pool[torch.randperm(len(pool), generator=generator)])
            lengths.append(len(pool))
            labels.append(label_of)
        longest = max(lengths, default=0)
        order = torch.zeros(batch_size, longest, dtype=torch.long)
        for b, o in enumerate(orders):
            order[b, : len(o)] = o
        if self.features == "project":
            view = torch.randn(batch_size, D, m, generator=generator) / math.sqrt(D)
        else:
            perm = torch.argsort(torch.rand(batch_size, D, generator=generator), dim=1)
            view = torch.zeros(batch_size, D, m)
            cols = min(D, m)
            b = torch.arange(batch_size).unsqueeze(1)
            view[b, perm[:, :cols], torch.arange(cols)] = 1.0
        return DatasetStream(
            X,
            y,
            order,
            torch.tensor(lengths, dtype=torch.long),
            torch.stack(labels) if labels else torch.zeros(0, k, dtype=torch.long),
            view.to(device),
            c,
        )

    def chance_level(self, num_outputs: int | None = None) -> float:
        """Uniform scores: 1."""
        return 1.0

    def metrics(self) -> dict:
        """Accuracy of the last 5 answers (the highest score against the label)."""
        return {"late_accuracy": late_accuracy}

    def baselines(self) -> dict:
        """Nearest centroid, 1-NN and online logistic regression (temperature 1).

        ``benchmarks/real_datasets.py`` tunes each one's temperature on meta-train streams
        (:func:`~badger_graph.tasks.classification.tuned_baselines`).
        """
        return tuned_baselines()

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.datasets}, split={self.split!r}, "
            f"m={self.num_inputs}, features={self.features!r})"
        )
