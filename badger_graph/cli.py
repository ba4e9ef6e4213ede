"""The ``badger`` command: Lightning's CLI plus the library's own tools.

``badger fit|validate|test|predict ...`` is :class:`lightning.pytorch.cli.LightningCLI`
around :class:`~badger_graph.BadgerModule` and :class:`~badger_graph.EpisodeData`.
``badger rollout --config CFG [--ckpt_path PATH] --out FILE.png`` draws a Fig. 6-like
rollout of a (trained) agent; ``badger sweep [--ckpt_path PATH] --out DIR`` measures the
Fig. 7 generalization over d and over the number of experts; ``badger analyze`` records the
communication graphs; ``badger matrix`` plays trained models on task families;
``badger tune`` (:mod:`badger_graph.tune`) searches config values with Optuna;
``badger reproduce`` (:mod:`badger_graph.reproduce`) re-trains documented figures.
A ``--config`` may name a shipped config (:mod:`badger_graph.pretrained`).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch.cli import ArgsType, LightningCLI
from lightning.pytorch.utilities import rank_zero_warn

from badger_graph.callbacks import (
    ElapsedTime,
    ExactResume,
    RunCheckpoint,
    RunLock,
    SaveOnInterrupt,
    StopAtSafePoint,
    ThreadTuner,
    check_checkpoint_file,
    check_run_dir,
    newest_checkpoint,
    run_folder,
)
from badger_graph.checkpoint import load_weights, read_checkpoint, safe_types, same_setting
from badger_graph.data import EpisodeData
from badger_graph.errors import CheckpointError, ConfigError, RunFolderError
from badger_graph.module import BadgerModule
from badger_graph.overlays import expand_overlays
from badger_graph.quiet import (
    no_trainer_notices,
    quiet_lightning,  # noqa: F401 (imported from here by users)
)
from badger_graph.resume import (
    exit_143,
    pass_on_sigterm,
    restore_signal_handlers,
    signal_handlers,
)

#: ``--ckpt_path`` values Lightning resolves itself (``last`` is resolved here, by training done)
LIGHTNING_CKPT_NAMES = ("best", "hpc", "registry")
#: trainer settings every experiment starts from (a config or flag overrides any of them)
TRAINER_DEFAULTS = {
    "default_root_dir": "runs/badger",
    "check_val_every_n_epoch": None,  # one endless training epoch: validate by batches
    "val_check_interval": 500,
    "log_every_n_steps": 50,
}


def default_callbacks(
    every: int = 250, threads: int | str = "auto", lock: RunLock | None = None
) -> list:
    """Checkpoints every run has, all in ``<default_root_dir>/checkpoints``.

    ``best.ckpt`` (lowest ``val/loss``: the objective), ``last.ckpt`` (the newest weights: every
    ``every`` batches — after the validation when one is due —, at every validation and at
    the end of training, for resuming after a SIGKILL) and ``interrupted.ckpt`` (Ctrl-C,
    SIGTERM, errors, once a batch has been trained). Resume with ``--ckpt_path last``.
    Plus signals that stop at the next batch boundary (:class:`StopAtSafePoint`), the run
    lock (``lock``: one the caller already holds) and the thread count of training batches
    (:class:`ThreadTuner`), and counters that make a resumed run log the same steps as one
    run (:class:`ExactResume`), and the training's wall-clock seconds as ``train/seconds``
    (:class:`ElapsedTime`).
    """
    return [
        ExactResume(),
        ElapsedTime(),
        ThreadTuner(threads),
        RunCheckpoint(filename="best", monitor="val/loss", mode="min", save_last=True),
        RunCheckpoint(every_n_train_steps=every, save_top_k=0, save_last=True),
        SaveOnInterrupt(),
        StopAtSafePoint(),
        lock if lock is not None else RunLock(),
    ]


class BadgerCLI(LightningCLI):
    """LightningCLI with badger's defaults: one run directory, linked channel sizes.

    ``--trainer.default_root_dir DIR`` is the run directory: checkpoints go to
    ``DIR/checkpoints`` and the CSV logs to ``DIR/logs`` unless a config names a logger.
    """

    #: the run lock ``fit`` holds from before the config is written until it ends
    _lock: RunLock | None = None

    #: model keys that describe the evaluation or the training run, not the trained model
    NOT_COMPARED = (
        "eval_num_experts",
        "eval_growth",
        "init_weights",
        "optimizer",
        "lr_scheduler",
        "execution",
        "curriculum",
        "outer_loop",
        "nonfinite",
    )

    def instantiate_classes(self) -> None:
        """Build model, data and trainer; a setting that cannot build is a :class:`ConfigError`.

        The classes' own checks name the bad value (``num_experts must be an int >= 1, got
        0``); here they become one line without a traceback (exit status 2), before any run
        folder, lock or log is written.
        """
        try:
            super().instantiate_classes()
        except (RunFolderError, CheckpointError, ConfigError):
            raise
        except (ValueError, TypeError) as e:
            root = e  # the check that named the value, under jsonargparse's wrapping
            while isinstance(root.__cause__, ValueError | TypeError):
                root = root.__cause__
            message = str(root).strip().splitlines()
            raise ConfigError(
                f"the config does not build: {message[0] if message else type(e).__name__}"
            ) from e

    def _set_seed(self) -> None:
        """Lightning's seeding; a seed out of range is a one-line :class:`ConfigError`."""
        try:
            super()._set_seed()
        except ValueError as e:
            seed = self._get(self.config, "seed_everything")
            raise ConfigError(
                f"seed_everything must be an int from 0 to {2**32 - 1} (or true / false), "
                f"got {seed!r}"
            ) from e

    def add_arguments_to_parser(self, parser) -> None:
        """The state width is set once, on the policy; ports take it from there."""
        parser.add_argument(
            "--threads",
            type=int | Literal["auto"],
            default="auto",
            help="torch threads for training batches: 'auto' measures 1 vs all cores "
            "every 200 batches and keeps the faster (robust when the machine is busy)",
        )
        parser.add_argument(
            "--checkpoint_every",
            type=int,
            default=250,
            help="write last.ckpt every this many training batches (for SIGKILL)",
        )
        parser.add_argument(
            "--tensorboard",
            type=bool,
            default=False,
            help="also write TensorBoard event files to DIR/tensorboard (beside the CSV logs; "
            "pip install 'badger_graph[tensorboard]'); open them with tensorboard --logdir DIR",
        )
        parser.link_arguments(
            "model.policy.init_args.hidden_channels", "model.ports.init_args.hidden_channels"
        )

    def instantiate_trainer(self, **kwargs):
        """The trainer, with the CSV logger and the checkpoints inside the run directory.

        Every setting is checked before the run lock is taken, and the lock is released
        if anything after it fails: a refused start leaves no ``run.lock`` behind.
        """
        config = self._get(self.config_init, "trainer", default={})
        root = run_folder(config.get("default_root_dir"))
        interval = config.get("val_check_interval")
        if isinstance(interval, int | float) and not isinstance(interval, bool) and interval <= 0:
            raise ConfigError(
                f"trainer.val_check_interval must be > 0 (training batches between "
                f"validations, or a fraction of an epoch), got {interval!r}"
            )
        every = self._get(self.config_init, "checkpoint_every", default=250)
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ConfigError(f"checkpoint_every must be an int >= 1, got {every!r}")
        threads = self._get(self.config_init, "threads", default="auto")
        if threads != "auto" and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be 'auto' or an int >= 1, got {threads!r}")
        for key in ("max_steps", "max_epochs"):
            value = config.get(key)
            if isinstance(value, int) and value < -1:
                raise ConfigError(f"trainer.{key} must be >= -1 (-1: no limit), got {value!r}")
        max_time = config.get("max_time")
        if isinstance(max_time, str) and not re.fullmatch(r"\d+:\d\d:\d\d:\d\d", max_time):
            raise ConfigError(
                f"trainer.max_time must be DD:HH:MM:SS (days first: '00:01:00:00' is an hour), "
                f"got {max_time!r}"
            )
        lock = RunLock()
        callbacks = default_callbacks(every, threads, lock)
        if self.subcommand is not None:  # not for a model built to be used in Python
            check_run_dir(str(root), checkpoints=self.subcommand == "fit")
        if self.subcommand == "fit":  # before the logger and the config file are written
            from lightning.pytorch.utilities.rank_zero import rank_zero_only

            self._lock = lock
            if rank_zero_only.rank == 0:  # the processes data parallel training launches
                lock.acquire(str(root))
        try:
            if self.subcommand == "fit":
                self._resolve_resume(root)
            if config.get("logger") in (None, True):
                from lightning.pytorch.loggers import CSVLogger

                kwargs["logger"] = CSVLogger(str(root), name="logs")
                if self._get(self.config_init, "tensorboard", default=False):
                    kwargs["logger"] = [kwargs["logger"], _tensorboard_logger(root)]
            self.trainer_defaults["callbacks"] = callbacks
            trainer = super().instantiate_trainer(**kwargs)
        except BaseException:
            lock.release()
            raise
        for callback in trainer.callbacks:
            if isinstance(callback, RunCheckpoint | SaveOnInterrupt):
                callback.use_run_dir(trainer.default_root_dir)
        return trainer

    def _resolve_resume(self, root: Path) -> None:
        """One run folder, one history: never resume by accident, never lose a run.

        Without ``--ckpt_path`` a folder holding checkpoints is refused (naming the two
        choices); ``--ckpt_path last`` becomes the checkpoint furthest in training
        (:func:`~badger_graph.callbacks.newest_checkpoint`, which refuses a file that does
        not load), or a new run, said on stderr, when the folder has none. A checkpoint of
        another folder resumes only into a folder without checkpoints (said on stderr):
        resumed into a folder that holds its own run, it would replace that run's
        ``last.ckpt``. A resume warns about the model settings that differ from the
        checkpoint's training run (like ``badger test``).
        """
        section = self.config_init[self.subcommand]
        ckpt_path = section.get("ckpt_path")
        folder = root / "checkpoints"
        found = sorted(p.name for p in folder.glob("*.ckpt")) if folder.is_dir() else []
        if ckpt_path is None:
            if found:
                raise RunFolderError(
                    f"the run folder {str(root)!r} already holds the checkpoints "
                    f"{', '.join(found)} of an earlier run; resume it with --ckpt_path last, "
                    f"or start a new run in another folder with --trainer.default_root_dir"
                )
            return
        if ckpt_path == "last":
            newest = newest_checkpoint(folder)
            if newest is None:
                print(
                    f"--ckpt_path last: no checkpoint to resume in {str(folder)!r}; "
                    f"starting a new run",
                    file=sys.stderr,
                )
            section["ckpt_path"] = None if newest is None else str(newest)
        elif ckpt_path not in LIGHTNING_CKPT_NAMES:
            path = Path(os.path.realpath(os.path.expanduser(str(ckpt_path))))
            check_checkpoint_file(str(ckpt_path))
            if path.parent != Path(os.path.realpath(folder)):
                if found:
                    raise RunFolderError(
                        f"--ckpt_path {str(ckpt_path)!r} is a checkpoint of another run folder, "
                        f"and {str(root)!r} holds the checkpoints {', '.join(found)} of its own "
                        f"run, which resuming there would replace. Resume that run in its own "
                        f"folder (--trainer.default_root_dir {str(path.parent.parent)!r}), or "
                        f"continue it in a new folder"
                    )
                print(
                    f"continuing the run of {str(ckpt_path)!r} in the new run folder "
                    f"{str(root)!r} (the original folder is not written)",
                    file=sys.stderr,
                )
        resumed = section.get("ckpt_path")
        if resumed and Path(resumed).is_file():
            hparams = dict(read_checkpoint(resumed).get("hyper_parameters") or {})
            hparams.pop("_instantiator", None)
            self._warn_differences(self.subcommand, resumed, hparams, resume=True)

    def _run_subcommand(self, subcommand: str) -> None:
        """Run it; a run stopped by SIGTERM / Ctrl-C exits 143 / 130 (not 0 or 1).

        Checkpoints are loaded without running code (``weights_only`` with the library's
        own types allowed); the fit's run lock is released on every way out.
        """
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        handlers = signal_handlers()
        try:
            ckpt_path = self.config_init[subcommand].get("ckpt_path")
            if ckpt_path and ckpt_path not in ("last", *LIGHTNING_CKPT_NAMES):
                check_checkpoint_file(str(ckpt_path))
            if ckpt_path and Path(str(ckpt_path)).is_file():
                # the config's model must fit the checkpoint's weights: say so before running
                load_weights(self.model, ckpt_path)
            if "weights_only" in self.config_init[subcommand]:
                self.config_init[subcommand]["weights_only"] = True
            with torch.serialization.safe_globals(safe_types()):
                super()._run_subcommand(subcommand)
        except SIGTERMException:
            if self._lock is not None:
                self._lock.release()
            restore_signal_handlers(handlers)
            pass_on_sigterm(handlers.get(signal.SIGTERM))
            raise SystemExit(143) from None
        except SystemExit as e:
            stopped = [
                cb.exception for cb in self.trainer.callbacks if isinstance(cb, SaveOnInterrupt)
            ]
            if any(isinstance(x, KeyboardInterrupt) for x in stopped):
                raise SystemExit(130) from e
            raise
        finally:
            if self._lock is not None:
                self._lock.release()
            restore_signal_handlers(handlers)  # Lightning leaves SIGINT ignored after Ctrl-C

    def _parse_ckpt_path(self) -> None:
        """The config and the flags say what runs; a ``--ckpt_path`` only gives weights.

        (LightningCLI would replace the whole model section by the hyperparameters saved in
        the checkpoint, so ``badger test --config A --ckpt_path B`` silently evaluated B's
        model and task and ignored flags such as ``--model.inner_steps``.) A warning names
        the model settings in which the checkpoint's training run differed.
        """
        sub = self.config.get("subcommand")
        if not sub:
            return
        ckpt_path = self.config[sub].get("ckpt_path")
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        if sub == "fit":
            return  # said by _resolve_resume, which knows what `last` resumes
        hparams = dict(read_checkpoint(ckpt_path).get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        self._warn_differences(sub, ckpt_path, hparams)

    def _warn_differences(
        self, sub: str, ckpt_path: str, hparams: dict, resume: bool = False
    ) -> None:
        model = self.config[sub].model
        ignore = set(self.NOT_COMPARED)
        differ = []
        for key, theirs in hparams.items():
            if key in ignore or key not in model:
                continue
            if not same_setting(model[key], theirs):
                differ.append(key)
        if differ and resume:
            rank_zero_warn(
                f"resuming {ckpt_path}, which was trained with other settings of {differ} "
                f"than the config: training goes on with the config's settings"
            )
        elif differ:
            rank_zero_warn(
                f"{ckpt_path} was trained with other settings of {differ} than the config; "
                f"running the config's settings with the checkpoint's weights"
            )


def _tensorboard_logger(root: Path):
    """Lightning's TensorBoard logger in ``root/tensorboard``, or a named error without it."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "--tensorboard needs the tensorboard package: pip install 'badger_graph[tensorboard]'"
        )
    from lightning.pytorch.loggers import TensorBoardLogger

    return TensorBoardLogger(str(root), name="tensorboard")


def _lightning_cli(args: ArgsType = None, run: bool = True) -> BadgerCLI:
    if args is None or isinstance(args, list):
        args = expand_overlays(list(sys.argv[1:] if args is None else args))
    with quiet_lightning():
        return BadgerCLI(
            BadgerModule,
            EpisodeData,
            args=args,
            run=run,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            trainer_defaults=dict(TRAINER_DEFAULTS),
        )


def build_from_config(config: str, ckpt_path: str | None = None) -> BadgerModule:
    """Instantiate the model of a config file and load a checkpoint's weights into it.

    The number of experts comes from the config, not from the checkpoint: weights do not
    depend on it, so a checkpoint loads into a bigger or smaller agent.
    """
    with no_trainer_notices():
        cli = _lightning_cli(["--config", config], run=False)
    model = cli.model
    if ckpt_path == "pretrained":  # the model shipped for this (shipped) config
        from badger_graph.pretrained import for_config

        ckpt_path = str(for_config(config).checkpoint)
    if ckpt_path:
        load_weights(model, ckpt_path)
    model.eval()
    return model


def cli_main(args: ArgsType = None) -> None:
    """Entry point of the ``badger`` console script (``args=None`` reads ``sys.argv``)."""
    argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else None
    from badger_graph.commands import analyze_main, matrix_main, rollout_main, sweep_main

    if argv and argv[0] == "rollout":
        rollout_main(argv[1:])
        return
    if argv and argv[0] == "sweep":
        sweep_main(argv[1:])
        return
    if argv and argv[0] == "matrix":
        matrix_main(argv[1:])
        return
    if argv and argv[0] == "analyze":
        analyze_main(argv[1:])
        return
    if argv and argv[0] == "reproduce":
        from badger_graph.reproduce import reproduce_main

        reproduce_main(argv[1:])
        return
    if argv and argv[0] == "tune":
        from badger_graph.tune import tune_main

        tune_main(argv[1:])
        return
    _lightning_cli(args)


def main() -> None:
    """The ``badger`` console script: :func:`cli_main`, with usage errors as one line.

    A refused run folder or an unusable checkpoint prints ``badger: error: ...`` and exits
    with status 2 instead of a traceback; every other error keeps its traceback.
    """
    from badger_graph.checkpoint import CheckpointWriteError

    # your own tasks, topologies and learners import from where you run badger (as with
    # `python -m`): a config names them by class path, e.g. my_tasks.SignGame
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)
    previous = signal.signal(signal.SIGTERM, exit_143)  # a fit stops at a safe point first
    try:
        cli_main()
    except (RunFolderError, CheckpointError, ConfigError) as e:
        print(f"badger: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except CheckpointWriteError as e:  # disk full, folder gone: the last good file is kept
        print(f"badger: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if added and here in sys.path:
            sys.path.remove(here)


if __name__ == "__main__":  # pragma: no cover
    main()
