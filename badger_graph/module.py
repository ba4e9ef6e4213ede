r"""Outer loop: Lightning trains the shared policy over many lifetimes."""

from __future__ import annotations

import contextlib
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from badger_graph.agent import Lifetime
from badger_graph.curriculum import Curriculum, EpisodeSpec, episode_spec
from badger_graph.errors import NonFiniteError, check_int
from badger_graph.evaluation import EvaluationSteps
from badger_graph.execution import Execution, finite_checks_off
from badger_graph.growth import GrowthEvent, growth_events
from badger_graph.guards import GuardHooks, TrainingGuard
from badger_graph.learner import build_learner
from badger_graph.loading import CheckpointHooks, from_cli
from badger_graph.outer import Backprop, ObjectiveSchedule, OuterLoop
from badger_graph.policies import RolePolicies
from badger_graph.policy import ExpertPolicy
from badger_graph.ports import AddressedPorts
from badger_graph.runner import EpisodeRunner
from badger_graph.tasks.base import Task
from badger_graph.topologies.base import Topology


class BadgerModule(CheckpointHooks, GuardHooks, EvaluationSteps, pl.LightningModule):
    r"""Meta-train the shared expert policy over many lifetimes.

    Every batch is a seed: it draws ``batch_size`` fresh episodes of ``task``, runs a
    lifetime of ``inner_steps`` steps of ``rounds`` rounds, and the ``outer_loop`` lowers
    the ``objective`` over the lifetime's errors (``"last"``: error of the last step, paper
    Fig. 6; ``"mean"``: mean over all steps, Fig. 9).

    Args:
        policy (ExpertPolicy): the shared expert policy.
        topology (Topology): edge generator, called every inner step.
        task (Task): the task family.
        learner (Learner, optional): another learned learner in place of the BADGER agent
            (e.g. :class:`~badger_graph.learner.RecurrentLearner`, the monolithic RL²
            baseline), trained by the same outer loop on the same episodes; then give no
            ``policy`` and ``topology`` (the agent's other settings do not apply).
        num_experts (int): experts per agent. (default: :obj:`3`)
        inner_steps (int): lifetime length :math:`T`. (default: :obj:`20`)
        rounds (int): communication rounds per step :math:`k`. (default: :obj:`1`)
        objective (str): ``"last"`` or ``"mean"``. (default: ``"last"``)
        warmup_objective (str, optional): objective of the first ``warmup_steps`` batches
            (the mean objective alone tends to stall at "always guess 0").
        warmup_steps (int): length of the warm-up in batches. (default: :obj:`0`)
        warmup_ramp (int): batches after the warm-up over which the loss moves linearly
            from the warm-up objective to ``objective`` (a sudden switch from "last" to
            "mean" can collapse the agent to "always guess 0"). (default: :obj:`0`)
        output_ports (bool): read outputs from port nodes. (default: ``False``)
        identity (str): ``"index"`` or ``"random"`` node identities. (default: ``"index"``)
        readout_norm (bool): layer-normalise the owner's state before the agent's shared
            head (:class:`~badger_graph.Agent`). (default: ``False``)
        ports (AddressedPorts, optional): addressed output ports (Fig. 7).
        detach_feedback (bool): no gradient through feedback values. (default: ``False``)
        execution (Execution, optional): how rounds run; never changes results.
        outer_loop (OuterLoop, optional): ``Backprop`` (default), ``TruncatedBPTT`` or
            ``EvolutionStrategy`` from :mod:`badger_graph.outer`, with its gradient clip.
        curriculum (list of Curriculum, optional): per-batch ranges of ``d`` and of experts,
            fixed port addresses, growth (:mod:`badger_graph.curriculum`).
        eval_num_experts (int, optional): experts per agent in validation and test.
        eval_growth (list of GrowthEvent, optional): grow the agents in validation and
            test lifetimes, e.g. ``[{step: 10, count: 3, mode: clone}]``.
        init_weights (str, optional): checkpoint whose weights start a new training run
            (fine-tuning; any number of experts fits); a resumed ``--ckpt_path`` wins.
        nonfinite (str): on NaN / inf in training, ``"raise"`` a
            :class:`~badger_graph.errors.NonFiniteError` naming the tensor, step and round,
            or ``"skip"`` the batch without changing the weights. (default: ``"raise"``)
        max_skipped (int): with ``nonfinite="skip"``, stop with the error once more than
            this many batches in a row were skipped. (default: :obj:`10`)
        diverged_after (int): stop with a :class:`~badger_graph.errors.DivergenceError`
            when the training error stays above ``diverged_at`` × the task's chance level
            for this many batches in a row (0: never). (default: :obj:`100`)
        diverged_at (float): see ``diverged_after``. (default: :obj:`100.0`)
        optimizer (OptimizerCallable): (default: Adam, lr 1e-3)
        lr_scheduler (LRSchedulerCallable, optional): stepped after every training batch.
    """

    def __init__(
        self,
        policy: ExpertPolicy | RolePolicies | None = None,
        topology: Topology | None = None,
        task: Task | None = None,
        learner: nn.Module | None = None,
        num_experts: int = 3,
        inner_steps: int = 20,
        rounds: int = 1,
        objective: Literal["last", "mean"] = "last",
        warmup_objective: Literal["last", "mean"] | None = None,
        warmup_steps: int = 0,
        warmup_ramp: int = 0,
        output_ports: bool = False,
        identity: Literal["index", "random"] = "index",
        readout_norm: bool = False,
        ports: AddressedPorts | None = None,
        detach_feedback: bool = False,
        execution: Execution | None = None,
        outer_loop: OuterLoop | None = None,
        curriculum: list[Curriculum] | None = None,
        eval_num_experts: int | None = None,
        eval_growth: list[GrowthEvent] | None = None,
        init_weights: str | None = None,
        nonfinite: Literal["raise", "skip"] = "raise",
        max_skipped: int = 10,
        diverged_after: int = 100,
        diverged_at: float = 100.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        # Through LightningCLI the hyperparameters are the config (class paths + init args),
        # so `load_from_checkpoint` rebuilds the injected modules; from Python the injected
        # modules themselves are not hyperparameters (their weights are saved).
        injected = ["policy", "topology", "task", "learner", "ports", "outer_loop", "curriculum"]
        self.save_hyperparameters(ignore=None if from_cli() else injected)
        self.objectives = ObjectiveSchedule(objective, warmup_objective, warmup_steps, warmup_ramp)
        check_int("eval_num_experts", eval_num_experts, 1, optional=True)
        if task is None:
            raise ValueError("task is required (the family of episodes to train on)")
        self.guard = TrainingGuard.for_task(
            task, nonfinite, max_skipped, diverged_after, diverged_at
        )
        learner = build_learner(
            policy,
            topology,
            learner,
            rounds,
            output_ports,
            identity,
            ports,
            execution,
            readout_norm,
        )
        #: the learned learner: a BADGER :class:`Agent` or another :class:`Learner`
        self.agent = learner
        self.runner = EpisodeRunner(self.agent, task, num_experts, inner_steps, detach_feedback)
        self.eval_growth = growth_events(eval_growth, inner_steps)
        self.outer_loop = outer_loop if outer_loop is not None else Backprop()
        self.automatic_optimization = self.outer_loop.automatic_optimization
        self.curriculum = list(curriculum or [])
        for c in self.curriculum:
            c.check(self.runner.task)
        self.outer_loop.check(self)
        #: the current training batch's episode settings, from the curricula
        self.spec = EpisodeSpec()
        #: batches skipped without an optimizer step (with ``global_step``: the batch index)
        self.unstepped_batches = 0
        self.task = task
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler

    # -- lifetimes -----------------------------------------------------------------------
    def lifetime(self, seed: int, batch_size: int, train: bool = False, **kwargs) -> Lifetime:
        """``batch_size`` fresh lifetimes from ``seed``; ``kwargs`` as :meth:`EpisodeRunner.run`.

        In training (``train=True``) the curriculum's settings of the current batch apply
        and, under data parallel training, this process runs its share of the agents.
        """
        if train:
            kwargs.update(spec=self.spec, agents=self.outer_loop.batch_share(self, batch_size))
        return self.runner.run(seed, batch_size, device=self.device, **kwargs)

    def forward(self, seed: int, batch_size: int, train: bool = False) -> Tensor:
        """Errors ``[T, B]`` of ``batch_size`` fresh lifetimes drawn from ``seed``."""
        return self.lifetime(seed, batch_size, train=train).errors

    def current_objective(self, stage: str = "train") -> str | dict[str, float]:
        """The objective in force: in training, the schedule's at this batch (warm-up, ramp)."""
        return (
            self.objectives.at(self.global_step) if stage == "train" else self.objectives.objective
        )

    # -- training ------------------------------------------------------------------------
    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        """This batch's episode settings from the curricula (a function of the step)."""
        self.spec = episode_spec(self.curriculum, self.global_step)

    @property
    def world_size(self) -> int:
        """Data-parallel processes (1 outside a trainer)."""
        return self.trainer.world_size if self._trainer is not None else 1

    def unchecked(self) -> contextlib.AbstractContextManager:
        """Lifetimes run inside skip the agent's finite checks (the ES's vmapped members)."""
        return finite_checks_off(self.agent)

    @property
    def train_batches(self) -> int:
        """Training batches done, skipped ones included: the index of the next batch's seed.

        Counted from the optimizer steps taken (``global_step``) and the batches skipped
        without one, so it advances only with a completed step: a run interrupted at any
        moment of a batch resumes with the same batch.
        """
        return self.global_step + self.unstepped_batches

    def training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        """One batch through the outer loop; its seed comes from the batch counter.

        NaN or inf raises a :class:`NonFiniteError` (``nonfinite="raise"``) or skips the
        batch without touching the weights (``"skip"``, counted in ``train/skipped``).
        """
        from badger_graph.data import train_seed

        seed = train_seed(batch["stream"], self.train_batches)
        try:
            out = self.outer_loop.training_step(self, seed, int(batch["batch_size"]))
        except NonFiniteError as err:  # nothing counted on raise: a resume redoes the batch
            self._skip(err)
            if not self.automatic_optimization:
                self.unstepped_batches += 1  # Lightning steps (a no-op) on None otherwise
            return None
        self.guard.passed()
        return out

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, **kwargs) -> None:
        """The outer loop's clip (a trainer ``gradient_clip_val`` wins when set)."""
        if gradient_clip_val is None:
            gradient_clip_val = self.outer_loop.gradient_clip_val
        self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val, **kwargs)

    # -- evaluation ----------------------------------------------------------------------
    # -- checkpoints and optimizers ------------------------------------------------------
    def configure_optimizers(self):
        """Optimizer (and scheduler) from the injected callables."""
        opt = self.optimizer(self.parameters())
        if self.lr_scheduler is None:
            return opt
        # stepped after every training batch (an epoch never ends: training is endless)
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": self.lr_scheduler(opt), "interval": "step"},
        }
