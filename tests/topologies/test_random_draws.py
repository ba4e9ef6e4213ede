"""The random topologies draw the same edges for the same seed, release after release.

The fingerprints were recorded on CPU before the draws moved onto the state's device; a
change to them changes every random-topology result, so it must be deliberate.
"""

import pytest
import torch

from badger_graph import ExpertGraph
from badger_graph.topologies import ErdosRenyi, RandomInDegree, RandomOutDegree

CASES = {
    "erdos_renyi": (lambda: ErdosRenyi(0.4, seed=3), [4, 3]),
    "out_degree": (lambda: RandomOutDegree(2, seed=3), [4, 3]),
    "out_degree_rejection": (lambda: RandomOutDegree(3, seed=3), [300]),
    "in_degree": (lambda: RandomInDegree(2, seed=3), [4, 3]),
    "in_degree_experts_only": (lambda: RandomInDegree(2, experts_only=True, seed=3), [5, 4]),
}

FIRST = {
    "erdos_renyi": [[1, 2, 3, 0, 3, 5, 4, 4], [0, 0, 0, 1, 1, 4, 5, 6]],
    "out_degree": [
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6],
        [3, 2, 3, 0, 3, 0, 0, 2, 6, 5, 6, 4, 5, 4],
    ],
    "in_degree": [
        [3, 2, 3, 0, 3, 0, 0, 2, 6, 5, 6, 4, 5, 4],
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6],
    ],
    "in_degree_experts_only": [
        [3, 2, 4, 0, 4, 1, 2, 0, 1, 3, 8, 6, 5, 8, 6, 8, 5, 7],
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8],
    ],
}

# (edges, fingerprint) of the first and of the second draw
PRINTS = {
    "erdos_renyi": ((8, 119116), (12, 285331)),
    "out_degree": ((14, 427386), (14, 427377)),
    "out_degree_rejection": ((900, 80926558793), (900, 80926128792)),
    "in_degree": ((14, 386427), (14, 377427)),
    "in_degree_experts_only": ((18, 864924), (18, 873924)),
}


def _fingerprint(edge_index):
    pos = torch.arange(1, edge_index.size(1) + 1)
    return int(((edge_index[0] * 1000 + edge_index[1]) * pos).sum())


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_same_edges_as_recorded(name):
    make, sizes = CASES[name]
    topology = make()
    state = ExpertGraph.create(sizes, 1, 8, 2)
    first, _ = topology(state)
    second, _ = topology(state)
    if name in FIRST:
        assert first.tolist() == FIRST[name]
    for drawn, (edges, fingerprint) in zip((first, second), PRINTS[name], strict=True):
        assert drawn.size(1) == edges
        assert _fingerprint(drawn) == fingerprint
    topology.reseed(3)  # reseeding restarts the sequence
    again, _ = topology(state)
    assert torch.equal(again, first)
