"""Cost of recording and of the networkx analysis (recording off should cost < 2 %,
analysis of a 20-step lifetime of 100 experts < 10 s).

    python benchmarks/analysis_speed.py
"""

from __future__ import annotations

import tempfile

import torch

from badger_graph import Agent, ExpertPolicy, analysis
from badger_graph.execution import Execution
from badger_graph.records import LifetimeCall
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.timing import once, timeit
from badger_graph.topologies import RandomOutDegree


def main() -> None:
    torch.manual_seed(0)
    n, T, B = 100, 20, 8
    game = GuessingGame(3)
    target = torch.rand(B, 3) * 2 - 1

    def run(record: bool, dense: str = "never"):
        agent = Agent(ExpertPolicy(), RandomOutDegree(8, seed=0), execution=Execution(dense=dense))
        with torch.no_grad():
            return agent(
                LifetimeCall(
                    game,
                    GuessingEpisode(target, "scalar"),
                    agent.init_state(n, 3, B),
                    T,
                    record=record,
                )
            )

    off = timeit(lambda: run(False))
    on = timeit(lambda: run(True))
    life = run(True)
    def analyse():
        graphs = analysis.lifetime_graphs(life, agent=0)
        with tempfile.TemporaryDirectory() as d:
            analysis.export(graphs, d)
        return graphs, analysis.metrics(graphs)

    (graphs, m), t_analysis = once(analyse)
    print("| what | seconds |")
    print("|---|---|")
    print(f"| lifetime, {B} agents x {n} experts x {T} steps, recording off | {off:.4f} |")
    print(f"| same, recording on (messages + states of every round) | {on:.4f} |")
    print(
        f"| analysis of agent 0: {len(graphs)} step graphs + metrics + GraphML/JSON export "
        f"| {t_analysis:.3f} |"
    )
    print(
        f"\nrecording on costs {100 * (on / off - 1):.1f} % more than off; "
        f"metrics found {len(m['communities'])} communities, top sender {m['top_sender']}"
    )


if __name__ == "__main__":
    main()
