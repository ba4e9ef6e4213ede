"""Save a running agent mid-lifetime and continue it later, identically.

A :class:`Snapshot` holds everything a lifetime needs to go on besides the weights: the
node states, ports, identities and step counter (:class:`~badger_graph.ExpertGraph`), the
episodes (hidden targets), the task's last answer (the feedback the next step writes), the
lifetime length that sets the time feature, and the state of the topology's random
generator. Weights live in the model checkpoint; a snapshot fits any agent with the same
channel sizes, and :func:`badger_graph.growth.grow` can resize it after loading.

Example::

    life = agent(LifetimeCall(task, episode, state, steps=4, total_steps=10))
    save_snapshot("agent.pt", Snapshot.of(agent, life, total_steps=10))
    ...
    snap = load_snapshot("agent.pt")
    snap.restore(agent)  # the topology's generator continues where it stopped
    rest = agent(snap.call(task, steps=6))
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor

from badger_graph.records import LifetimeCall
from badger_graph.state import ExpertGraph
from badger_graph.tasks.base import Episode, StepResult

FORMAT = "badger_graph.snapshot"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A running batch of agents between two inner steps.

    Attributes:
        state (ExpertGraph): node states, ports, identities, step counter.
        episode (Episode): the episodes the agents live in.
        result (StepResult): the task's answer to the last action (written next step).
        total_steps (int, optional): lifetime length used for the time feature.
        topology_rng (torch.Tensor, optional): ``get_state()`` of the topology's generator.
    """

    state: ExpertGraph
    episode: Episode
    result: StepResult | None
    total_steps: int | None = None
    topology_rng: Tensor | None = None

    @classmethod
    def of(cls, agent, lifetime, total_steps: int | None = None) -> Snapshot:
        """Snapshot of ``agent`` at the end of ``lifetime`` (a :class:`~badger_graph.Lifetime`)."""
        gen = agent.topology.generator
        return cls(
            state=lifetime.state.to(torch.device("cpu")),
            episode=lifetime.episode,
            result=None if lifetime.last_result is None else lifetime.last_result.detach(),
            total_steps=total_steps,
            topology_rng=gen.get_state() if isinstance(gen, torch.Generator) else None,
        )

    def call(self, task, steps: int, **options) -> LifetimeCall:
        """The call that plays the ``steps`` steps after the snapshot.

        ``options``: more :class:`~badger_graph.records.LifetimeCall` fields, e.g.
        ``record=True``.
        """
        return LifetimeCall(
            task, self.episode, self.state, steps,
            result=self.result, total_steps=self.total_steps, **options,
        )  # fmt: skip

    def restore(self, agent) -> None:
        """Put the topology's random generator back where the snapshot was taken."""
        gen = agent.topology.generator
        if self.topology_rng is not None:
            if not isinstance(gen, torch.Generator):
                raise ValueError(
                    f"the snapshot holds a random topology's generator state but "
                    f"{agent.topology!r} has no generator"
                )
            agent.topology.set_generator_state(self.topology_rng)
        hidden = agent.policy.hidden_channels
        if self.state.h.size(1) != hidden:
            raise ValueError(
                f"snapshot states have {self.state.h.size(1)} channels but the agent's "
                f"policy has hidden_channels={hidden}"
            )


def save_snapshot(path: str | Path, snapshot: Snapshot) -> None:
    """Write ``snapshot`` to ``path`` (a torch file with a format tag and version), atomically."""
    from badger_graph import __version__
    from badger_graph.checkpoint import atomic_save

    atomic_save(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "badger_graph_version": __version__,
            "snapshot": snapshot,
        },
        path,
    )


def _episode_classes() -> list[type]:
    """Every :class:`Episode` class defined so far (the library's and imported user tasks')."""
    found, todo = [], list(Episode.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a snapshot written by :func:`save_snapshot`, without running code from the file.

    Loaded with ``weights_only=True``: besides tensors and plain values the file may only
    hold the snapshot's own classes and episodes of :class:`Episode` classes already
    imported (a user task's episodes: import the task before loading).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a snapshot file, one of a newer format, or one holding other
            Python objects (named; not unpickled).
    """
    from badger_graph.checkpoint import safe_load

    if not Path(path).is_file():
        raise FileNotFoundError(f"snapshot {str(path)!r} does not exist")
    with torch.serialization.safe_globals([Snapshot, ExpertGraph, StepResult, *_episode_classes()]):
        data = safe_load(path, "snapshot file")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a badger_graph snapshot")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has snapshot format {data['format_version']}, newer than this "
            f"badger_graph ({FORMAT_VERSION}); upgrade badger_graph"
        )
    return data["snapshot"]
