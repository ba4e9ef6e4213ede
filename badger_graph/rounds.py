"""One inner step's ``k`` rounds of the shared policy over the step's edges.

:func:`run_rounds` is what :meth:`Agent.step <badger_graph.Agent.step>` runs between
building the step's edges and reading the outputs: the (compiled) round ``k`` times with
the same weights, the record of every round's messages and states, the finite checks that
name the first bad round, and activation checkpointing.
"""

from __future__ import annotations

import torch
import torch.utils.checkpoint
from torch import Tensor

from badger_graph.adjacency import Adjacency
from badger_graph.errors import all_finite, check_finite
from badger_graph.policy import MessagePolicy


def run_rounds(
    agent,
    h: Tensor,
    u: Tensor,
    adj: Adjacency,
    edge_weight: Tensor | None,
    step: int,
    record: bool,
    check: bool,
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """``agent.rounds`` rounds from states ``h``: the new states, messages and states.

    The messages and states of every round are kept (detached) with ``record``; with
    ``check`` a round that makes a state non-finite raises, naming the messages if they
    were the first bad tensor, else the states, with the step and the round.
    ``execution.checkpoint`` recomputes the rounds in the backward pass (not when recording).

    Raises:
        NonFiniteError: (``check``) NaN or inf in the messages or the new states.
    """
    policy, ex = agent.policy, agent.execution
    round_fn = agent.runtime.round(policy, adj, ex)
    messages: list[Tensor] = []
    states: list[Tensor] = []

    def rounds(h: Tensor, u: Tensor, edge_weight: Tensor | None) -> Tensor:
        for r in range(agent.rounds):
            prev = h
            if record:
                h, msg = round_fn(h, u, adj, edge_weight, return_messages=True)
                messages.append(msg.detach())
                states.append(h.detach())
            else:
                h = round_fn(h, u, adj, edge_weight)
            if check and not all_finite(h):
                # name the first non-finite tensor of the round: messages, else states
                sent = policy.send(prev) if isinstance(policy, MessagePolicy) else prev
                check_finite("messages", sent, step, r)
                check_finite("expert states", h, step, r)
        return h

    if ex.checkpoint and not record and torch.is_grad_enabled():
        h = torch.utils.checkpoint.checkpoint(rounds, h, u, edge_weight, use_reentrant=False)
    else:
        h = rounds(h, u, edge_weight)
    return h, messages, states
