import networkx as nx
import pytest
import torch
from helpers import tiny_policy

from badger_graph import Agent, analysis
from badger_graph.records import LifetimeCall
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.topologies import Attention, FullyConnected


def _life(topology=None, aggr="mean"):
    torch.manual_seed(0)
    agent = Agent(tiny_policy(aggr=aggr), topology or FullyConnected())
    target = torch.rand(2, 3) * 2 - 1
    state = agent.init_state([4, 3], 3)
    return agent(
        LifetimeCall(GuessingGame(3), GuessingEpisode(target, "scalar"), state, 5, record=True)
    )


def test_step_graph_matches_record():
    life = _life()
    g = analysis.step_graph(life.records[2], agent=1)
    assert set(g.nodes) == {0, 1, 2}
    assert g.number_of_edges() == 6
    rec = life.records[2]
    src, dst = rec.edge_index
    e = ((src == 4) & (dst == 5)).nonzero().item()  # agent 1 starts at node 4
    assert g.edges[0, 1]["message_norm"] == pytest.approx(float(rec.messages[-1][e].norm()))


def test_graphml_and_json_round_trip(tmp_path):
    life = _life(Attention(16, 4), aggr="weighted")
    graphs = analysis.lifetime_graphs(life)
    analysis.export(graphs, tmp_path)
    back = nx.read_graphml(tmp_path / "step_002.graphml", node_type=int)
    g = graphs[2]
    assert set(back.edges) == set(g.edges)
    for u, v in g.edges:
        assert back.edges[u, v]["weight"] == pytest.approx(g.edges[u, v]["weight"])
        assert back.edges[u, v]["message_norm"] == pytest.approx(g.edges[u, v]["message_norm"])
    assert (tmp_path / "aggregate.json").exists()


def test_metrics_on_hand_built_graph():
    g1 = nx.DiGraph(step=0)
    g1.add_nodes_from([0, 1, 2], role="expert", state_norm=1.0)
    g1.add_edge(0, 1, message_norm=3.0, weight=0.5)
    g1.add_edge(0, 2, message_norm=1.0, weight=0.5)
    g1.add_edge(1, 0, message_norm=1.0, weight=1.0)
    g2 = g1.copy()
    g2.graph["step"] = 1
    g2.remove_edge(0, 2)
    m = analysis.metrics([g1, g2])
    agg = analysis.aggregate([g1, g2])
    assert m["out_strength"] == {n: v for n, v in agg.out_degree(weight="message_norm")}
    assert m["out_strength"][0] == pytest.approx(7.0)
    assert m["top_sender"] == 0
    assert m["reciprocity"] == pytest.approx(nx.overall_reciprocity(agg))
    assert m["topology_change_per_step"] == [pytest.approx(1 - 2 / 3)]
    ent = analysis.attention_entropy(g1)
    assert ent[1] == 0.0
    assert ent[0] == 0.0
    assert sorted(sum(m["communities"], [])) == [0, 1, 2]


def test_unrecorded_lifetime_is_rejected():
    torch.manual_seed(0)
    agent = Agent(tiny_policy(), FullyConnected())
    life = agent(
        LifetimeCall(
            GuessingGame(3),
            GuessingEpisode(torch.zeros(1, 3), "scalar"),
            agent.init_state(3, 3, num_agents=1),
            2,
        )
    )
    with pytest.raises(ValueError, match="record=True"):
        analysis.lifetime_graphs(life)


def test_node_attributes_carry_outputs():
    life = _life()
    g = analysis.step_graph(life.records[-1], agent=0)
    assert [g.nodes[n]["output"] for n in range(4)] == [0, 1, 2, -1]
    assert g.nodes[1]["output_value"] == pytest.approx(float(life.actions[-1, 0, 1]))
    assert g.nodes[0]["role"] == "expert"
