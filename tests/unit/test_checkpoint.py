"""Checkpoint safety: weights_only loading, clear refusals, requested-model checks, export."""

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from spoof_lightning.build import build_components
from spoof_lightning.checkpoint import (
    EXPORT_FORMAT,
    CheckpointError,
    Countermeasure,
    load_countermeasure,
)
from spoof_lightning.checkpoint_match import check_request
from spoof_lightning.export import export_model, main

CONF = Path(__file__).resolve().parents[2] / "conf"


def component(group: str, name: str, **overrides: Any) -> dict[str, Any]:
    """conf/<group>/<name>.yaml resolved at 16 kHz, with overrides."""
    root = OmegaConf.create(
        {"sample_rate": 16000, "node": OmegaConf.load(CONF / group / f"{name}.yaml")}
    )
    return OmegaConf.to_container(root, resolve=True)["node"] | overrides


FRONTEND = component("frontend", "lfcc")
MODEL = component("model", "cnn_gru", gru_hidden=8, filts=[8, [8, 8], [8, 8], [8, 8]])


def make_net(seed: int = 0) -> Countermeasure:
    torch.manual_seed(seed)
    return Countermeasure(*build_components(FRONTEND, MODEL)).eval()


def lightning_checkpoint(net: Countermeasure, threshold: float = 0.25) -> dict[str, Any]:
    """What train.py writes: Detector state (incl. training-only parts) + plain configs."""
    return {
        "epoch": 3,
        "state_dict": {
            **net.state_dict(),
            "eer_threshold": torch.tensor(threshold),
            "loss_fn.weight": torch.tensor([0.1, 0.9]),
        },
        "optimizer_states": [{"state": {}, "param_groups": []}],
        "hyper_parameters": {
            "frontend": FRONTEND,
            "model": MODEL,
            "loss": {"_target_": "spoof_lightning.losses.ce.CrossEntropy"},
            "names": {"frontend": "lfcc", "model": "cnn_gru"},
        },
        "spoof_lightning_config": {"sample_rate": 16000, "data": {"_target_": "x.Y", "root": "/d"}},
    }


@pytest.fixture(scope="module")
def net() -> Countermeasure:
    return make_net()


@pytest.fixture
def ckpt(tmp_path: Path, net: Countermeasure) -> Path:
    path = tmp_path / "best.ckpt"
    torch.save(lightning_checkpoint(net), path)
    return path


def test_a_checkpoint_rebuilds_the_same_scorer(ckpt: Path, net: Countermeasure):
    loaded = load_countermeasure(ckpt)
    x = torch.randn(3, 8000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded.net.score(x), net.score(x), rtol=0, atol=0)
    assert loaded.eer_threshold == pytest.approx(0.25)
    assert loaded.sample_rate == 16000
    assert loaded.describe() == "frontend=lfcc model=cnn_gru"
    assert loaded.config["data"]["root"] == "/d"
    assert not loaded.net.training


def test_a_never_validated_checkpoint_has_no_threshold(tmp_path: Path, net: Countermeasure):
    path = tmp_path / "nan.ckpt"
    torch.save(lightning_checkpoint(net, threshold=float("nan")), path)
    assert load_countermeasure(path).eer_threshold is None


def _write(path: Path, content: Any) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"utt score\n", "is not a PyTorch checkpoint: it starts with b'utt "),
        (b"", "it is empty"),
        ({"model": torch.nn.Linear(2, 2)}, "pickled `torch.nn.modules.linear.Linear`"),
        ({"w": torch.zeros(2), "b": torch.zeros(1)}, "bare state dict of 2 tensors"),
        ({"epoch": 1, "loops": {}}, "not a spoof-lightning checkpoint"),
        ([torch.zeros(1)], "holds a list"),
    ],
    ids=["text", "empty", "pickled-module", "bare-state-dict", "other-dict", "list"],
)
def test_files_that_are_not_checkpoints_are_refused_by_name(
    tmp_path: Path, content: Any, expected: str
):
    path = _write(tmp_path / "thing.ckpt", content)
    with pytest.raises(CheckpointError, match="thing.ckpt") as error:
        load_countermeasure(path)
    assert expected in str(error.value)


def test_a_truncated_checkpoint_is_refused(tmp_path: Path, ckpt: Path):
    path = tmp_path / "cut.ckpt"
    path.write_bytes(ckpt.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match=r"cannot read .*cut\.ckpt .*truncated or corrupt"):
        load_countermeasure(path)


def test_missing_paths_name_the_config_key(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"nope\.ckpt not found \(set `ckpt=`\)"):
        load_countermeasure(tmp_path / "nope.ckpt")
    with pytest.raises(FileNotFoundError, match="is a directory"):
        load_countermeasure(tmp_path)


