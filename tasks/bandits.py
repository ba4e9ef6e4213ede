"""Bernoulli bandits: k arms (one output each), reward feedback, regret as the error."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from badger_graph.tasks.base import (
    BaselineUnavailable,
    Episode,
    StepResult,
    Task,
    check_batch_size,
    outcome_generator,
    play,
)
from badger_graph.tasks.regression import input_range


class BanditEpisode(Episode):
    """B bandits with hidden success probabilities ``p`` ``[B, k]``."""

    def __init__(
        self, p: Tensor, sharpness: float, outcomes: torch.Generator, dims: Tensor | None
    ) -> None:
        self.p = p  # 0 for padded arms beyond an agent's k
        self.sharpness = sharpness
        self.num_agents, self.num_outputs = p.shape
        self.dims = dims
        cols = torch.arange(self.num_outputs, device=p.device)
        k = dims if dims is not None else torch.full((self.num_agents,), self.num_outputs)
        self.valid = cols < k.to(p.device).unsqueeze(1)
        self.best = p.max(1).values
        self._gen = outcomes

    def policy(self, action: Tensor) -> Tensor:
        """Arm probabilities ``softmax(sharpness · action)`` over each agent's arms."""
        logits = (self.sharpness * action).masked_fill(~self.valid, float("-inf"))
        return torch.softmax(logits, dim=1)

    def first(self) -> StepResult:
        """No arm pulled yet."""
        zeros = self.p.new_zeros(self.num_agents)
        return StepResult(error=zeros, feedback=zeros, signal=torch.zeros_like(self.p))

    def step(self, action: Tensor) -> StepResult:
        """Pull an arm drawn from the action's policy; the error is the expected regret."""
        if action.shape != self.p.shape:
            raise ValueError(
                f"action must have shape {list(self.p.shape)} (agents × arms), "
                f"got {list(action.shape)}"
            )
        pi = self.policy(action)
        regret = self.best - (pi * self.p).sum(1)  # differentiable expected regret
        # the same random numbers for every strategy: one uniform for the pick, one per arm
        u = torch.rand(self.num_agents, generator=self._gen).to(pi.device)
        v = torch.rand(self.num_agents, self.num_outputs, generator=self._gen).to(pi.device)
        cdf = pi.detach().cumsum(1)
        arm = (cdf < u.unsqueeze(1)).sum(1).clamp(max=self.num_outputs - 1)
        arm = torch.minimum(arm, self.valid.sum(1) - 1)
        reward = (
            v.gather(1, arm.unsqueeze(1)).squeeze(1) < self.p.gather(1, arm.unsqueeze(1)).squeeze(1)
        ).to(pi.dtype)
        # the pulled arm's output node sees +1 (reward) or -1 (none); the others 0
        signal = torch.zeros_like(self.p).scatter(
            1, arm.unsqueeze(1), (2 * reward - 1).unsqueeze(1)
        )
        self.arm, self.reward = arm, reward
        return StepResult(error=regret, feedback=reward, signal=signal)


def cumulative_regret(life) -> Tensor:
    """Sum of the expected per-step regrets over the lifetime, mean over agents."""
    return life.errors.sum(0).mean()


class BernoulliBandits(Task):
    r"""k-armed Bernoulli bandits: every arm is one output of the agent.

    Each episode draws arm success probabilities uniform in :math:`[0, 1]`. An action
    :math:`a \in \mathbb R^k` is played as the policy :math:`\pi = \mathrm{softmax}(\beta a)`:
    an arm is drawn from it and pays 1 with its probability. The scalar feedback is the
    reward; the pulled arm's output node sees +1 / -1 (paid / not), the others 0. The error
    of a step is the expected regret :math:`\max_i p_i - \pi^\top p` (differentiable);
    its sum over the lifetime is the cumulative regret (metric ``cumulative_regret``).

    Args:
        num_arms (int or list of two ints, optional): ``k``, or ``[low, high]`` drawn per
            agent (outputs beyond an agent's ``k`` are ignored). (default: :obj:`3`)
        sharpness (float, optional): :math:`\beta`. (default: :obj:`5.0`)
        feedback_to (list of int or "all", optional): experts that get the reward.
            (default: ``"all"``)
    """

    def __init__(
        self,
        num_arms: int | Sequence[int] = 3,
        sharpness: float = 5.0,
        feedback_to: Sequence[int] | str = "all",
    ) -> None:
        super().__init__(feedback_to)
        self.num_arms = input_range("num_arms (k)", num_arms, low=2)
        self.num_outputs = self.num_arms[1]
        if sharpness <= 0:
            raise ValueError(f"sharpness must be > 0, got {sharpness}")
        self.sharpness = float(sharpness)

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> BanditEpisode:
        """Draw arm probabilities (and ``k`` per agent when it is a range)."""
        check_batch_size(batch_size)
        lo, hi = self.num_arms if num_outputs is None else (num_outputs, num_outputs)
        if lo < 2:
            raise ValueError(f"a bandit needs k >= 2 arms, got {lo}")
        dims = torch.randint(lo, hi + 1, (batch_size,), generator=generator) if lo != hi else None
        p = torch.rand(batch_size, hi, generator=generator)
        if dims is not None:
            p = p * (torch.arange(hi) < dims.unsqueeze(1))
        outcomes = outcome_generator(generator)
        return BanditEpisode(
            p.to(device), self.sharpness, outcomes, None if dims is None else dims.to(device)
        )

    def chance_level(self, num_outputs: int | None = None) -> float:
        """Expected regret of pulling uniformly at random: E[max p] - 1/2 = k/(k+1) - 1/2."""
        k = self.num_arms[1] if num_outputs is None else num_outputs
        return k / (k + 1) - 0.5

    def metrics(self) -> dict:
        """Cumulative regret over the lifetime."""
        return {"cumulative_regret": cumulative_regret}

    def baselines(self) -> dict:
        """UCB1, Thompson, Gittins and, where computable, the exact Bayes-optimal policy.

        Thompson sampling with Beta(1, 1) priors; :func:`gittins`; :func:`bayes_optimal`
        by dynamic programming (left out where it is too large). All play the same episodes
        as the agent.
        """
        return {
            "ucb1": ucb1,
            "thompson": thompson,
            "gittins": gittins,
            "bayes_optimal": bayes_optimal,
        }

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={list(self.num_arms)}, sharpness={self.sharpness})"


def _counting(choose):
    """A strategy that counts pulls and rewards per arm and picks one arm per step."""
    state: dict = {}

    def act(result: StepResult, t: int) -> Tensor:
        B, k = result.signal.shape
        if t == 0:
            state["n"] = result.signal.new_zeros(B, k)
            state["s"] = result.signal.new_zeros(B, k)
        else:
            pulled = result.signal != 0
            state["n"] += pulled.to(state["n"].dtype)
            state["s"] += (result.signal > 0).to(state["s"].dtype)
        arm = choose(state["n"], state["s"], t)
        # a one-hot action this large makes the softmax policy pull that arm surely
        return torch.nn.functional.one_hot(arm, k).to(result.signal.dtype) * 100.0

    return act


def _ucb_choice(valid):
    def choose(n: Tensor, s: Tensor, t: int) -> Tensor:
        bonus = torch.sqrt(2 * math.log(max(t, 1)) / n.clamp(min=1))
        score = torch.where(n > 0, s / n.clamp(min=1) + bonus, torch.full_like(n, float("inf")))
        score = score.masked_fill(~valid, float("-inf"))
        return score.argmax(1)

    return choose


def ucb1(episode: BanditEpisode, steps: int) -> Tensor:
    """UCB1 (Auer et al., 2002): every arm once, then the highest upper confidence bound."""
    return play(episode, steps, _counting(_ucb_choice(episode.valid)))


def thompson(episode: BanditEpisode, steps: int, seed: int = 2**31 - 1) -> Tensor:
    """Thompson sampling with Beta(1, 1) priors (its own seeded sampler)."""
    gen = torch.Generator().manual_seed(seed)

    def choose(n: Tensor, s: Tensor, t: int) -> Tensor:
        a = torch._standard_gamma((s + 1).cpu(), generator=gen)
        b = torch._standard_gamma((n - s + 1).cpu(), generator=gen)
        draw = (a / (a + b)).to(n.device).masked_fill(~episode.valid, float("-inf"))
        return draw.argmax(1)

    return play(episode, steps, _counting(choose))


class _BetaBernoulliDP:
    """Exact Bayes-optimal values of Bernoulli bandits with uniform priors, by recursion.

    A state is the multiset of per-arm (successes, failures) counts (arms are exchangeable
    under the prior, so sorted tuples are canonical) and the steps left; its value is the
    largest expected reward still to come. Memoized per instance (one per ``play``).
    """

    def __init__(self) -> None:
        self.values: dict = {}

    def value(self, counts: tuple, left: int) -> float:
        """The largest expected reward of the ``left`` steps to come from ``counts``."""
        if left == 0:
            return 0.0
        key = (counts, left)
        v = self.values.get(key)
        if v is None:
            if len(self.values) >= MAX_DP_STATES:
                raise BaselineUnavailable(
                    f"the exact Bayes-optimal bandit policy for k={len(counts)} needs more than "
                    f"{MAX_DP_STATES:,} states at this horizon; use gittins"
                )
            arms = [i for i in range(len(counts)) if counts[i] not in counts[:i]]
            v = max(self.q(counts, i, left) for i in arms)
            self.values[key] = v
        return v

    def q(self, counts: tuple, i: int, left: int) -> float:
        """Expected reward to come when pulling arm ``i`` now and playing optimally after."""
        s, f = counts[i]
        p = (s + 1) / (s + f + 2)
        rest = counts[:i] + counts[i + 1 :]
        win = tuple(sorted((*rest, (s + 1, f))))
        lose = tuple(sorted((*rest, (s, f + 1))))
        return p * (1.0 + self.value(win, left - 1)) + (1 - p) * self.value(lose, left - 1)


