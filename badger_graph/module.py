r"""Outer loop: Lightning trains the shared policy over many lifetimes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from badger_graph.agent import Agent, Lifetime
from badger_graph.errors import NonFiniteError
from badger_graph.es import EvolutionStrategy, population_losses
from badger_graph.growth import GrowthEvent
from badger_graph.policies import RolePolicies
from badger_graph.policy import ExpertPolicy
from badger_graph.ports import AddressedPorts, random_addresses
from badger_graph.state import Role
from badger_graph.tasks.base import Task
from badger_graph.topologies.base import Topology

#: Seeds of training batches are drawn in [0, 2**60); validation and test seeds come from
#: disjoint ranges above it, so training never sees an evaluation episode.
TRAIN_SEED_RANGE = 2**60
VAL_SEED_BASE = 2**60
TEST_SEED_BASE = 2**61

OBJECTIVES = ("last", "mean")


def _from_cli() -> bool:
    try:
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # pragma: no cover - older/newer Lightning
        return False
    return _given_hyperparameters.get() is not None


def _version() -> str:
    from badger_graph import __version__

    return __version__


def check_version(checkpoint: dict, path: str = "checkpoint") -> None:
    """Raise if ``checkpoint`` was written by a newer major version of badger_graph."""
    theirs = checkpoint.get("badger_graph_version")
    if theirs is None:
        return  # written before versions were stamped (0.1.0 alpha): same format
    if int(str(theirs).split(".")[0]) > int(_version().split(".")[0]):
        raise ValueError(
            f"{path} was written by badger_graph {theirs}, newer than this {_version()}; "
            f"upgrade badger_graph to load it"
        )


def load_weights(model: torch.nn.Module, path: str) -> dict:
    """Load the weights of a Lightning checkpoint into ``model``; returns the checkpoint.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a torch checkpoint, has no ``state_dict``, or its
            weights do not fit the model (missing / unexpected keys, other shapes such as a
            different hidden size), with the offending names and shapes.
    """
    from pathlib import Path

    if not Path(path).is_file():
        # shipped configs name shipped checkpoints relative to the repository root
        shipped = Path(__file__).resolve().parent.parent / path
        if Path(path).is_absolute() or not shipped.is_file():
            raise FileNotFoundError(f"checkpoint {path!r} does not exist")
        path = str(shipped)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # pickle / zip errors of a wrong or truncated file
        raise ValueError(f"{path!r} is not a readable torch checkpoint: {e}") from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{path!r} is not a Lightning checkpoint (no 'state_dict')")
    check_version(ckpt, repr(path))
    own = model.state_dict()
    theirs = ckpt["state_dict"]
    missing = sorted(set(own) - set(theirs))
    unexpected = sorted(set(theirs) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(theirs[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in theirs and tuple(theirs[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f"checkpoint {path!r} does not fit this model (different channel sizes, ports "
            f"or policy?): missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatches {shapes[:5]}"
        )
    model.load_state_dict(theirs)
    return ckpt


def objective_loss(errors: Tensor, objective: str) -> Tensor:
    """Outer-loop loss from ``[T, B]`` errors: last-step (Fig. 6) or mean over steps (Fig. 9)."""
    if objective == "last":
        return errors[-1].mean()
    if objective == "mean":
        return errors.mean()
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def train_seed(stream: int, index: int) -> int:
    """Episode seed of training batch ``index`` of the seed stream ``stream``.

    A pure function of its arguments, so a run resumed at batch ``index`` draws exactly the
    episodes the uninterrupted run would have drawn (the dataloader's position does not
    matter). Always below ``TRAIN_SEED_RANGE``, disjoint from validation and test seeds.
    """
    g = torch.Generator().manual_seed(int(stream) * 1_000_003 + int(index))
    return int(torch.randint(0, TRAIN_SEED_RANGE, (1,), generator=g))


class _TrainSeeds(IterableDataset):
    """An endless stream of training batches of the seed stream ``seed``.

    Each item only names the stream; the module turns it into the batch's episode seed with
    :func:`train_seed` and its own batch counter (restored on resume).
    """

    def __init__(self, seed: int, batch_size: int) -> None:
        self.seed = seed
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[dict]:
        while True:
            yield {"stream": self.seed, "batch_size": self.batch_size}


class _FixedSeeds(torch.utils.data.Dataset):
    """A fixed list of evaluation batches (seed, batch size) from a reserved range."""

    def __init__(self, base: int, episodes: int, batch_size: int) -> None:
        self.items = []
        i = 0
        while episodes > 0:
            n = min(batch_size, episodes)
            self.items.append({"seed": base + i, "batch_size": n})
            episodes -= n
            i += 1

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class EpisodeData(pl.LightningDataModule):
    """Episode seeds: the tasks themselves are generated by the model from each seed.

    Args:
        batch_size (int, optional): episodes (agents) per training batch. (default: :obj:`256`)
        val_episodes (int, optional): fixed validation episodes. (default: :obj:`2048`)
        test_episodes (int, optional): fixed test episodes. (default: :obj:`10240`)
        eval_batch_size (int, optional): episodes per evaluation batch. (default: :obj:`1024`)
        seed (int, optional): seed of the training seed stream. (default: :obj:`0`)
    """

    def __init__(
        self,
        batch_size: int = 256,
        val_episodes: int = 2048,
        test_episodes: int = 10240,
        eval_batch_size: int = 1024,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("batch_size", batch_size),
            ("val_episodes", val_episodes),
            ("test_episodes", test_episodes),
            ("eval_batch_size", eval_batch_size),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.save_hyperparameters()

    def _loader(self, dataset) -> DataLoader:
        return DataLoader(dataset, batch_size=None, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        """Endless training seeds."""
        return self._loader(_TrainSeeds(self.hparams.seed, self.hparams.batch_size))

    def val_dataloader(self) -> DataLoader:
        """Fixed validation seeds, never drawn in training."""
        hp = self.hparams
        return self._loader(_FixedSeeds(VAL_SEED_BASE, hp.val_episodes, hp.eval_batch_size))

    def test_dataloader(self) -> DataLoader:
        """Fixed test seeds, never drawn in training nor validation."""
        hp = self.hparams
        return self._loader(_FixedSeeds(TEST_SEED_BASE, hp.test_episodes, hp.eval_batch_size))


class BadgerModule(pl.LightningModule):
    r"""Meta-train the shared expert policy by backprop through unrolled lifetimes.

    Every batch is a seed: it draws ``batch_size`` fresh episodes of ``task``, runs a
    lifetime of ``inner_steps`` steps of ``rounds`` rounds, and minimizes the ``objective``
    over the lifetime's errors (``"last"``: error of the last step, paper Fig. 6;
    ``"mean"``: mean over all steps, Fig. 9).

    Args:
        policy (ExpertPolicy): the shared expert policy.
        topology (Topology): edge generator.
        task (Task): the task family.
        num_experts (int, optional): experts per agent. (default: :obj:`3`)
        inner_steps (int, optional): lifetime length :math:`T`. (default: :obj:`20`)
        rounds (int, optional): communication rounds per step :math:`k`. (default: :obj:`1`)
        objective (str, optional): ``"last"`` or ``"mean"``. (default: ``"last"``)
        warmup_objective (str, optional): objective of the first ``warmup_steps`` training
            batches (e.g. ``"last"`` before ``"mean"``: the mean objective alone tends to stall
            at "always guess 0"). (default: ``None``)
        warmup_steps (int, optional): length of the warm-up in batches. (default: :obj:`0`)
        output_ports (bool, optional): read outputs from port nodes. (default: ``False``)
        identity (str, optional): ``"index"`` or ``"random"``. (default: ``"index"``)
        detach_feedback (bool, optional): no gradient through feedback values.
            (default: ``False``)
        dense (str, optional): ``"auto"`` (dense batched path for small equal-size agents
            when the topology allows it) or ``"never"``; same results. (default: ``"auto"``)
        sparse (str, optional): aggregation of the sparse path: ``"csr"`` (sparse-matrix
            product), ``"edges"`` (PyG gather/scatter) or ``"auto"`` (CSR for large graphs);
            same results. (default: ``"auto"``)
        compile (bool, optional): ``torch.compile(dynamic=True)`` the policy's rounds
            (see :class:`~badger_graph.Agent`). (default: :obj:`False`)
        activation_checkpointing (bool, optional): recompute each inner step's rounds in
            the backward pass instead of keeping their activations (``Agent(checkpoint=)``);
            with ``truncate_bptt`` the memory of a lifetime is one chunk of states plus one
            step's activations. (default: :obj:`False`)
        ports (AddressedPorts, optional): addressed output ports (Fig. 7); implies
            ``output_ports``. (default: ``None``)
        truncate_bptt (int, optional): backprop through chunks of this many inner steps,
            one backward per chunk with the state detached in between, so memory does not
            grow with the lifetime length. Uses manual optimization; the trainer's
            ``gradient_clip_val`` must then be unset and ``gradient_clip_val`` here applies.
            (default: ``None``, full backprop through the lifetime)
        gradient_clip_val (float, optional): gradient-norm clip used with
            ``truncate_bptt``. (default: :obj:`1.0`)
        eval_num_experts (int, optional): experts per agent in validation and test (a
            checkpoint runs with any count). (default: ``num_experts``)
        eval_growth (list of GrowthEvent, optional): grow the agents during validation and
            test lifetimes, e.g. ``[{step: 10, count: 3, mode: clone}]``. (default: none)
        init_weights (str, optional): checkpoint whose weights start a new training run
            (fine-tuning); loaded when ``fit`` starts, before ``--ckpt_path`` resumes (which
            then wins). Any number of experts fits. (default: ``None``, fresh weights)
        nonfinite (str, optional): on NaN or inf in states, messages, feedback, loss or
            gradients during training: ``"raise"`` a :class:`NonFiniteError` naming the
            tensor, step and round (checkpoints already written stay intact), or ``"skip"``
            the batch without changing the weights. (default: ``"raise"``)
        es (EvolutionStrategy, optional): train with evolution strategies instead of
            backprop through the lifetime: the ES gradient estimate of a batched population
            goes to ``optimizer``. Under DDP the population is split across processes and
            the losses are gathered. (default: ``None``, backprop)
        optimizer (OptimizerCallable, optional): (default: Adam, lr 1e-3)
        lr_scheduler (LRSchedulerCallable, optional): (default: ``None``)
    """

    def __init__(
        self,
        policy: ExpertPolicy | RolePolicies,
        topology: Topology,
        task: Task,
        num_experts: int = 3,
        inner_steps: int = 20,
        rounds: int = 1,
        objective: Literal["last", "mean"] = "last",
        warmup_objective: Literal["last", "mean"] | None = None,
        warmup_steps: int = 0,
        output_ports: bool = False,
        identity: Literal["index", "random"] = "index",
        detach_feedback: bool = False,
        dense: Literal["auto", "never"] = "auto",
        sparse: Literal["auto", "csr", "edges"] = "auto",
        compile: bool = False,
        activation_checkpointing: bool = False,
        ports: AddressedPorts | None = None,
        truncate_bptt: int | None = None,
        gradient_clip_val: float | None = 1.0,
        eval_num_experts: int | None = None,
        eval_growth: list[GrowthEvent] | None = None,
        init_weights: str | None = None,
        nonfinite: Literal["raise", "skip"] = "raise",
        es: EvolutionStrategy | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        # Through LightningCLI the hyperparameters are the config (class paths + init args),
        # so `BadgerModule.load_from_checkpoint` rebuilds the injected modules; from Python
        # the injected modules themselves are not hyperparameters (their weights are saved).
        self.save_hyperparameters(
            ignore=None if _from_cli() else ["policy", "topology", "task", "ports"]
        )
        if not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(f"num_experts must be an int >= 1, got {num_experts!r}")
        if not isinstance(inner_steps, int) or inner_steps < 1:
            raise ValueError(f"inner_steps (T) must be an int >= 1, got {inner_steps!r}")
        for name, value in (("objective", objective), ("warmup_objective", warmup_objective)):
            if value not in OBJECTIVES and not (name == "warmup_objective" and value is None):
                raise ValueError(f"{name} must be one of {OBJECTIVES}, got {value!r}")
        if not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an int >= 0, got {warmup_steps!r}")
        task.check_experts(num_experts)
        output_ports = output_ports or ports is not None
        nodes = num_experts + (task.num_outputs if output_ports else 0)
        topology.check(nodes)
        if not output_ports and num_experts < task.num_outputs:
            raise ValueError(
                f"num_experts={num_experts} < d={task.num_outputs}: expert i owns output i; "
                f"add experts or set output_ports=true"
            )
        if getattr(topology, "hidden_channels", policy.hidden_channels) != policy.hidden_channels:
            raise ValueError(
                f"topology hidden_channels={topology.hidden_channels} must equal the policy's "
                f"hidden_channels={policy.hidden_channels}"
            )
        if eval_num_experts is not None and (
            not isinstance(eval_num_experts, int) or eval_num_experts < 1
        ):
            raise ValueError(f"eval_num_experts must be an int >= 1, got {eval_num_experts!r}")
        self.eval_growth = [
            g if isinstance(g, GrowthEvent) else GrowthEvent(**g) for g in (eval_growth or [])
        ]
        for g in self.eval_growth:
            if g.step >= inner_steps:
                raise ValueError(f"growth at step {g.step} but lifetimes have {inner_steps} steps")
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
        if truncate_bptt is not None and (not isinstance(truncate_bptt, int) or truncate_bptt < 1):
            raise ValueError(f"truncate_bptt must be None or an int >= 1, got {truncate_bptt!r}")
        if es is not None and truncate_bptt is not None:
            raise ValueError("es and truncate_bptt exclude each other (ES needs no backprop)")
        self.es = es
        self.automatic_optimization = truncate_bptt is None and es is None
        self.agent = Agent(
            policy,
            topology,
            rounds,
            output_ports,
            identity,
            dense,
            ports=ports,
            sparse=sparse,
            compile=compile,
            checkpoint=activation_checkpointing,
        )
        #: set by curriculum callbacks (badger_graph.curriculum): ranges of d and of the
        #: number of experts sampled per training batch, and fixed-address seeds
        self.curriculum: dict = {}
        self.skipped_batches = 0
        #: training batches done (skipped ones included); sets the next batch's seed
        self.train_batches = 0
        self.task = task
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler

    # -- one lifetime per batch ----------------------------------------------------------
    def begin(
        self,
        seed: int,
        batch_size: int,
        num_experts: int | None = None,
        num_outputs: int | None = None,
        train: bool = False,
    ):
        """Episodes and initial state of ``batch_size`` fresh agents drawn from ``seed``.

        In training (``train=True``) the curriculum callbacks' settings apply: ranges of
        ``d`` and of the number of experts sampled per batch (from the batch's seed) and
        fixed port addresses.
        """
        g = torch.Generator().manual_seed(int(seed))
        cur = self.curriculum if train else {}
        if num_outputs is None and "num_outputs" in cur:
            lo, hi = cur["num_outputs"]
            if cur.get("per_agent"):
                num_outputs = torch.randint(lo, hi + 1, (batch_size,), generator=g).tolist()
            else:
                num_outputs = int(torch.randint(lo, hi + 1, (1,), generator=g))
        if num_experts is None and "num_experts" in cur:
            lo, hi = cur["num_experts"]
            num_experts = int(torch.randint(lo, hi + 1, (1,), generator=g))
        num_experts = num_experts or self.hparams.num_experts
        reseed = getattr(self.agent.topology, "reseed", None)
        if reseed is not None:
            reseed(int(seed))
        episode = self.task.reset(
            batch_size, generator=g, num_outputs=num_outputs, device=self.device
        )
        addresses = None
        ports = self.agent.ports
        if ports is not None and cur.get("address_seed") is not None:
            fixed = torch.Generator().manual_seed(int(cur["address_seed"]))
            addresses = random_addresses(
                1, episode.num_outputs, ports.address_channels, fixed
            ).expand(batch_size, -1, -1)
        dims = getattr(episode, "dims", None)
        state = self.agent.init_state(
            num_experts,
            episode.num_outputs if dims is None else dims.tolist(),
            num_agents=batch_size,
            generator=g,
            device=self.device,
            addresses=addresses,
        )
        if train and self._world() > 1 and self.es is None:
            # data parallel: every process draws the whole (global) batch from the same
            # seed and keeps its own contiguous share, so W processes see exactly the
            # episodes one process would
            start, stop = self._share(batch_size)
            episode, state = episode.agent_range(start, stop), state.agent_range(start, stop)
        return episode, state

    def _world(self) -> int:
        return self._trainer.world_size if self._trainer is not None else 1

    def _share(self, n: int) -> tuple[int, int]:
        world = self._world()
        if n % world:
            raise ValueError(
                f"{n} must be divisible by the number of processes ({world}) to split it"
            )
        rank = self.global_rank
        return rank * n // world, (rank + 1) * n // world

    def training_growth(self, seed: int, state) -> list[GrowthEvent]:
        """Growth events of a training batch from the ``GrowthCurriculum`` (if any)."""
        curriculum = self.curriculum.get("growth")
        if curriculum is None:
            return []
        g = torch.Generator().manual_seed(int(seed) + 2)
        experts = int((state.role[state.batch == 0] == int(Role.EXPERT)).sum())
        return curriculum.draw(g, experts, self.hparams.inner_steps)

    def forward(self, seed: int, batch_size: int, train: bool = False) -> Tensor:
        """Errors ``[T, B]`` of ``batch_size`` fresh lifetimes drawn from ``seed``."""
        return self.lifetime(seed, batch_size, train=train).errors

    def lifetime(
        self,
        seed: int,
        batch_size: int,
        num_experts: int | None = None,
        record: bool = False,
        num_outputs: int | None = None,
        train: bool = False,
        growth: list[GrowthEvent] | None = None,
    ) -> Lifetime:
        """Run ``batch_size`` fresh episodes drawn from ``seed``."""
        episode, state = self.begin(seed, batch_size, num_experts, num_outputs, train)
        if train:
            growth = [*(growth or ()), *self.training_growth(seed, state)]
        return self.agent(
            self.task,
            episode,
            state,
            self.hparams.inner_steps,
            record=record,
            detach_feedback=self.hparams.detach_feedback,
            growth=growth or (),
            generator=torch.Generator().manual_seed(int(seed) + 1),
        )

    def current_objective(self, stage: str = "train") -> str:
        """The objective in force: the warm-up one during the first training batches."""
        hp = self.hparams
        if stage == "train" and hp.warmup_objective and self.global_step < hp.warmup_steps:
            return hp.warmup_objective
        return hp.objective

    def batch_seed(self, batch: dict, batch_idx: int) -> int:
        """Episode seed of a batch: fixed for evaluation, from the batch counter in training.

        The counter (:attr:`train_batches`) counts the training batches done, skipped ones
        included; it is saved in checkpoints, so a resumed run draws the same episodes.
        """
        if "seed" in batch:
            return int(batch["seed"])
        return train_seed(batch["stream"], self.train_batches)

    def _common_step(self, batch: dict, stage: str, batch_idx: int = 0) -> Tensor:
        B = int(batch["batch_size"])
        if stage == "train":
            life = self.lifetime(self.batch_seed(batch, batch_idx), B, train=True)
        else:
            life = self.lifetime(
                int(batch["seed"]), B, self.hparams.eval_num_experts, growth=self.eval_growth
            )
        loss = objective_loss(life.errors, self.current_objective(stage))
        if not torch.isfinite(loss):
            raise NonFiniteError("loss", loss, step=self.global_step, where=f"{stage} batch")
        self._log_errors(life.errors, loss, stage, B)
        return loss

    def _log_errors(self, errors: Tensor, loss: Tensor, stage: str, B: int) -> None:
        on_step = stage == "train"
        log = {
            f"{stage}/loss": loss,
            f"{stage}/final_error": errors[-1].mean(),
            f"{stage}/mean_error": errors.mean(),
        }
        if stage != "train":
            log[f"{stage}/chance"] = torch.tensor(self.task.chance_level(), device=self.device)
            t5 = min(5, errors.size(0)) - 1
            log[f"{stage}/step5_error"] = errors[t5].mean()
            log[f"{stage}/step6_error"] = errors[min(6, errors.size(0)) - 1].mean()
        sync = self._world() > 1  # data parallel: log the mean over all processes
        self.log_dict(log, on_step=on_step, on_epoch=not on_step, batch_size=B, sync_dist=sync)
        self.log(
            f"{stage}_err",
            log[f"{stage}/final_error"],
            on_step=on_step,
            on_epoch=not on_step,
            prog_bar=True,
            logger=False,
            batch_size=B,
            sync_dist=sync,
        )

    def backward_lifetime(self, seed: int, batch_size: int, backward=None) -> Tensor:
        """Truncated BPTT through one batch of lifetimes; returns the ``[T, B]`` errors.

        The lifetime runs in chunks of ``truncate_bptt`` steps; each chunk's share of the
        objective is backpropagated (``backward``, default ``Tensor.backward``) before the
        next chunk starts from the detached state. Chunks with no share of the objective
        (all but the last for ``objective="last"``) run without a graph.
        """
        backward = backward or Tensor.backward
        T = self.hparams.inner_steps
        K = self.hparams.truncate_bptt or T
        objective = self.current_objective("train")
        episode, state = self.begin(seed, batch_size, train=True)
        if self.training_growth(seed, state):
            raise ValueError("GrowthCurriculum does not support truncate_bptt yet")
        result, errors = None, []
        for start in range(0, T, K):
            n = min(K, T - start)
            needs_grad = objective == "mean" or start + n == T
            with torch.set_grad_enabled(needs_grad and torch.is_grad_enabled()):
                life = self.agent(
                    self.task,
                    episode,
                    state,
                    n,
                    detach_feedback=self.hparams.detach_feedback,
                    total_steps=T,
                    result=result,
                )
            if needs_grad:
                chunk = (
                    life.errors.sum(0).mean() / T
                    if objective == "mean"
                    else (life.errors[-1].mean())
                )
                backward(chunk)
            state = life.state.replace(h=life.state.h.detach())
            result = life.last_result.detach()
            errors.append(life.errors.detach())
        return torch.cat(errors)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        """Backprop through one batch of lifetimes (truncated if ``truncate_bptt``).

        NaN or inf in states, messages, feedback, loss or gradients raises a
        :class:`NonFiniteError` naming where it appeared (``nonfinite="raise"``) or skips the
        batch without touching the weights (``"skip"``, counted in ``train/skipped``).
        """
        try:
            out = self._training_step(batch, batch_idx)
        except NonFiniteError as err:
            if self.hparams.nonfinite == "raise":
                raise  # the counter stays: a resumed run redoes this batch
            self._skip(err)
            out = None
        self.train_batches += 1
        return out

    def _skip(self, err: Exception) -> None:
        self.skipped_batches += 1
        rank_zero_warn(f"skipping training batch {self.train_batches}: {err}")
        self.log("train/skipped", float(self.skipped_batches), on_step=True, batch_size=1)

    def on_before_optimizer_step(self, optimizer) -> None:
        """Non-finite gradients: raise, or drop them all so the optimizer skips the step."""
        bad = [
            n
            for n, p in self.named_parameters()
            if p.grad is not None and not p.grad.isfinite().all()
        ]
        if not bad:
            return
        err = NonFiniteError(
            f"gradients of {bad[:3]}", None, step=self.global_step, where="training batch"
        )
        if self.hparams.nonfinite == "raise":
            raise err
        self._skip(err)
        for p in self.parameters():
            p.grad = None  # torch optimizers skip parameters without gradient

    def _es_step(self, batch: dict, batch_idx: int) -> None:
        """One ES update: the population (this process' share) in one vmapped call."""
        es: EvolutionStrategy = self.es
        opt = self.optimizers()
        opt.zero_grad()
        B = int(batch["batch_size"])
        seed = self.batch_seed(batch, batch_idx)
        params = list(self.parameters())
        theta = torch.nn.utils.parameters_to_vector(params).detach()
        D, step = theta.numel(), self.train_batches
        lo, hi = self._share(es.population)
        objective = self.current_objective("train")

        def loss_fn(p: dict) -> Tensor:
            errors = torch.func.functional_call(self, p, (seed, B), {"train": True})
            return objective_loss(errors, objective)

        check, self.agent.check_finite = self.agent.check_finite, False  # no data-dependent
        try:  # control flow under vmap; non-finite members are ranked worst instead
            with torch.no_grad():
                local = population_losses(
                    self, theta, es.noise(step, D, range(lo, hi)), es.sigma, loss_fn
                )
        finally:
            self.agent.check_finite = check
        losses = self.all_gather(local).reshape(-1) if self._world() > 1 else local
        if not bool(torch.isfinite(losses).any()):
            raise NonFiniteError(
                "loss of every population member", losses, step=step, where="training batch"
            )
        grad = es.gradient(losses, es.noise(step, D)).to(theta)
        offset = 0
        for p in params:
            p.grad = grad[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        self.clip_gradients(opt, gradient_clip_val=self.hparams.gradient_clip_val)
        opt.step()
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()
        finite = losses[torch.isfinite(losses)]
        self.log_dict(
            {"train/loss": finite.mean(), "train/best_member": finite.min()},
            on_step=True,
            batch_size=B,
        )
        self.log(
            "train_err", finite.mean(), on_step=True, prog_bar=True, logger=False, batch_size=B
        )

    def _training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        if self.automatic_optimization:
            return self._common_step(batch, "train", batch_idx)
        if self.es is not None:
            return self._es_step(batch, batch_idx)
        opt = self.optimizers()
        opt.zero_grad()
        B = int(batch["batch_size"])
        errors = self.backward_lifetime(self.batch_seed(batch, batch_idx), B, self.manual_backward)
        self.clip_gradients(opt, gradient_clip_val=self.hparams.gradient_clip_val)
        opt.step()
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()
        self._log_errors(errors, objective_loss(errors, self.current_objective()), "train", B)
        return None

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Errors on fixed validation episodes."""
        self._common_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        """Errors on fixed test episodes."""
        self._common_step(batch, "test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Stamp the checkpoint with the library version and the batch counters."""
        checkpoint["badger_graph_version"] = _version()
        checkpoint["badger_graph_skipped_batches"] = self.skipped_batches
        checkpoint["badger_graph_train_batches"] = self.train_batches

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse checkpoints of an incompatible (newer major) library version."""
        check_version(checkpoint)
        self.skipped_batches = int(checkpoint.get("badger_graph_skipped_batches", 0))
        self.train_batches = int(
            checkpoint.get("badger_graph_train_batches", checkpoint.get("global_step", 0))
        )

    def setup(self, stage: str) -> None:
        """Load ``init_weights`` before fitting (a resumed checkpoint is restored after)."""
        if stage == "fit" and self.hparams.get("init_weights"):
            load_weights(self, self.hparams.init_weights)

    def configure_optimizers(self):
        """Optimizer (and scheduler) from the injected callables."""
        opt = self.optimizer(self.parameters())
        if self.lr_scheduler is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": self.lr_scheduler(opt)}
