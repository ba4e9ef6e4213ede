"""A hostile user's second round: nothing overwritten, nothing imported from a checkpoint.

Each test reproduces one case a careless or malicious user hit (docs/reliability.md, "Cases
of a hostile user"): another run's checkpoint resumed into a folder with its own run, an
empty run folder, a full disk during a checkpoint write, class paths in a checkpoint,
resumes that silently kept old settings, a topology subclass whose ``forward`` training
never called, colliding seeds, a SIGTERM that only stopped the fit, and messages that were
tracebacks.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from badger_graph.cli import main

from .test_faults import CKPTS, CONFIG, HERE, _fault_arg, _final, _fit_inprocess, _fit_subprocess

RUN = Path("runs/tiny")


def _step(path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def _main(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    """``badger ARGV`` in this process: exit status and stderr."""
    monkeypatch.setattr(sys, "argv", ["badger", *argv])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    return code, capsys.readouterr().err


# -- data loss ---------------------------------------------------------------------------


def test_ckpt_path_of_another_run_never_replaces_this_folders_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _fit_inprocess(
        tmp_path, monkeypatch, "--trainer.default_root_dir", "A", "--trainer.max_steps", "6"
    )
    args = ["--trainer.default_root_dir", "B", "--trainer.max_steps", "4", "--seed_everything", "8"]
    _fit_inprocess(tmp_path, monkeypatch, *args)
    before = (tmp_path / "A/checkpoints/last.ckpt").read_bytes()
    code, err = _main(
        monkeypatch, capsys, "fit", "--config", CONFIG, "--trainer.default_root_dir", "A",
        "--ckpt_path", "B/checkpoints/last.ckpt", "--trainer.max_steps", "8",
    )  # fmt: skip
    assert code == 2, err
    assert "another run folder" in err
    assert "B/checkpoints/last.ckpt" in err
    assert "Traceback" not in err
    assert (tmp_path / "A/checkpoints/last.ckpt").read_bytes() == before
    assert not (tmp_path / "A/run.lock").exists()
    # into a new, empty folder the other run continues (said), its own folder untouched
    b_before = (tmp_path / "B/checkpoints/last.ckpt").read_bytes()
    code, err = _main(
        monkeypatch, capsys, "fit", "--config", CONFIG, "--trainer.default_root_dir", "C",
        "--ckpt_path", "B/checkpoints/last.ckpt", "--trainer.max_steps", "6",
    )  # fmt: skip
    assert code == 0, err
    assert "continuing the run of" in err
    assert _step(tmp_path / "C/checkpoints/last.ckpt") == 6
    assert (tmp_path / "B/checkpoints/last.ckpt").read_bytes() == b_before


@pytest.mark.parametrize("root", ["", "  "])
def test_empty_run_folder_is_refused(tmp_path, monkeypatch, capsys, root):
    monkeypatch.chdir(tmp_path)
    code, err = _main(
        monkeypatch, capsys, "fit", "--config", CONFIG, "--trainer.default_root_dir", root
    )
    assert code == 2, err
    assert "--trainer.default_root_dir is empty" in err
    assert os.listdir(tmp_path) == []  # no ./checkpoints, no runs/badger, no logs


def test_run_folder_inside_the_package_is_refused(tmp_path, monkeypatch, capsys):
    import badger_graph

    inside = Path(badger_graph.__file__).parent / "checkpoints" / "my_run"
    code, err = _main(
        monkeypatch, capsys, "fit", "--config", CONFIG, "--trainer.default_root_dir", str(inside)
    )
    assert code == 2, err
    assert "inside the installed badger_graph package" in err
    assert not inside.exists()


def _fail_fsync_from(count: int):
    """An ``os.fsync`` that raises ENOSPC on checkpoint writes from the ``count``-th on."""
    real, seen = os.fsync, [0]

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else ""
        if name.endswith(".tmp") and ".ckpt." in name:
            seen[0] += 1
            if seen[0] >= count:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    return fsync


def test_disk_full_during_a_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))
    # tiny.yaml writes last.ckpt after batches 5 and 10 (the latter after the validation)
    monkeypatch.setattr(os, "fsync", _fail_fsync_from(4))
    code, err = _main(monkeypatch, capsys, "fit", "--config", CONFIG)
    assert code == 1
    assert "badger: error: could not write the checkpoint" in err
    assert "No space left on device" in err
    assert "intact" in err
    assert "Traceback" not in err
    folder = tmp_path / CKPTS
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]  # no .tmp
    assert _step(folder / "last.ckpt") in (5, 10)  # whole, loadable
    assert not (tmp_path / RUN / "run.lock").exists()
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    _fit_inprocess(tmp_path, monkeypatch, "--ckpt_path", "last")  # and it resumes
    assert _step(folder / "last.ckpt") == 30


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    try:
        ok = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                capture_output=True,
            ).returncode
            == 0
        )
    except OSError:
        return False
    return ok


def _fill_up(disk: Path, leave: int = 0) -> None:
    """Write ``disk/filler`` until the file system is full, then free ``leave`` bytes of it."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    size = 0
    try:
        while True:
            size += os.write(fd, b"\0" * 4096)
    except OSError:
        os.ftruncate(fd, max(size - leave, 0))
    finally:
        os.close(fd)