#: the largest number of states the exact dynamic programme may visit
MAX_DP_STATES = 2_000_000


def bayes_optimal(episode: BanditEpisode, steps: int) -> Tensor:
    """The Bayes-optimal policy for the task's prior (arm means uniform in [0, 1]).

    Exact dynamic programming over Beta posteriors (it maximizes the expected reward of the
    remaining ``steps``, so it minimizes the expected regret): the best any learner can do
    on average. Feasible for small ``k`` and ``T`` (k = 5, T = 20: 0.25 M states).

    Raises:
        BaselineUnavailable: when the programme would visit more than
            :data:`MAX_DP_STATES` states (k = 5, T = 100 does; k = 10, T = 10 does not).
    """
    ks = episode.valid.sum(1).tolist()
    dp = _BetaBernoulliDP()

    def choose(n: Tensor, s: Tensor, t: int) -> Tensor:
        arms = []
        for b, k in enumerate(ks):
            counts = [(int(s[b, i]), int(n[b, i] - s[b, i])) for i in range(k)]
            canon = tuple(sorted(counts))
            q = [dp.q(canon, canon.index(c), steps - t) for c in counts]
            arms.append(max(range(k), key=q.__getitem__))
        return torch.tensor(arms, device=n.device)

    return play(episode, steps, _counting(choose))


def gittins_indices(discount: float, depth: int, grid: int = 2001) -> Tensor:
    """Gittins indices ``G[a, b]`` of a Bernoulli arm with a Beta(a, b) posterior.

    Calibration (the retirement formulation): for each retirement reward ``lam`` on a grid
    over [0, 1] the optimal-stopping values are computed backwards over ``a + b`` (truncated
    at ``depth`` pulls, where the value is ``max(lam, mean) / (1 - discount)``), and the
    index of a state is the ``lam`` at which continuing and retiring are worth the same
    (interpolated between grid points). ``G`` is ``[depth + 2, depth + 2]``, valid for
    ``a, b >= 1`` and ``a + b <= depth + 1``.
    """
    lam = torch.linspace(0, 1, grid, dtype=torch.float64).unsqueeze(1)  # [L, 1]
    retire = lam / (1 - discount)
    G = torch.full((depth + 2, depth + 2), float("nan"), dtype=torch.float64)
    n = depth + 1  # a + b at the truncation
    a = torch.arange(1, n, dtype=torch.float64)  # a = 1..n-1, b = n - a
    V = torch.maximum(retire, (a / n) / (1 - discount))  # [L, n - 1]
    for n in range(depth, 1, -1):
        a = torch.arange(1, n, dtype=torch.float64)
        p = a / n
        # from (a, b): success -> (a + 1, b) (index a in the next row), failure -> (a, b + 1)
        cont = p * (1 + discount * V[:, 1:]) + (1 - p) * discount * V[:, :-1]
        gap = cont - retire  # decreasing in lam; the index is where it crosses 0
        above = (gap > 0).sum(0).clamp(1, grid - 1)  # first grid point with gap <= 0
        i = above.unsqueeze(0)
        g0, g1 = gap.gather(0, i - 1)[0], gap.gather(0, i)[0]
        l0, l1 = lam[i - 1, 0][0], lam[i, 0][0]
        G[a.long(), (n - a).long()] = l0 + (l1 - l0) * g0 / (g0 - g1).clamp(min=1e-12)
        V = torch.maximum(retire, cont)
    return G.float()


def gittins(episode: BanditEpisode, steps: int) -> Tensor:
    """The Gittins-index policy with discount ``1 - 1/T``: pull the arm of highest index.

    Optimal for the discounted infinite-horizon problem; for a finite horizon ``T`` a
    standard strong approximation (the discount sets the effective horizon).
    """
    G = gittins_indices(1 - 1 / max(steps, 2), depth=steps + 60)

    def choose(n: Tensor, s: Tensor, t: int) -> Tensor:
        a = (s + 1).long().cpu()
        b = (n - s + 1).long().cpu()
        score = G[a, b].to(n.device).masked_fill(~episode.valid, float("-inf"))
        return score.argmax(1)

    return play(episode, steps, _counting(choose))