def _tampered(net: Countermeasure, change: str) -> dict[str, Any]:
    checkpoint = lightning_checkpoint(net)
    state = checkpoint["state_dict"]
    key = "model.stem.weight"
    if change == "missing":
        del state[key]
    elif change == "unexpected":
        state["model.extra_head.weight"] = torch.zeros(2, 8)
    elif change == "shape":
        state[key] = torch.zeros(3, *state[key].shape[1:])
    elif change == "nan":
        state[key] = torch.full_like(state[key], float("nan"))
    return checkpoint


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("missing", "1 weights missing (model.stem.weight)"),
        ("unexpected", "1 unexpected weights (model.extra_head.weight)"),
        ("shape", "1 weights of another shape (model.stem.weight: file [3,"),
        ("nan", "1 weights hold NaN or inf (model.stem.weight)"),
    ],
)
def test_weights_that_do_not_fit_are_refused(
    tmp_path: Path, net: Countermeasure, change: str, expected: str
):
    path = _write(tmp_path / f"{change}.ckpt", _tampered(net, change))
    with pytest.raises(CheckpointError, match=f"{change}.ckpt") as error:
        load_countermeasure(path)
    assert expected in str(error.value)


def test_weights_from_another_model_are_refused(tmp_path: Path, net: Countermeasure):
    checkpoint = lightning_checkpoint(net)
    checkpoint["hyper_parameters"]["model"] = MODEL | {"gru_hidden": 16}
    path = _write(tmp_path / "other.ckpt", checkpoint)
    with pytest.raises(CheckpointError, match=r"does not fit frontend=lfcc model=cnn_gru") as err:
        load_countermeasure(path)
    assert "weights of another shape" in str(err.value)


def test_an_unbuildable_stored_config_is_refused(tmp_path: Path, net: Countermeasure):
    checkpoint = lightning_checkpoint(net)
    checkpoint["hyper_parameters"]["model"] = MODEL | {"no_such_option": 1}
    path = _write(tmp_path / "odd.ckpt", checkpoint)
    with pytest.raises(CheckpointError, match=r"(?s)odd\.ckpt: cannot rebuild .*no_such_option"):
        load_countermeasure(path)


def test_a_requested_model_must_match_the_checkpoint(ckpt: Path):
    loaded = load_countermeasure(ckpt)
    check_request(loaded, "model", MODEL)  # the same config: accepted
    aasist = component("model", "aasist")
    with pytest.raises(CheckpointError) as error:
        check_request(loaded, "model", aasist, "aasist")
    message = str(error.value)
    assert str(ckpt) in message and "holds model=cnn_gru" in message
    assert "requested model=aasist (spoof_lightning.models.aasist.AASIST)" in message
    with pytest.raises(CheckpointError, match=r"model.gru_hidden: checkpoint 8, requested 32"):
        check_request(loaded, "model", MODEL | {"gru_hidden": 32}, "cnn_gru")
    with pytest.raises(CheckpointError, match=r"frontend.n_lfcc: checkpoint 20, requested 30"):
        check_request(loaded, "frontend", FRONTEND | {"n_lfcc": 30}, "lfcc")


def test_export_keeps_only_inference_parts(tmp_path: Path, ckpt: Path, net: Countermeasure):
    out = export_model(ckpt, tmp_path / "exported" / "model.pt")
    content = torch.load(out, map_location="cpu", weights_only=True)
    assert content["format"] == EXPORT_FORMAT
    assert content["eer_threshold"] == pytest.approx(0.25)
    assert set(content["state_dict"]) == set(net.state_dict())  # no loss, no threshold buffer
    assert "optimizer_states" not in content and "loss" not in content
    assert content["config"] == {"sample_rate": 16000, "data": {"_target_": "x.Y", "root": "/d"}}

    loaded = load_countermeasure(out)
    x = torch.randn(2, 6000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(loaded.net.score(x), net.score(x), rtol=0, atol=0)
    assert loaded.describe() == "frontend=lfcc model=cnn_gru"


def test_export_command_line(tmp_path: Path, ckpt: Path, capsys: pytest.CaptureFixture):
    main([f"ckpt={ckpt}", f"out={tmp_path / 'm.pt'}"])
    assert "exported frontend=lfcc model=cnn_gru" in capsys.readouterr().out
    assert (tmp_path / "m.pt").is_file()
    with pytest.raises(SystemExit) as exit_code:  # bad input: usage, exit 2
        main([f"ckpt={ckpt}"])
    assert exit_code.value.code == 2
    assert "usage: spoof-lightning export" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_code:
        main([f"ckpt={tmp_path / 'missing.ckpt'}", f"out={tmp_path / 'x.pt'}"])
    assert exit_code.value.code == 2
    assert re.search(r"error: .*missing\.ckpt not found", capsys.readouterr().err)