def test_real_full_file_system_keeps_the_previous_checkpoint(tmp_path):
    """On a 4 MiB tmpfs (where the machine lets us mount one): the disk really fills up."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "4m"):
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        first = _fit_subprocess(disk, "--trainer.max_steps", "5")
        assert first.returncode == 0, first.stderr[-2000:]
        good = (disk / CKPTS / "last.ckpt").read_bytes()
        _fill_up(disk, leave=40_000)
        out = _fit_subprocess(disk, "--ckpt_path", "last")
        assert out.returncode == 1, out.stderr[-2000:]
        assert "could not write the checkpoint" in out.stderr
        assert "Traceback" not in out.stderr
        assert (disk / CKPTS / "last.ckpt").read_bytes() == good
        assert not [p for p in (disk / CKPTS).iterdir() if p.name.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_disk_at_start_leaves_no_probe_file(tmp_path):
    """A run refused because its disk is full leaves nothing behind (the write probe was
    left as a 0-byte ``.write_test_PID`` before)."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "4m"):
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        first = _fit_subprocess(disk, "--trainer.max_steps", "5")
        assert first.returncode == 0, first.stderr[-2000:]
        before = sorted(p.name for p in (disk / CKPTS).iterdir())
        _fill_up(disk)  # no byte left
        out = _fit_subprocess(disk, "--ckpt_path", "last")
        assert out.returncode != 0
        assert "No space left on device" in out.stderr, out.stderr[-2000:]
        assert sorted(p.name for p in (disk / CKPTS).iterdir()) == before
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# -- code from a checkpoint --------------------------------------------------------------


def _trained(tmp_path, monkeypatch) -> Path:
    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "2")
    return tmp_path / CKPTS / "last.ckpt"


def _edit(path: Path, out: Path, edit) -> str:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    edit(ckpt["hyper_parameters"])
    torch.save(ckpt, out)
    return str(out)


