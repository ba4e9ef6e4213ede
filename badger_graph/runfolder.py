"""The run folder: where a run lives, who holds it, which checkpoint it resumes.

:func:`run_folder` checks a ``default_root_dir``; :func:`check_run_dir` refuses a folder
that cannot be written or already holds another run's checkpoints;
:class:`RunLock` keeps a second process out of a folder in training;
:func:`newest_checkpoint` is what ``--ckpt_path last`` resumes, and
:func:`check_checkpoint_file` names a file that cannot be one.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from badger_graph.errors import RunFolderError


class RunLock(Callback):
    """One training run per run directory, checked before anything is written.

    :meth:`acquire` writes ``<root>/run.lock`` with the process id; a second run into the
    same folder while the first is alive stops at once with a
    :class:`~badger_graph.errors.RunFolderError` naming the folder and the other process. A
    lock left by a killed run is taken over; a lock naming a live process that is not a
    badger run (a reused process id) is reported with how to clear it. The lock is
    released when the run ends, is interrupted or fails. ``badger fit`` acquires it before
    the config and the logs are written; used alone, the callback takes it at ``setup``.
    """

    def __init__(self) -> None:
        self.path: str | None = None

    def acquire(self, root: str) -> None:
        """Take the lock of run directory ``root`` (created if needed) for this process."""
        root = check_run_dir(root)
        path = os.path.join(root, "run.lock")
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                other = _lock_owner(path)
                if other == os.getpid():
                    self.path = path
                    return
                if other is not None:
                    command = _command_line(other)
                    if command is not None and "badger" not in command:
                        raise RunFolderError(
                            f"{path} names process {other} ({command[:80]!r}), which is alive "
                            f"but not a badger run: the lock was probably left by a run that "
                            f"was killed and its process id reused. If no run is writing into "
                            f"{root!r}, delete {path} and start again"
                        ) from None
                    raise RunFolderError(
                        f"another training run (process {other}) is writing into {root!r}; "
                        f"wait for it or give this run its own --trainer.default_root_dir "
                        f"(if no run is writing there, delete {path})"
                    ) from None
                os.remove(path)  # left by a run that was killed
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.path = path
            return

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.path is not None and _lock_owner(self.path) == os.getpid():
            os.remove(self.path)
        self.path = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        """Take the lock (rank 0 only) unless the command line already holds it."""
        if stage == "fit" and trainer.global_rank == 0 and self.path is None:
            self.acquire(trainer.default_root_dir)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        """Release the lock at the end of the run."""
        self.release()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """Release the lock when the run stops on Ctrl-C, SIGTERM or an error."""
        self.release()


def _command_line(pid: int) -> str | None:
    """The command line of process ``pid`` (``None`` where the system does not say)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def newest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint of ``folder`` furthest in training (``None`` when there is none).

    What ``--ckpt_path last`` resumes: every ``*.ckpt`` is read (safely) and ranked by
    training batches done, then global step, then modification time — never by time alone,
    so a file written later by a run that trained less cannot shadow a further one.

    Raises:
        CheckpointError: a checkpoint in the folder does not load (named): the resume
            stops rather than fall back to an older state or a fresh start.
    """
    from badger_graph.checkpoint import read_checkpoint

    folder = Path(folder)
    if not folder.is_dir():
        return None
    ranked = []
    for path in sorted(folder.glob("*.ckpt")):
        check_checkpoint_file(str(path))  # a dangling link or a folder named *.ckpt: named
        ckpt = read_checkpoint(path)
        step = _batch_count(ckpt, "global_step", 0, path)
        done = _batch_count(ckpt, "badger_graph_train_batches", step, path)
        ranked.append(((done, step, path.stat().st_mtime_ns), path))
    return max(ranked)[1] if ranked else None


def _batch_count(ckpt: dict, key: str, default: int, path: Path) -> int:
    """``ckpt[key]`` as a number of batches, or an error naming the file and the value."""
    from badger_graph.errors import CheckpointError

    value = ckpt.get(key, default)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(
            f"{str(path)!r} holds {key} = {value!r}, not a number of batches: not a "
            f"checkpoint as badger_graph writes them (edited?)"
        )
    return value


def run_folder(value) -> Path:
    """The run directory ``--trainer.default_root_dir`` names, resolved, or a named error.

    Checkpoints, the lock and the logs all go to the folder returned here.

    Raises:
        RunFolderError: an empty or blank name (what an unset shell variable gives: the
            checkpoints would land in the working directory) or a folder inside the
            installed badger_graph package (its shipped checkpoints live there).
    """
    if value is None or not str(value).strip():
        raise RunFolderError(
            f"--trainer.default_root_dir is empty ({value!r}; an unset shell variable?): "
            f"name the run folder, e.g. --trainer.default_root_dir runs/my_experiment"
        )
    root = Path(os.path.realpath(os.path.expanduser(str(value))))
    package = Path(os.path.realpath(Path(__file__).parent))
    if root == package or package in root.parents:
        raise RunFolderError(
            f"the run folder {str(root)!r} is inside the installed badger_graph package "
            f"(its shipped checkpoints live there); choose another --trainer.default_root_dir"
        )
    return root


def check_checkpoint_file(path: str) -> None:
    """Raise a :class:`~badger_graph.errors.CheckpointError` unless ``path`` is a file.

    Names a missing file, a folder and a symbolic link that points nowhere.
    """
    from badger_graph.errors import CheckpointError

    p = Path(os.path.expanduser(str(path)))
    if p.is_symlink() and not p.exists():
        raise CheckpointError(
            f"checkpoint {str(path)!r} is a symbolic link to {os.readlink(p)!r}, which does "
            f"not exist"
        )
    if p.is_dir():
        hint = p / "checkpoints" / "last.ckpt"
        raise CheckpointError(
            f"checkpoint {str(path)!r} is a folder, not a checkpoint file"
            + (f" (did you mean {str(hint)!r}?)" if hint.is_file() else "")
        )
    if not p.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")


def check_run_dir(root: str, checkpoints: bool = True) -> str:
    """Create the run directory (and its ``checkpoints``) and check it is writable.

    Raises:
        RunFolderNotWritable: naming the folder, when it cannot be created or written
            (a :class:`PermissionError` and a :class:`~badger_graph.errors.RunFolderError`).
    """
    root = os.path.realpath(os.path.expanduser(str(root)))
    try:
        sub = os.path.join(root, "checkpoints") if checkpoints else root
        os.makedirs(sub, exist_ok=True)
        probe = os.path.join(sub, f".write_test_{os.getpid()}")
        try:
            with open(probe, "w") as f:
                f.write("ok")
                f.flush()
                os.fsync(f.fileno())  # a full disk fails here, not at the first checkpoint
        finally:
            if os.path.lexists(probe):  # also when the write failed (ENOSPC leaves 0 bytes)
                os.remove(probe)
    except OSError as e:
        from badger_graph.errors import RunFolderNotWritable

        raise RunFolderNotWritable(
            f"the run directory {root!r} is not writable ({e.strerror or e}); choose another "
            f"with --trainer.default_root_dir"
        ) from e
    return root


def _lock_owner(path: str) -> int | None:
    """Process id in a lock file if that process is alive, else ``None``."""
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
        if pid <= 0:  # empty or junk: os.kill(0, ...) would ask the whole process group
            return None
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid
