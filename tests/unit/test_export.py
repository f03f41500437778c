"""ONNX / TorchScript exports give the checkpoint's logits at any length; the infer command."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from spoof_lightning.build import ConfigError, build_components
from spoof_lightning.checkpoint import Countermeasure, load_countermeasure
from spoof_lightning.export import export_model, read_calibration
from spoof_lightning.graph_export import METADATA_FILE, ExportError, verify
from spoof_lightning.infer import Scorer
from spoof_lightning.infer import main as infer
from tests.tiny_configs import TINY_WAV2VEC2, TINY_WAVLM

CONF = Path(__file__).resolve().parents[2] / "conf"
CROP = 4000
LENGTHS = (CROP, 2911, 6007)  # the traced length, a shorter and a longer one


def component(group: str, name: str, **overrides: Any) -> dict[str, Any]:
    root = OmegaConf.merge(
        {"sample_rate": 16000, "c": OmegaConf.load(CONF / group / f"{name}.yaml")},
        {"c": overrides},
    )
    return OmegaConf.to_container(root, resolve=True)["c"]


# family: (frontend, its overrides, model, its overrides); tiny sizes, every front-end kind
FAMILIES = {
    "cnn_gru_raw": ("raw", {}, "cnn_gru", {}),
    "cnn_gru_lfcc": ("lfcc", {}, "cnn_gru", {}),
    "aasist_l_sinc": ("sinc", {"n_filters": 20}, "aasist_l", {}),
    "inc_tssdnet": ("raw", {}, "inc_tssdnet", {}),
    "se_res2net_mel": ("mel", {"n_mels": 40}, "se_res2net50", {"layers": [1, 1, 1, 1]}),
    "se_res2net_cqt": ("cqt", {}, "se_res2net50", {"layers": [1, 1, 1, 1]}),
    "se_res2net_spectrogram": ("spectrogram", {}, "se_res2net50", {"layers": [1, 1, 1, 1]}),
    "ssl_aasist_wav2vec2": ("wav2vec2", TINY_WAV2VEC2, "ssl_aasist", {"proj_dim": 16}),
    "ssl_aasist_wavlm_sls": (
        "wav2vec2",
        TINY_WAVLM | {"layer": "sls"},
        "ssl_aasist",
        {"proj_dim": 16},
    ),
    "frame_localizer": ("raw", {}, "frame_localizer", {"frame_hop": 0.02}),
}
# One family per kind of front-end runs by default; the others are marked slow (CI runs them).
SLOW = {
    "inc_tssdnet",
    "se_res2net_mel",
    "se_res2net_cqt",
    "se_res2net_spectrogram",
    "ssl_aasist_wavlm_sls",
    "frame_localizer",
}


def checkpoint(tmp_path: Path, family: str, threshold: float = 0.5) -> tuple[Path, Countermeasure]:
    """A train.py-like checkpoint of a random tiny model, scored on CROP-sample crops."""
    fe, fe_over, model, model_over = FAMILIES[family]
    frontend, model = component("frontend", fe, **fe_over), component("model", model, **model_over)
    torch.manual_seed(0)
    net = Countermeasure(*build_components(frontend, model)).eval()
    content = {
        "state_dict": {**net.state_dict(), "eer_threshold": torch.tensor(threshold)},
        "hyper_parameters": {"frontend": frontend, "model": model, "names": {"model": family}},
        "spoof_lightning_config": {
            "sample_rate": 16000,
            "data": {"_target_": "x.Y", "eval_crop": CROP, "pad": "repeat"},
        },
    }
    path = tmp_path / "best.ckpt"
    torch.save(content, path)
    return path, net


def logits(net: Countermeasure, wave: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(wave)).logits.numpy()


@pytest.mark.parametrize(
    "family",
    [pytest.param(f, marks=pytest.mark.slow) if f in SLOW else f for f in FAMILIES],
)
def test_exports_give_the_checkpoint_logits_at_three_lengths(tmp_path: Path, family: str) -> None:
    ckpt, net = checkpoint(tmp_path, family)
    onnx_path = export_model(ckpt, format="onnx")
    ts_path = export_model(ckpt, format="torchscript")
    assert onnx_path == tmp_path / "best.onnx" and ts_path == tmp_path / "best.ts"
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [d for d in session.get_inputs()[0].shape] == ["batch", "time"]  # dynamic axes
    script = torch.jit.load(str(ts_path))
    rng = np.random.default_rng(1)
    for length in LENGTHS:
        wave = (0.1 * rng.standard_normal((2, length))).astype(np.float32)
        expected = logits(net, wave)
        got_onnx = session.run(None, {"waveform": wave})[0]
        with torch.no_grad():
            got_ts = script(torch.from_numpy(wave)).numpy()
        assert np.abs(got_onnx - expected).max() <= 1e-4, (family, length)
        assert np.abs(got_ts - expected).max() <= 1e-4, (family, length)


def test_metadata_travels_with_the_graph(tmp_path: Path) -> None:
    ckpt, _ = checkpoint(tmp_path, "cnn_gru_raw", threshold=0.25)
    metrics = tmp_path / "test_metrics.json"
    metrics.write_text(json.dumps({"calibration": {"scale": 2.0, "offset": -1.0, "prior": 0.5}}))
    calibration = read_calibration(metrics)
    model = onnx.load(str(export_model(ckpt, format="onnx", calibration=calibration)))
    props = {p.key: p.value for p in model.metadata_props}
    assert float(props["eer_threshold"]) == pytest.approx(0.25)
    assert props["calibration_scale"] == "2.0" and props["calibration_offset"] == "-1.0"
    assert props["sample_rate"] == "16000" and props["eval_crop"] == str(CROP)
    assert props["model"] == "frontend=RawFrontEnd model=cnn_gru_raw"
    files = {METADATA_FILE: ""}
    torch.jit.load(str(export_model(ckpt, format="torchscript")), _extra_files=files)
    assert json.loads(files[METADATA_FILE])["eer_threshold"] == props["eer_threshold"]
    exported = load_countermeasure(
        export_model(ckpt, out=tmp_path / "m.pt", calibration=calibration)
    )
    assert exported.calibration == {"scale": 2.0, "offset": -1.0, "prior": 0.5}


def test_export_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    ckpt, _ = checkpoint(tmp_path, "cnn_gru_raw")
    (tmp_path / "best.onnx").write_text("an earlier export")
    with pytest.raises(ConfigError, match=r"best\.onnx exists; exports never overwrite"):
        export_model(ckpt, format="onnx")
    assert (tmp_path / "best.onnx").read_text() == "an earlier export"
    with pytest.raises(ConfigError, match="format='tflite'"):
        export_model(ckpt, format="tflite")
    (tmp_path / "plain.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds no calibration.*calibrate=true"):
        read_calibration(tmp_path / "plain.json")
    assert not list(tmp_path.glob(".partial-*"))  # nothing half-written left


class LengthBaked(nn.Module):
    """A model whose trace bakes the input length in (a Python int): it cannot export."""

    def forward(self, x: Tensor) -> Any:
        class Out:
            logits = x[:, :2] * float(x.shape[-1])

        return Out()


def test_a_graph_that_does_not_generalise_is_refused(tmp_path: Path) -> None:
    net = Countermeasure(nn.Identity(), LengthBaked()).eval()
    graph = torch.jit.trace(lambda w: net(w).logits, (torch.zeros(1, 100),), check_trace=False)

    def run(wave: np.ndarray) -> np.ndarray:
        return graph(torch.from_numpy(wave)).detach().numpy()

    assert verify(run, net, [100], "TorchScript") <= 1e-6
    with pytest.raises(ExportError, match="at 50 samples.*does not generalise"):
        verify(run, net, [100, 50], "TorchScript")


def write_wavs(folder: Path, n: int = 3) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i, length in enumerate((CROP + 500, CROP - 900, 3 * CROP)[:n]):
        path = folder / f"utt{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(length)).astype(np.float32), 16000, "FLOAT")
        paths.append(path)
    return paths


def test_infer_prints_the_same_scores_for_every_format(tmp_path: Path, capsys) -> None:
    ckpt, net = checkpoint(tmp_path, "cnn_gru_lfcc", threshold=0.0)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"calibration": {"scale": 0.5, "offset": 0.2, "prior": 0.5}}))
    calibration = read_calibration(metrics)
    models = [
        ckpt,
        export_model(ckpt, out=tmp_path / "m.pt", calibration=calibration),
        export_model(ckpt, format="onnx", calibration=calibration),
        export_model(ckpt, format="torchscript", calibration=calibration),
    ]
    wavs = write_wavs(tmp_path)
    scorer = Scorer.load(ckpt)
    expected = [logits(net, scorer.waveform(w)) for w in wavs]  # crop / pad as eval.py
    expected_scores = [float(e[0, 1] - e[0, 0]) for e in expected]
    for model in models:
        infer([str(model), *map(str, wavs)])
        lines = capsys.readouterr().out.strip().splitlines()
        calibrated = model != ckpt
        assert lines[0].split("\t") == ["file", "score", "decision"] + (
            ["p_bonafide"] if calibrated else []
        )
        for line, wav, score in zip(lines[1:], wavs, expected_scores, strict=True):
            fields = line.split("\t")
            assert fields[0] == str(wav)
            assert float(fields[1]) == pytest.approx(score, abs=1e-4)
            assert fields[2] == ("bonafide" if score > 0.0 else "spoof")
            if calibrated:
                assert float(fields[3]) == pytest.approx(
                    1 / (1 + np.exp(-(0.5 * score + 0.2))), abs=1e-4
                )


def test_infer_reports_a_bad_file_and_exits_2(tmp_path: Path, capsys) -> None:
    ckpt, _ = checkpoint(tmp_path, "cnn_gru_raw")
    good = write_wavs(tmp_path, 1)[0]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really audio")
    with pytest.raises(SystemExit) as exit_code:
        infer([str(ckpt), str(broken), str(tmp_path / "missing.flac"), str(good)])
    assert exit_code.value.code == 2
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.strip().splitlines()] == ["file", str(good)]
    errors = err.strip().splitlines()
    assert len(errors) == 2 and "broken.wav" in errors[0] and "missing.flac" in errors[1]
    with pytest.raises(SystemExit) as exit_code:
        infer([str(tmp_path / "nope.onnx"), str(good)])
    assert exit_code.value.code == 2 and "nope.onnx" in capsys.readouterr().err
