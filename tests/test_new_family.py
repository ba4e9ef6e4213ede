"""A task family written as a new user would (one file, one config) runs in every tool.

Nothing of the library is touched: the family lives in its own module on the path, the
config names it by class path, and ``badger fit``, ``badger test``, ``badger matrix``
(``--family NAME=CLASS_PATH``) and ``benchmarks/task_baselines.py`` (``--family
NAME=CONFIG:CKPT``) take it, with the BADGER agent and the monolithic learner.
"""

from __future__ import annotations

import textwrap

import pytest
import torch

from badger_graph.cli import cli_main

FAMILY = '''
import torch
from badger_graph.tasks.base import Episode, StepResult, Task, play


class SignEpisode(Episode):
    """Guess a hidden sign; the squared miss is the error and the feedback."""

    num_outputs = 1

    def __init__(self, target):
        self.target = target
        self.num_agents = target.numel()

    def first(self):
        zeros = torch.zeros_like(self.target)
        return StepResult(error=zeros, feedback=zeros, signal=zeros.unsqueeze(1))

    def step(self, action):
        miss = self.target - action[:, 0]
        return StepResult(error=miss.pow(2), feedback=miss, signal=miss.unsqueeze(1))


class Sign(Task):
    num_outputs = 1

    def __init__(self, feedback_to="all"):
        super().__init__(feedback_to)

    def reset(self, batch_size, generator=None, num_outputs=None, device=None):
        sign = torch.randint(0, 2, (batch_size,), generator=generator).float() * 2 - 1
        return SignEpisode(sign.to(device))

    def chance_level(self, num_outputs=None):
        return 1.0

    def baselines(self):
        zero = lambda r, t: torch.zeros(r.error.numel(), 1)  # noqa: E731
        return {"zero": lambda ep, steps: play(ep, steps, zero)}
'''

CONFIG = """
seed_everything: 0
trainer: {{max_steps: 3, val_check_interval: 3, default_root_dir: runs/{name},
  enable_progress_bar: false}}
model:
{model}
  task: {{class_path: sign_family.Sign}}
  inner_steps: 4
data: {{batch_size: 8, val_episodes: 8, test_episodes: 8, eval_batch_size: 8}}
"""

BADGER = """  policy:
    class_path: badger_graph.ExpertPolicy
    init_args: {hidden_channels: 16, message_channels: 8, input_channels: 8, identity_channels: 4}
  topology: {class_path: badger_graph.topologies.FullyConnected}
  num_experts: 2"""

RNN = """  learner:
    class_path: badger_graph.learner.RecurrentLearner
    init_args: {max_outputs: 1, hidden_channels: 8}"""


@pytest.mark.parametrize(("name", "model"), [("badger", BADGER), ("rnn", RNN)])
def test_new_family_in_fit_test_and_matrix(tmp_path, monkeypatch, capsys, name, model):
    (tmp_path / "sign_family.py").write_text(textwrap.dedent(FAMILY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = tmp_path / f"sign_{name}.yaml"
    config.write_text(CONFIG.format(name=name, model=model))
    ckpt = f"runs/{name}/checkpoints/last.ckpt"
    cli_main(["fit", "--config", str(config)])
    assert torch.load(ckpt, weights_only=True)["global_step"] == 3
    cli_main(["test", "--config", str(config), "--ckpt_path", ckpt])
    assert "test/final_error" in capsys.readouterr().out
    cli_main(["matrix", "--model", f"{name}={config}:{ckpt}", "--family",
              "sign=sign_family.Sign", "--family", f"sign_cfg={config}",
              "--families", "sign,sign_cfg,guessing", "--episodes", "8", "--out", "m"])  # fmt: skip
    out = capsys.readouterr().out
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import task_baselines

    rows = task_baselines.compare("sign", tmp_path, 8, 8, str(config), ckpt)
    assert {r["strategy"] for r in rows} == {"agent", "zero"}
    assert all(r["value"] >= 0 for r in rows)
    assert "-> sign " in out
    assert "-> sign_cfg " in out
    assert "zero" in out
    assert (tmp_path / "m" / "matrix.csv").read_text().count("\n") == 4


def test_bad_family_spec_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["matrix", "--model", "a=b:c", "--family", "x=no_such_module.Task"])
    assert "--family x: family 'no_such_module.Task' cannot be imported" in capsys.readouterr().err
