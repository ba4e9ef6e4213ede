"""Evolution strategies for the outer loop: no backprop through the inner loop.

``BadgerModule(outer_loop=EvolutionStrategy(...))`` replaces the gradient of the unrolled
lifetime by the ES estimate (Salimans et al., 2017): a population of perturbed copies of the shared
weights ``θ + σ ε_i`` runs the same episodes, each member's loss is turned into a
centered rank, and ``g = Σ_i u_i ε_i / (P σ)`` is fed as the gradient to the configured
torch optimizer. The population is evaluated **batched**: the members' weights are a
leading dimension and one ``torch.func.vmap`` over ``functional_call`` runs the whole
population as one computation (no Python call per member).

Noise comes from seeded generators only: member ``i`` of training batch ``t`` is
recreated exactly by :meth:`EvolutionStrategy.member_noise` from ``(seed, t, i)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from badger_graph.errors import NonFiniteError
from badger_graph.outer.base import OuterLoop, TrainingContext, objective_loss
from badger_graph.seeds import derive


class EvolutionStrategy(OuterLoop):
    """Antithetic Gaussian ES with rank-based fitness shaping.

    The estimate goes to the configured torch optimizer as the gradient. Under data
    parallel training the population (not the batch) is split across processes and the
    members' losses are gathered.

    Args:
        population (int, optional): members per training batch (P >= 2; even with
            ``antithetic``). (default: :obj:`32`)
        sigma (float, optional): noise scale σ > 0. (default: :obj:`0.02`)
        antithetic (bool, optional): members come in pairs ``+ε, −ε``. (default: ``True``)
        rank_shaping (bool, optional): centered ranks in ``[-0.5, 0.5]`` instead of the
            raw (standardized) losses. (default: ``True``)
        seed (int, optional): seed of the noise. (default: :obj:`0`)
        gradient_clip_val (float, optional): clip of the estimate's norm. (default: :obj:`1.0`)
    """

    automatic_optimization = False
    splits_batch = False

    def __init__(
        self,
        population: int = 32,
        sigma: float = 0.02,
        antithetic: bool = True,
        rank_shaping: bool = True,
        seed: int = 0,
        gradient_clip_val: float | None = 1.0,
    ) -> None:
        super().__init__(gradient_clip_val)
        if not isinstance(population, int) or population < 2:
            raise ValueError(f"population must be an int >= 2, got {population!r}")
        if antithetic and population % 2:
            raise ValueError(f"population must be even with antithetic sampling, got {population}")
        if not float(sigma) > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.population = population
        self.sigma = float(sigma)
        self.antithetic = antithetic
        self.rank_shaping = rank_shaping
        self.seed = int(seed)

    # -- one training batch --------------------------------------------------------------
    def training_step(self, module: TrainingContext, seed: int, batch_size: int) -> None:
        """One ES update: this process' share of the population in one vmapped call."""
        opt = module.optimizers()
        opt.zero_grad()
        params = list(module.parameters())
        theta = torch.nn.utils.parameters_to_vector(params).detach()
        D, step = theta.numel(), module.train_batches
        lo, hi = self.share(module, self.population)
        objective = module.current_objective()

        def loss_fn(p: dict) -> Tensor:
            errors = torch.func.functional_call(module, p, (seed, batch_size), {"train": True})
            return objective_loss(errors, objective)

        # no data-dependent control flow under vmap: non-finite members are ranked worst
        with module.unchecked(), torch.no_grad():
            local = population_losses(
                module, theta, self.noise(step, D, range(lo, hi)), self.sigma, loss_fn
            )
        world = module.world_size
        losses = module.all_gather(local).reshape(-1) if world > 1 else local
        if not bool(torch.isfinite(losses).any()):
            raise NonFiniteError(
                "loss of every population member", losses, step=step, where="training batch"
            )
        grad = self.gradient(losses, self.noise(step, D)).to(theta)
        offset = 0
        for p in params:
            p.grad = grad[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        finite = losses[torch.isfinite(losses)]
        # before the update, as with backprop: a diverging batch is counted once and named
        # by its own index, and its update is not applied
        module.check_divergence(float(finite.mean()))
        self.apply_gradients(module)
        module.log_dict(
            {"train/loss": finite.mean(), "train/best_member": finite.min()},
            on_step=True,
            batch_size=batch_size,
        )
        module.log(
            "train_err",
            finite.mean(),
            on_step=True,
            prog_bar=True,
            logger=False,
            batch_size=batch_size,
        )

    # -- noise ---------------------------------------------------------------------------
    def _draw(self, step: int, index: int, dim: int) -> Tensor:
        g = torch.Generator().manual_seed(derive(self.seed, step, index, "es", bits=32))
        return torch.randn(dim, generator=g)

    def member_noise(self, step: int, member: int, dim: int) -> Tensor:
        """Noise ``ε`` of one member, recreated from ``(seed, step, member)`` alone."""
        if not 0 <= member < self.population:
            raise ValueError(f"member must be in [0, {self.population}), got {member}")
        if self.antithetic:
            sign = 1.0 if member % 2 == 0 else -1.0
            return sign * self._draw(step, member // 2, dim)
        return self._draw(step, member, dim)

    def noise(self, step: int, dim: int, members: range | None = None) -> Tensor:
        """``[len(members), dim]`` noise of the given members (default: all)."""
        members = range(self.population) if members is None else members
        return torch.stack([self.member_noise(step, m, dim) for m in members])

    # -- gradient ------------------------------------------------------------------------
    def shape(self, losses: Tensor) -> Tensor:
        """Utilities ``u`` from the members' losses (lower loss, lower utility).

        Non-finite losses count as the worst: a member that produced NaN gets the highest
        rank instead of poisoning the estimate.
        """
        losses = torch.where(torch.isfinite(losses), losses, torch.full_like(losses, float("inf")))
        if self.rank_shaping:
            ranks = torch.empty_like(losses)
            ranks[losses.argsort(stable=True)] = torch.arange(
                losses.numel(), dtype=losses.dtype, device=losses.device
            )
            return ranks / (losses.numel() - 1) - 0.5
        finite = losses[torch.isfinite(losses)]
        if finite.numel() < 2:
            raise FloatingPointError("fewer than 2 population members have a finite loss")
        losses = losses.clamp(max=float(finite.max()))
        return (losses - losses.mean()) / losses.std().clamp(min=1e-12)

    def gradient(self, losses: Tensor, noise: Tensor) -> Tensor:
        """ES estimate of ``∇θ E[loss]`` from the members' ``losses`` ``[P]`` and ``noise``."""
        u = self.shape(losses).to(noise.dtype)
        return (u.unsqueeze(1) * noise).sum(0) / (losses.numel() * self.sigma)


def population_losses(
    module: torch.nn.Module, theta: Tensor, noise: Tensor, sigma: float, loss_fn
) -> Tensor:
    """Losses ``[P]`` of the members ``θ + σ ε_p``, evaluated as ONE vmapped computation.

    Args:
        module (torch.nn.Module): the model; its parameters give the names and shapes.
        theta (torch.Tensor): flat parameter vector ``[D]``.
        noise (torch.Tensor): ``[P, D]``.
        sigma (float): noise scale.
        loss_fn (callable): ``loss_fn(params: dict) -> scalar`` using
            ``torch.func.functional_call`` with ``params``.
    """
    names, shapes, numels = [], [], []
    for n, p in module.named_parameters():
        names.append(n)
        shapes.append(p.shape)
        numels.append(p.numel())
    members = theta.unsqueeze(0) + sigma * noise.to(theta)  # [P, D]
    chunks = members.split(numels, dim=1)
    params = {
        n: c.reshape(members.size(0), *s) for n, c, s in zip(names, chunks, shapes, strict=True)
    }
    return torch.func.vmap(loss_fn, randomness="same")(params)
