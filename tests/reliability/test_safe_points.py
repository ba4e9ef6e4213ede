"""Signals stop a run only at safe points: between batches, never inside an update.

A first Ctrl-C or SIGTERM only asks the run to stop; it stops at the next batch boundary
(after the batch's validation and checkpoints), so a signal inside the optimizer step or a
sanity check cannot save a half-updated model or shift the step count. A second Ctrl-C
stops at once and says so. Every resumed run ends bit-identical to the uninterrupted one.
"""

from __future__ import annotations

import json

import pytest

from .test_faults import CKPTS, _interrupt_and_resume

#: Adam in two halves, so that a signal can land between parameter updates
TWO_PHASE = "--model.optimizer=" + json.dumps(
    {"class_path": "faults.TwoPhaseAdam", "init_args": {"lr": 0.01}}
)


@pytest.mark.parametrize("kind", ["sigint", "sigterm"])
def test_signal_inside_the_optimizer_step_waits_for_the_batch_end(tmp_path, reference, kind):
    # before: Ctrl-C raised between the two halves, saved a half-updated model as "before
    # the batch" and the resume repeated the batch on top of it
    _interrupt_and_resume(
        tmp_path, reference, kind, 13, "interrupted.ckpt", "optimizer_step", (TWO_PHASE,)
    )


def test_second_ctrl_c_stops_at_once_without_saving_a_half_update(tmp_path, reference):
    killed = _interrupt_and_resume(
        tmp_path, reference, "sigint_twice", 13, "last.ckpt", "optimizer_step", (TWO_PHASE,)
    )
    assert "may not be exact" in killed.stderr
    assert "inside the optimizer step" in killed.stderr


def test_sigkill_during_a_validation_repeats_it(tmp_path, reference):
    # before: the batch-10 last.ckpt, written before the validation, already counted the
    # batch, and the resumed run skipped the validation: its row was lost
    _interrupt_and_resume(tmp_path, reference, "sigkill", 9, "last.ckpt", "validation")


@pytest.mark.parametrize("kind", ["sigint", "sigterm"])
def test_signal_during_the_sanity_check_does_not_shift_the_steps(tmp_path, reference, kind):
    # before: the checkpoint written during the sanity check shifted every later row by one
    _interrupt_and_resume(tmp_path, reference, kind, 0, None, "sanity")
    assert not (tmp_path / CKPTS / "interrupted.ckpt").exists()


def test_signal_between_batches_stops_there(tmp_path, reference):
    killed = _interrupt_and_resume(tmp_path, reference, "sigint", 17, "interrupted.ckpt")
    assert "stopping after the current batch" in killed.stderr