def test_checkpoint_class_paths_are_refused_before_anything_is_imported(
    tmp_path, monkeypatch, capsys
):
    path = _trained(tmp_path, monkeypatch)
    marker = tmp_path / "imported.txt"
    (tmp_path / "evil_tasks.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass GuessingGame: pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    def evil_task(hp):
        hp["task"]["class_path"] = "evil_tasks.GuessingGame"

    def linear_learner(hp):
        hp["learner"] = {"class_path": "torch.nn.Linear", "init_args": {"in_features": 1}}

    def bare_path(hp):
        hp["task"] = "evil_tasks.GuessingGame"

    for edit, needle in ((evil_task, "evil_tasks"), (linear_learner, "torch.nn.Linear"),
                         (bare_path, "evil_tasks")):  # fmt: skip
        bad = _edit(path, tmp_path / "crafted.ckpt", edit)
        code, err = _main(monkeypatch, capsys, "sweep", "--ckpt_path", bad, "--dims", "1")
        assert code == 2, err
        assert needle in err
        assert "crafted.ckpt" in err
        assert "Traceback" not in err
        assert not marker.exists()  # the module was never imported
        assert "evil_tasks" not in sys.modules
    # a user's own class is allowed when the user says so
    from badger_graph import BadgerModule
    from badger_graph.checkpoint import class_paths

    hp = torch.load(path, map_location="cpu", weights_only=False)["hyper_parameters"]
    assert "badger_graph.tasks.GuessingGame" in class_paths(hp)
    assert BadgerModule.load_from_checkpoint(path, allow=["my_tasks."]).runner.num_experts == 4


# -- silent wrong ------------------------------------------------------------------------


def test_resume_applies_a_changed_learning_rate_and_says_so(tmp_path, monkeypatch):
    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "4")
    with pytest.warns(UserWarning, match=r"optimizer settings.*lr 0\.01 -> 0\.5"):
        _fit_inprocess(
            tmp_path, monkeypatch, "--trainer.max_steps", "6", "--ckpt_path", "last",
            "--model.optimizer.init_args.lr", "0.5",
        )  # fmt: skip
    ckpt = torch.load(tmp_path / CKPTS / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == 0.5
    assert ckpt["hyper_parameters"]["optimizer"]["init_args"]["lr"] == 0.5


def test_resume_warns_about_changed_model_settings(tmp_path, monkeypatch):
    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "2")
    with pytest.warns(
        UserWarning, match=r"resuming .*last\.ckpt.*\['num_experts', 'inner_steps'\]"
    ):
        _fit_inprocess(
            tmp_path, monkeypatch, "--trainer.max_steps", "3", "--ckpt_path", "last",
            "--model.inner_steps", "7", "--model.num_experts", "6",
        )  # fmt: skip


def test_divergence_names_the_checkpoint_from_before_the_blow_up(tmp_path, monkeypatch):
    from badger_graph.errors import DivergenceError

    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "5")  # a good last.ckpt
    good = torch.load(tmp_path / CKPTS / "last.ckpt", map_location="cpu", weights_only=True)
    blow_up = ["--model.optimizer.init_args.lr", "1e6", "--model.diverged_after", "10"]
    with pytest.raises(DivergenceError, match=r"last\.ckpt' \(after 5 batches\) is from before"):
        _fit_inprocess(tmp_path, monkeypatch, "--ckpt_path", "last", *blow_up)
    # the validation after batch 9 came during the blow-up: no best.ckpt of diverged weights
    assert sorted(p.name for p in (tmp_path / CKPTS).glob("*.ckpt")) == ["last.ckpt"]
    for name in ("last.ckpt",):
        ckpt = torch.load(tmp_path / CKPTS / name, map_location="cpu", weights_only=True)
        assert ckpt["global_step"] == 5
        biggest = max(float(v.abs().max()) for v in ckpt["state_dict"].values())
        assert biggest < 100
    # resuming at the config's learning rate continues from the good state, at that rate
    _fit_inprocess(tmp_path, monkeypatch, "--ckpt_path", "last", "--trainer.max_steps", "8")
    ckpt = torch.load(tmp_path / CKPTS / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 8
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.01)
    assert max(float(v.abs().max()) for v in ckpt["state_dict"].values()) < 100
    assert good["global_step"] == 5


def test_divergence_without_an_earlier_checkpoint_says_none_exists(tmp_path, monkeypatch):
    from badger_graph.errors import DivergenceError

    blow_up = ["--model.optimizer.init_args.lr", "1e6", "--model.diverged_after", "10"]
    with pytest.raises(DivergenceError, match="no checkpoint from before the blow-up exists"):
        _fit_inprocess(tmp_path, monkeypatch, *blow_up)
    assert not list((tmp_path / CKPTS).glob("*.ckpt"))


