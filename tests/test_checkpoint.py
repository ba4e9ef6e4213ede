"""Checkpoint files: shipped ones load, earlier formats are upgraded, bad files are named."""

from pathlib import Path

import pytest
import torch

from badger_graph import BadgerModule
from badger_graph.checkpoint import FORMAT, load_weights, read_checkpoint
from badger_graph.outer import EvolutionStrategy, TruncatedBPTT

SHIPPED = Path(__file__).parents[1] / "badger_graph" / "checkpoints"


@pytest.mark.parametrize("name", sorted(p.name for p in SHIPPED.glob("*.ckpt")))
def test_shipped_checkpoints_load(name):
    model = BadgerModule.load_from_checkpoint(SHIPPED / name, map_location="cpu")
    assert read_checkpoint(SHIPPED / name)["badger_graph_format"] == FORMAT
    with torch.no_grad():
        err = model.runner.run(2**40, 64).final_error.mean()
    assert float(err) < 0.1  # a trained Fig. 7 agent at d = 3 (chance: 1.0)


def test_shipped_fresh_growth_checkpoint_quadruples_with_fresh_experts():
    """20 experts grown to 80 fresh ones mid-lifetime still solve d = 3 (chance: 1.0)."""
    from badger_graph.growth import GrowthEvent

    model = BadgerModule.load_from_checkpoint(
        SHIPPED / "fig7_fresh_growth80.ckpt", map_location="cpu"
    )
    with torch.no_grad():
        life = model.runner.run(2**40, 64, growth=[GrowthEvent(10, 60, "fresh")])
    assert life.state.num_experts().tolist() == [80] * 64
    assert float(life.final_error.mean()) < 0.1


def _old_format(tmp_path, **old) -> Path:
    """The shipped checkpoint rewritten with the hyperparameters of format 1."""
    ckpt = torch.load(SHIPPED / "fig7.ckpt", map_location="cpu", weights_only=False)
    ckpt.pop("badger_graph_format")
    hp = ckpt["hyper_parameters"]
    hp.update({"dense": "never", "sparse": "auto", "compile": False, "gradient_clip_val": 0.5})
    hp.update(old)
    path = tmp_path / "old.ckpt"
    torch.save(ckpt, path)
    return path


def test_format_1_truncated_bptt_is_upgraded(tmp_path):
    model = BadgerModule.load_from_checkpoint(_old_format(tmp_path, truncate_bptt=5, es=None))
    assert isinstance(model.outer_loop, TruncatedBPTT)
    assert (model.outer_loop.steps, model.outer_loop.gradient_clip_val) == (5, 0.5)
    assert model.agent.execution.dense == "never"
    assert not model.automatic_optimization
    ref = BadgerModule.load_from_checkpoint(SHIPPED / "fig7.ckpt")
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_format_1_es_is_upgraded(tmp_path):
    es = {"class_path": "badger_graph.es.EvolutionStrategy", "init_args": {"population": 6}}
    model = BadgerModule.load_from_checkpoint(_old_format(tmp_path, truncate_bptt=None, es=es))
    assert isinstance(model.outer_loop, EvolutionStrategy)
    assert model.outer_loop.population == 6


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        read_checkpoint(tmp_path / "nope.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ValueError, match="junk.ckpt.*not a readable"):
        load_weights(torch.nn.Linear(1, 1), junk)
    no_state = tmp_path / "plain.ckpt"
    torch.save({"weights": 1}, no_state)
    with pytest.raises(ValueError, match="no 'state_dict'"):
        read_checkpoint(no_state)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"\x00\x01random bytes", "not a readable torch checkpoint"),
    ],
)
def test_unreadable_files(tmp_path, content, match):
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as err:
        read_checkpoint(path)
    assert "weights_only" not in str(err.value)  # no advice to unpickle an untrusted file


def test_plain_state_dict_is_named(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(ValueError, match="holds a plain state_dict, not a Lightning checkpoint"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    ("stamp", "fmt", "match"),
    [
        ("dev", 2, "invalid badger_graph version stamp 'dev'"),
        ("0.99.0", 2, "0.99.0, newer than this"),
        ("0.2.0", 3, "format 3 vs 2"),
    ],
)
def test_version_stamps(tmp_path, stamp, fmt, match):
    ckpt = torch.load(SHIPPED / "fig7.ckpt", map_location="cpu", weights_only=False)
    ckpt.update(badger_graph_version=stamp, badger_graph_format=fmt)
    torch.save(ckpt, tmp_path / "s.ckpt")
    with pytest.raises(ValueError, match=match):
        read_checkpoint(tmp_path / "s.ckpt")


FOLDERS = sorted(
    (folder.name, p.stem)
    for folder in (SHIPPED / "datasets", SHIPPED / "generalist", SHIPPED / "tasks")
    for p in folder.glob("*.ckpt")
)


@pytest.mark.parametrize(("folder", "name"), FOLDERS, ids=[f"{f}/{n}" for f, n in FOLDERS])
def test_shipped_experiment_checkpoints_load_into_their_configs(folder, name):
    pytest.importorskip("sklearn")
    from badger_graph.cli import build_from_config

    configs = SHIPPED.parents[1] / "configs"
    config = configs / f"{name}.yaml" if folder == "tasks" else configs / folder / f"{name}.yaml"
    model = build_from_config(str(config), str(SHIPPED / folder / f"{name}.ckpt"))
    saved = read_checkpoint(SHIPPED / folder / f"{name}.ckpt")["state_dict"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[key], msg=key)
    with torch.no_grad():
        life = model.runner.run(2**40, 8)
    assert life.errors.isfinite().all()


def test_a_new_argument_at_its_default_is_the_same_setting_as_an_older_checkpoint():
    from badger_graph.checkpoint import same_setting

    saved = {"class_path": "badger_graph.ExpertPolicy", "init_args": {"hidden_channels": 64}}
    config = {
        "class_path": "badger_graph.ExpertPolicy",
        "init_args": {"hidden_channels": 64, "update_bias": 0.0},
    }
    assert same_setting(config, saved)  # the checkpoint predates update_bias
    assert not same_setting({**config, "init_args": {"hidden_channels": 64, "update_bias": 2.0}},
                            saved)  # fmt: skip
    assert not same_setting({**config, "init_args": {"hidden_channels": 32}}, saved)
    assert not same_setting({"class_path": "badger_graph.topologies.Ring"}, saved)
    # a saved argument the config lacks is a difference, not a default
    assert not same_setting({"class_path": "badger_graph.ExpertPolicy", "init_args": {}}, saved)
