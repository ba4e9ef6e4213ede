"""Topology generators: each returns ``(edge_index, edge_weight)`` for the current state.

Installed as ``badger_graph.topologies``; the source lives in the repository's top-level
``topologies/`` folder (next to ``badger_graph/``), one module per family.
"""

from badger_graph.topologies.attention import Attention, TarMAC
from badger_graph.topologies.base import Topology, all_pairs
from badger_graph.topologies.hardwired import (
    Chain,
    CommNet,
    EdgeList,
    FromNetworkx,
    FullyConnected,
    Layered,
    Ring,
    Star,
)
from badger_graph.topologies.random import ErdosRenyi, RandomInDegree, RandomOutDegree

__all__ = [
    "Attention",
    "Chain",
    "CommNet",
    "EdgeList",
    "ErdosRenyi",
    "FromNetworkx",
    "FullyConnected",
    "Layered",
    "RandomInDegree",
    "RandomOutDegree",
    "Ring",
    "Star",
    "TarMAC",
    "Topology",
    "all_pairs",
]