@pytest.mark.parametrize("first", [20, 23])
def test_extending_a_finished_run_logs_the_same_steps_as_one_run(
    tmp_path, reference, reference_dir, first
):
    done = _fit_subprocess(tmp_path, "--trainer.max_steps", str(first))
    assert done.returncode == 0, done.stderr[-2000:]
    more = _fit_subprocess(tmp_path, "--ckpt_path", "last")  # the config's 30 batches
    assert more.returncode == 0, more.stderr[-2000:]
    weights, val_rows, step = _final(tmp_path)
    ref_weights, ref_rows, _ = reference
    assert step == 30
    assert all(torch.equal(weights[k], ref_weights[k]) for k in weights)
    assert val_rows == ref_rows  # labelled 9, 19, 29: not 30
    assert _train_rows(tmp_path) == _train_rows(reference_dir)  # same steps, same values
    seconds = list(_seconds(tmp_path).values())
    assert seconds == sorted(seconds)  # the run's clock went on after the resume
    assert seconds[0] > 0


def _log_rows(run: Path, column: str) -> dict:
    """``step -> row`` of the run's training logs (every version) where ``column`` is set."""
    import csv

    rows = {}
    for f in sorted((run / RUN / "logs").glob("version_*/metrics.csv")):
        with f.open() as fh:
            rows.update({int(r["step"]): r for r in csv.DictReader(fh) if r.get(column)})
    return dict(sorted(rows.items()))


def _seconds(run: Path) -> dict:
    return {k: float(r["train/seconds"]) for k, r in _log_rows(run, "train/seconds").items()}


def _train_rows(run: Path) -> dict:
    return {k: (r["epoch"], r["train/loss"]) for k, r in _log_rows(run, "train/loss").items()}


def test_topology_subclass_overriding_forward_is_what_training_runs():
    from badger_graph import Agent, ExpertPolicy
    from badger_graph.runner import EpisodeRunner
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import FullyConnected

    calls = []

    class Logged(FullyConnected):
        def forward(self, state):
            calls.append(state.num_nodes)
            return super().forward(state)

    class Silent(FullyConnected):  # its own edges: none at all
        def forward(self, state):
            return torch.empty(2, 0, dtype=torch.long), None

    assert not Logged.supports_dense
    assert not Logged.fixed_edges
    assert Logged.complete is None
    assert FullyConnected.supports_dense  # the parent keeps its fast path
    errors = {}
    for topo in (FullyConnected(), Logged(), Silent()):
        torch.manual_seed(0)  # the same weights for every agent
        runner = EpisodeRunner(Agent(ExpertPolicy(16, 8, 8, 4), topo), GuessingGame(3), 4, 5)
        errors[type(topo).__name__] = runner.run(3, 8).errors
    assert len(calls) == 5  # forward called every step, in the training path
    assert torch.allclose(errors["Logged"], errors["FullyConnected"], atol=1e-6)
    assert not torch.allclose(errors["Silent"], errors["FullyConnected"])


def test_derive_is_injective_for_every_key_it_accepts():
    from badger_graph.seeds import LEGACY_NAMES, STREAMS, derive

    a, b = "stream29685295", "stream32060020"
    assert zlib.crc32(a.encode()) == zlib.crc32(b.encode())  # the probe's collision
    assert derive(a) != derive(b)
    assert derive(a, 1) != derive(b, 1)
    assert derive("ab") != derive("ab\0") != derive("a", "b")
    for bad in (5.9, 5.0, True, None, b"x"):
        with pytest.raises(TypeError, match="seed keys must be ints >= 0 or names"):
            derive(bad)
    assert derive(np.int64(5)) == derive(5)
    # the library's own names keep their streams (every shipped figure reproduces)
    for name in sorted(LEGACY_NAMES):
        old = [1, 0x5354_0001, zlib.crc32(name.encode())]
        words = np.random.SeedSequence(old).generate_state(2, np.uint32)
        assert derive(name) == (int(words[0]) << 32 | int(words[1])) >> 1
    assert len({zlib.crc32(n.encode()) for n in LEGACY_NAMES}) == len(LEGACY_NAMES)
    assert "rounds" in STREAMS  # a later stream: encoded byte for byte
    assert "rounds" not in LEGACY_NAMES


