"""White-box analysis of a recorded lifetime with networkx (who talks to whom, how much).

A lifetime run with ``record=True`` keeps, per step and round, every edge's message and
weight and the node states (:class:`~badger_graph.agent.StepRecord`). This module turns
one agent's records into ``networkx.DiGraph`` objects, aggregates them over the lifetime,
computes communication metrics with networkx, and exports GraphML / JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import torch

from badger_graph.agent import Lifetime, StepRecord
from badger_graph.state import Role

ROLE_NAMES = {int(Role.EXPERT): "expert", int(Role.INPUT): "input", int(Role.OUTPUT): "output"}


def step_graph(record: StepRecord, agent: int = 0, round: int = -1) -> nx.DiGraph:
    """The communication graph of one agent at one step (one round, default the last).

    Nodes are the agent's local indices with attributes ``role``, ``state_norm``,
    ``output`` (the output dimension the node owns, -1 for none) and ``output_value`` (that
    output's value after this step, 0 for none); edges carry ``message_norm`` (L2 norm of
    the message sent on it) and ``weight`` (the topology's edge weight, 1 when unweighted).
    """
    batch = record.batch.cpu()
    nodes = (batch == agent).nonzero().squeeze(1)
    if nodes.numel() == 0:
        raise ValueError(f"agent {agent} has no nodes in this record")
    lo = int(nodes[0])
    g = nx.DiGraph(step=record.step, agent=agent)
    states = record.states[round].cpu()
    role = record.role.cpu()
    owns = record.output_index.cpu() if record.output_index is not None else None
    action = record.action.cpu() if record.action is not None else None
    for n in nodes.tolist():
        k = int(owns[n]) if owns is not None else -1
        g.add_node(
            n - lo,
            role=ROLE_NAMES.get(int(role[n]), "other"),
            state_norm=float(states[n].norm()),
            output=k,
            output_value=float(action[agent, k]) if (k >= 0 and action is not None) else 0.0,
        )
    src, dst = record.edge_index.cpu()
    keep = (batch[dst] == agent).nonzero().squeeze(1)
    norms = record.messages[round].cpu().norm(dim=-1)
    weight = record.edge_weight.cpu() if record.edge_weight is not None else None
    for e in keep.tolist():
        g.add_edge(
            int(src[e]) - lo,
            int(dst[e]) - lo,
            message_norm=float(norms[e]),
            weight=float(weight[e]) if weight is not None else 1.0,
        )
    return g


def lifetime_graphs(life: Lifetime, agent: int = 0) -> list[nx.DiGraph]:
    """One :func:`step_graph` per recorded step."""
    if not life.records:
        raise ValueError("the lifetime was not recorded: run it with record=True")
    return [step_graph(r, agent) for r in life.records]


def aggregate(graphs: list[nx.DiGraph]) -> nx.DiGraph:
    """Sum message norms and weights over steps; ``steps`` counts how often an edge existed."""
    agg = nx.DiGraph(steps=len(graphs))
    for g in graphs:
        for n, attrs in g.nodes(data=True):
            if n not in agg:
                agg.add_node(n, role=attrs["role"], state_norm=0.0)
            agg.nodes[n]["state_norm"] += attrs["state_norm"] / len(graphs)
        for u, v, attrs in g.edges(data=True):
            if agg.has_edge(u, v):
                e = agg.edges[u, v]
                e["message_norm"] += attrs["message_norm"]
                e["weight"] += attrs["weight"]
                e["steps"] += 1
            else:
                agg.add_edge(
                    u, v, message_norm=attrs["message_norm"], weight=attrs["weight"], steps=1
                )
    return agg


def attention_entropy(g: nx.DiGraph) -> dict[int, float]:
    """Entropy of each receiver's incoming weights (normalized to sum 1), in nats."""
    out = {}
    for v in g.nodes:
        w = [d["weight"] for _, _, d in g.in_edges(v, data=True)]
        total = sum(w)
        if total <= 0:
            out[v] = 0.0
            continue
        p = [x / total for x in w if x > 0]
        out[v] = -sum(x * math.log(x) for x in p)
    return out


def metrics(graphs: list[nx.DiGraph], roles_k: int = 2) -> dict:
    """Communication metrics of one agent's lifetime, computed with networkx.

    Returns a JSON-ready dict: per-node in/out strength (sum of message norms) of the
    aggregated graph, the node that sends most, reciprocity, greedy-modularity communities,
    mean attention entropy per step, topology change between consecutive steps (Jaccard
    distance of edge sets), and roles: nodes clustered by their per-step out-strength
    profile (k-means, ``roles_k`` clusters).
    """
    agg = aggregate(graphs)
    out_s = dict(agg.out_degree(weight="message_norm"))
    in_s = dict(agg.in_degree(weight="message_norm"))
    und = agg.to_undirected()
    if und.number_of_edges():
        comms = nx.community.greedy_modularity_communities(und, weight="message_norm")
        communities = [sorted(int(n) for n in c) for c in comms]
    else:
        communities = [[int(n)] for n in agg.nodes]
    change = []
    for a, b in zip(graphs[:-1], graphs[1:], strict=True):
        ea, eb = set(a.edges), set(b.edges)
        union = ea | eb
        change.append(1.0 - len(ea & eb) / len(union) if union else 0.0)
    entropy = [sum(h.values()) / max(1, len(h)) for h in (attention_entropy(g) for g in graphs)]
    profile = out_strength_profile(graphs, list(agg.nodes), fill=0.0)
    roles = _kmeans(profile, min(roles_k, len(agg))) if len(agg) else []
    return {
        "num_nodes": agg.number_of_nodes(),
        "num_steps": len(graphs),
        "out_strength": {int(n): float(v) for n, v in out_s.items()},
        "in_strength": {int(n): float(v) for n, v in in_s.items()},
        "top_sender": int(max(out_s, key=out_s.get)) if out_s else None,
        "reciprocity": float(nx.overall_reciprocity(agg)) if agg.number_of_edges() else 0.0,
        "communities": communities,
        "attention_entropy_per_step": entropy,
        "topology_change_per_step": change,
        "roles": {int(n): int(r) for n, r in zip(agg.nodes, roles, strict=True)},
    }


def out_strength_profile(graphs: list[nx.DiGraph], nodes: list, fill: float) -> torch.Tensor:
    """Out-strength (sum of sent message norms) of ``nodes`` × steps; ``fill`` where absent."""
    per_step = [dict(g.out_degree(weight="message_norm")) for g in graphs]
    return torch.tensor([[s.get(n, fill) for s in per_step] for n in nodes])


def _kmeans(x: torch.Tensor, k: int, iters: int = 50) -> list[int]:
    """Deterministic k-means (farthest-point init) on rows of ``x``."""
    if k <= 1 or x.size(0) <= 1:
        return [0] * x.size(0)
    centers = [x[x.norm(dim=1).argmax()]]
    for _ in range(1, k):
        d = torch.cdist(x, torch.stack(centers)).min(1).values
        centers.append(x[d.argmax()])
    c = torch.stack(centers)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        new = torch.stack(
            [x[assign == j].mean(0) if (assign == j).any() else c[j] for j in range(k)]
        )
        if torch.allclose(new, c):
            break
        c = new
    return torch.cdist(x, c).argmin(1).tolist()


def export(graphs: list[nx.DiGraph], out: str | Path) -> list[Path]:
    """Write every step graph and the aggregate as GraphML and node-link JSON."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, g in [
        *((f"step_{g.graph['step']:03d}", g) for g in graphs),
        ("aggregate", aggregate(graphs)),
    ]:
        nx.write_graphml(g, out / f"{name}.graphml")
        (out / f"{name}.json").write_text(json.dumps(nx.node_link_data(g, edges="edges")))
        written += [out / f"{name}.graphml", out / f"{name}.json"]
    return written
