"""A plain dense PyTorch prototype of the Fig. 6 setup (the yardstick for the library).

3 experts fully connected, message = mean over the others of tanh(W h_j), GRU memory,
node input = [feedback (expert 0 only), one-hot identity, t/T], one linear read-out per
expert, 20 steps, last-step objective. Written as directly as possible in dense tensors
``[B, n, H]``: the same work the library does on a graph.
"""

from __future__ import annotations

import torch
from torch import nn


class DenseFig6(nn.Module):
    def __init__(self, n: int = 3, hidden: int = 64, msg: int = 64, inp: int = 32) -> None:
        super().__init__()
        self.n = n
        self.lin_in = nn.Linear(1 + n + 1, inp)
        self.lin_send = nn.Linear(hidden, msg)
        self.rnn = nn.GRUCell(inp + msg, hidden)
        self.readout = nn.Linear(hidden, n)  # one linear read-out per expert
        self.hidden = hidden

    def forward(self, target: torch.Tensor, steps: int = 20) -> torch.Tensor:
        B, n = target.size(0), self.n
        h = target.new_zeros(B * n, self.hidden)
        eye = torch.eye(n).expand(B, n, n)
        fb = target.new_zeros(B)
        adj = (1 - torch.eye(n)) / (n - 1)
        errors = []
        for t in range(steps):
            fbn = torch.zeros(B, n)
            fbn[:, 0] = fb
            x = torch.cat([fbn.unsqueeze(-1), eye, torch.full((B, n, 1), t / steps)], -1)
            u = torch.relu(self.lin_in(x.reshape(B * n, -1)))
            m = torch.tanh(self.lin_send(h)).view(B, n, -1)
            agg = torch.einsum("ij,bjm->bim", adj, m).reshape(B * n, -1)
            h = self.rnn(torch.cat([u, agg], -1), h)
            out = (self.readout(h).view(B, n, n) * torch.eye(n)).sum(-1)
            err = 3 * (out - target).pow(2).mean(-1)
            errors.append(err)
            fb = err
        return torch.stack(errors)