# -- SIGTERM ends the process ------------------------------------------------------------


def _script(body: str) -> str:
    return textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(HERE)!r})
        from badger_graph.cli import cli_main
        args = ["fit", "--config", {CONFIG!r}, {_fault_arg("sigterm", 12)!r}]
        """
    ) + textwrap.dedent(body)


def test_sigterm_to_an_in_process_fit_ends_the_process_after_the_checkpoint(tmp_path):
    script = _script(
        """
        try:
            cli_main(args)
        except BaseException as e:
            print("fit raised", type(e).__name__)
        print("the process went on")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == -signal.SIGTERM, out.stderr[-2000:]  # as without the library
    assert "the process went on" not in out.stdout
    assert _step(tmp_path / CKPTS / "interrupted.ckpt") == 12  # saved first
    assert not (tmp_path / RUN / "run.lock").exists()


def test_sigterm_reaches_the_processs_own_handler(tmp_path):
    script = _script(
        """
        def handler(signum, frame):
            print("handler saw", signum, os.path.exists("runs/tiny/checkpoints/interrupted.ckpt"))
            sys.exit(7)
        signal.signal(signal.SIGTERM, handler)
        cli_main(args)
        print("the process went on")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 7, out.stderr[-2000:]
    assert f"handler saw {int(signal.SIGTERM)} True" in out.stdout
    assert "the process went on" not in out.stdout


# -- messages ----------------------------------------------------------------------------


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    """A folder with a 2-batch run of tiny.yaml (``runs/tiny``), as the working directory."""
    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "2")
    return tmp_path


def _ckpt_with(folder: Path, **entries) -> None:
    ckpt = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)
    ckpt.update(entries)
    torch.save(ckpt, folder / "last.ckpt")


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("global_step_abc", "global_step = 'abc'"),
        ("dangling_symlink", "which does not exist"),
        ("folder_named_ckpt", "is a folder, not a checkpoint"),
    ],
)
def test_odd_files_in_the_folder_ckpt_path_last_reads_are_named(
    tiny_run, monkeypatch, capsys, case, needle
):
    folder = tiny_run / CKPTS
    if case == "global_step_abc":
        _ckpt_with(folder, global_step="abc")
        named = "last.ckpt"
    elif case == "dangling_symlink":
        (folder / "old.ckpt").symlink_to(tiny_run / "gone.ckpt")
        named = "old.ckpt"
    else:
        (folder / "x.ckpt").mkdir()
        named = "x.ckpt"
    code, err = _main(monkeypatch, capsys, "fit", "--config", CONFIG, "--ckpt_path", "last")
    assert code == 2, err
    assert needle in err
    assert named in err
    assert "Traceback" not in err
    assert not (tiny_run / RUN / "run.lock").exists()


def test_messages_are_one_line_with_exit_status_2(tiny_run, monkeypatch, capsys):
    bad_yaml = tiny_run / "bad.yaml"
    bad_yaml.write_text("model: [\n  oops")
    (tiny_run / "a.yaml").write_text("base: b.yaml\n")
    (tiny_run / "b.yaml").write_text("base: a.yaml\n")
    cases = [
        (["test", "--config", CONFIG, "--ckpt_path", str(tiny_run / RUN)], "is a folder"),
        (["fit", "--config", str(bad_yaml)], "bad.yaml' is not valid YAML at line 2"),
        (["fit", "--config", "a.yaml"], "is its own base (a loop"),
        (["fit", "--config", CONFIG, "--seed_everything", str(2**70)], "seed_everything must be"),
        (["fit", "--config", CONFIG, "--model.num_experts", "0"], "num_experts must be"),
        (["fit", "--config", CONFIG, "--model.inner_steps", "0"], "inner_steps (T) must be"),
        (["fit", "--config", CONFIG, "--model.rounds", "0"], "rounds (k) must be"),
        (["fit", "--config", CONFIG, "--model.policy.init_args.hidden_channels", "0"],
         "hidden_channels must be an int >= 1, got 0"),
        (["fit", "--config", CONFIG, "--trainer.default_root_dir", "new",
          "--model.topology.init_args.k", "50"], "out-degree k=50 must be < the number"),
        (["fit", "--config", CONFIG, "--trainer.default_root_dir", "new", "--checkpoint_every",
          "0"], "checkpoint_every must be"),
        (["fit", "--config", CONFIG, "--trainer.default_root_dir", "new", "--threads", "0"],
         "threads must be"),
        (["fit", "--config", CONFIG, "--trainer.default_root_dir", "new", "--trainer.max_steps",
          "-5"], "trainer.max_steps must be >= -1"),
        (["fit", "--config", CONFIG, "--trainer.default_root_dir", "new", "--trainer.max_time",
          "01:00:00"], "trainer.max_time must be DD:HH:MM:SS"),
        (["fit", "--config", CONFIG, "--trainer.default_root_dir", "afile/run"],
         "is not writable"),
        (["test", "--config", CONFIG, "--trainer.default_root_dir", "afile/run"],
         "is not writable"),
        (["sweep", "--out", "afile/sweep", "--dims", "1"], "--out 'afile/sweep'"),
    ]  # fmt: skip
    (tiny_run / "afile").write_text("x")
    for argv, needle in cases:
        code, err = _main(monkeypatch, capsys, *argv)
        assert code == 2, (argv, err)
        assert needle in err, (argv, err)
        assert "Traceback" not in err, argv
        assert not (tiny_run / "new" / "run.lock").exists(), argv
        assert not (tiny_run / RUN / "run.lock").exists(), argv


def test_empty_lock_is_stale_not_process_0(tiny_run, monkeypatch):
    (tiny_run / RUN / "run.lock").write_text("")
    _fit_inprocess(tiny_run, monkeypatch, "--ckpt_path", "last", "--trainer.max_steps", "3")
    assert _step(tiny_run / CKPTS / "last.ckpt") == 3


def test_second_fit_while_the_first_is_alive_names_the_other_run(tiny_run, monkeypatch, capsys):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "badger"])
    try:
        (tiny_run / RUN / "run.lock").write_text(str(other.pid))
        code, err = _main(monkeypatch, capsys, "fit", "--config", CONFIG)
    finally:
        other.kill()
        other.wait()
    assert code == 2
    assert f"another training run (process {other.pid})" in err
    assert "--ckpt_path last" not in err  # not told to resume a run that is running


def test_compare_learners_refuses_zero_batch_and_episodes(tmp_path):
    script = Path(__file__).parents[2] / "benchmarks" / "compare_learners.py"
    for flag in ("--batch", "--episodes"):
        out = subprocess.run(
            [sys.executable, str(script), flag, "0", "--out", str(tmp_path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 2, out.stderr[-1000:]
        assert f"{flag} must be >= 1, got 0" in out.stderr
        assert "Traceback" not in out.stderr


def test_a_changed_learning_rate_under_a_scheduler_keeps_the_schedule(tmp_path, monkeypatch):
    sched = '{"class_path": "torch.optim.lr_scheduler.StepLR", '
    sched += '"init_args": {"step_size": 1, "gamma": 0.5}}'
    args = ["--model.lr_scheduler", sched]
    _fit_inprocess(tmp_path, monkeypatch, "--trainer.max_steps", "4", *args)
    with pytest.warns(UserWarning, match=r"lr 0\.01 -> 0\.02"):
        _fit_inprocess(
            tmp_path, monkeypatch, "--trainer.max_steps", "6", "--ckpt_path", "last", *args,
            "--model.optimizer.init_args.lr", "0.02",
        )  # fmt: skip
    ckpt = torch.load(tmp_path / CKPTS / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.02 * 0.5**6)
    assert ckpt["lr_schedulers"][0]["base_lrs"] == [0.02]
