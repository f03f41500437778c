"""eval.py's pipeline: id joins, metrics summary, calibration, output files, HAD localisation
(batch scoring: test_scoring.py)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from torch import Tensor, nn

from spoof_lightning.build import ConfigError, build_components
from spoof_lightning.checkpoint import Countermeasure
from spoof_lightning.contracts import ModelOutput
from spoof_lightning.data.protocols import Utterance
from spoof_lightning.evaluation import evaluate
from spoof_lightning.metrics import localization
from spoof_lightning.metrics.calibration import LogisticCalibration, cllr
from spoof_lightning.metrics.report import evaluate_rows
from spoof_lightning.metrics.scores import read_cm_scores_2019, read_scores_2021, read_scores_csv
from spoof_lightning.metrics.summary import (
    add_decisions,
    calibrate_rows,
    condition_columns,
    join_rows,
    localization_metrics,
    split_metrics,
)
from spoof_lightning.outputs import format_report, write_outputs
from spoof_lightning.scoring import ScoreSet, UttScore

CONF = Path(__file__).resolve().parents[2] / "conf"
HOP = 320  # 20 ms at 16 kHz: HAD's data.frame_hop


@dataclass
class FrameOutput(ModelOutput):
    """A model output with a frame head (the contract evaluation.py looks for)."""

    frame_logits: Tensor | None = None


class EnergyModel(nn.Module):
    """A parameter-free stand-in: loud frames are 'fake'. The utterance score is the mean
    over frames, so zero padding would change it; with ``frame_head`` it also gives
    ``frame_logits`` ``[B, F, 2]`` on the 20 ms grid."""

    accepts: ClassVar[frozenset[str]] = frozenset({"waveform"})

    def __init__(self, in_channels: int, frame_head: bool = True) -> None:
        super().__init__()
        self.frame_head = frame_head

    def forward(self, features: Tensor) -> ModelOutput:
        x = features[:, 0]
        frames = -(-x.shape[1] // HOP)
        x = nn.functional.pad(x, (0, frames * HOP - x.shape[1]))
        energy = x.abs().reshape(x.shape[0], frames, HOP).mean(-1)
        logits = torch.stack([energy.mean(1), -energy.mean(1)], dim=-1)
        frame_logits = torch.stack([energy, -energy], dim=-1) if self.frame_head else None
        return FrameOutput(logits, energy.mean(1, keepdim=True), frame_logits=frame_logits)


RAW = {"_target_": "spoof_lightning.frontends.raw.RawFrontEnd", "sample_rate": 16000}
ENERGY = {"_target_": f"{__name__}.EnergyModel"}


def energy_net(frame_head: bool = True) -> Countermeasure:
    return Countermeasure(*build_components(RAW, ENERGY | {"frame_head": frame_head})).eval()


# ------------------------------------------------------------------ rows


def _utterances(n_bona: int = 3, n_spoof: int = 5) -> list[Utterance]:
    codecs = ["alaw", "gsm"]
    return [
        Utterance(
            f"U{i}",
            Path(f"/a/U{i}.flac"),
            int(i < n_bona),
            speaker=f"S{i % 2}",
            attack="-" if i < n_bona else f"A{7 + i % 2:02d}",
            meta={"codec": codecs[i % 2], "trim": "notrim", "phase": "eval"},
        )
        for i in range(n_bona + n_spoof)
    ]


def _scores(utterances: list[Utterance], seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {u.utt_id: float(rng.normal(2.0 * u.label)) for u in reversed(utterances)}


def test_rows_join_by_id_and_mismatches_are_errors():
    utterances = _utterances()
    scores = _scores(utterances)
    rows, unscored = join_rows(scores, utterances, "demo test", skip_unscored=False)
    assert [r["utt_id"] for r in rows] == [u.utt_id for u in utterances]  # protocol order
    assert all(r["score"] == scores[r["utt_id"]] for r in rows) and unscored == []
    assert rows[0]["codec"] == "alaw" and rows[0]["path"] == "/a/U0.flac"

    missing = {k: v for k, v in scores.items() if k != "U4"}
    with pytest.raises(
        ValueError, match=r"demo test: .*1 protocol utterances have no score \(U4\)"
    ):
        join_rows(missing, utterances, "demo test", skip_unscored=False)
    rows, unscored = join_rows(missing, utterances, "demo test", skip_unscored=True)
    assert unscored == ["U4"] and len(rows) == len(utterances) - 1
    extra = scores | {"X1": 0.0, "X2": 1.0}
    for skip in (False, True):
        with pytest.raises(ValueError, match=r"2 scored utterances are not in the protocol"):
            join_rows(extra, utterances, "demo test", skip_unscored=skip)


def test_condition_columns():
    rows, _ = join_rows(_scores(_utterances()), _utterances(), "x", False)
    assert condition_columns(rows, "auto") == ["codec"]  # trim/phase are constant
    assert condition_columns(rows, ["trim"]) == ["trim"]
    assert condition_columns(rows, None) == []
    with pytest.raises(ConfigError, match=r"conditions: columns \['codecs'\]"):
        condition_columns(rows, ["codecs"])


def test_split_metrics_match_the_report_and_the_threshold_rates():
    utterances = _utterances(20, 40)
    rows, _ = join_rows(_scores(utterances), utterances, "x", False)
    add_decisions(rows, 1.0)
    metrics = split_metrics(rows, "auto", threshold=1.0)
    expected = evaluate_rows(rows, ["codec"])
    assert {k: metrics[k] for k in expected} == expected
    assert metrics["eer_percent"] == 100 * expected["eer"]
    bona = np.array([r["score"] for r in rows if r["label"] == 1])
    spoof = np.array([r["score"] for r in rows if r["label"] == 0])
    assert metrics["at_threshold"] == {
        "threshold": 1.0,
        "bonafide_miss_rate": np.mean(bona <= 1.0),
        "spoof_accept_rate": np.mean(spoof > 1.0),
    }
    n_bona = sum(r["decision"] == "bonafide" for r in rows)
    assert metrics["decisions"] == {"bonafide": n_bona, "spoof": len(rows) - n_bona}


def test_unlabelled_rows_get_decisions_but_no_metrics(tmp_path: Path):
    rows = [{"utt_id": f"f{i}.wav", "label": -1, "score": s} for i, s in enumerate([-1, 0.5, 2])]
    add_decisions(rows, 0.5)
    assert [r["decision"] for r in rows] == ["spoof", "spoof", "bonafide"]  # score > threshold
    metrics = split_metrics(rows, threshold=0.5)
    assert "eer" not in metrics and metrics["n_unlabelled"] == 3
    files = write_outputs(tmp_path, "test", rows, metrics)
    assert set(files) == {"submission", "csv", "metrics"}  # no 2019 file, no plots
    assert read_scores_2021(files["submission"]) == {"f0.wav": -1.0, "f1.wav": 0.5, "f2.wav": 2.0}
    assert [r["decision"] for r in read_scores_csv(files["csv"])] == ["spoof", "spoof", "bonafide"]


def test_ids_with_spaces_go_to_the_csv_only(tmp_path: Path):
    rows = [{"utt_id": "my clip.wav", "label": -1, "score": 0.1}]
    files = write_outputs(tmp_path, "test", rows, split_metrics(rows))
    assert "submission" not in files
    assert read_scores_csv(files["csv"])[0]["utt_id"] == "my clip.wav"


def test_labelled_outputs_round_trip(tmp_path: Path):
    utterances = _utterances(10, 20)
    rows, _ = join_rows(_scores(utterances), utterances, "x", False)
    metrics = split_metrics(rows)
    files = write_outputs(tmp_path, "val", rows, metrics, system="m", title="t")
    assert {p.name for p in files.values()} == {
        "val_scores.txt", "val_submission.txt", "val_scores.csv", "val_metrics.json",
        "val_det.png", "val_score_hist.png",
    }  # fmt: skip
    cm_rows = read_cm_scores_2019(files["scores"])
    assert [(r["utt_id"], r["label"], r["score"]) for r in cm_rows] == [
        (r["utt_id"], r["label"], r["score"]) for r in rows
    ]
    assert json.loads(files["metrics"].read_text()) == split_metrics(read_scores_csv(files["csv"]))
    for name in ("det", "hist"):
        assert files[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibration_on_dev_gives_llrs_and_costs():
    dev_utts, eval_utts = _utterances(30, 60), _utterances(20, 40)
    dev, _ = join_rows(_scores(dev_utts, seed=1), dev_utts, "dev", False)
    rows, _ = join_rows(_scores(eval_utts, seed=2), eval_utts, "eval", False)
    result = calibrate_rows(dev, rows)
    fitted = LogisticCalibration.fit(
        [r["score"] for r in dev if r["label"] == 1], [r["score"] for r in dev if r["label"] == 0]
    )
    assert (result["scale"], result["offset"]) == (fitted.scale, fitted.offset)
    assert result["scale"] > 0
    assert [r["llr"] for r in rows] == pytest.approx(list(fitted([r["score"] for r in rows])))
    bona = [r["llr"] for r in rows if r["label"] == 1]
    spoof = [r["llr"] for r in rows if r["label"] == 0]
    assert result["cllr"] == cllr(bona, spoof) and result["min_cllr"] <= result["cllr"]
    assert 0 <= result["min_dcf"] <= result["act_dcf"]
    one_class = [r for r in dev if r["label"] == 0]
    with pytest.raises(ValueError, match="calibrate=true needs bona fide and spoof"):
        calibrate_rows(one_class, rows)


# ------------------------------------------------------------------ localisation


def test_localization_metrics_are_the_localization_module_s():
    rng = np.random.default_rng(3)
    rows, scored = [], ScoreSet()
    for i in range(4):
        labels = np.array([1] * 5 + [0] * 5 + [1] * 5) if i % 2 else np.ones(15, dtype=int)
        segments = "0.00-0.10-T/0.10-0.20-F/0.20-0.30-T" if i % 2 else "0.00-0.30-T"
        rows.append({"utt_id": f"h{i}", "label": 1 - i % 2, "segments": segments, "score": 0.0})
        frames = rng.normal(size=15) + 2 * labels
        scored.add([UttScore(f"h{i}", 0.0, frame_scores=frames, frame_labels=labels)])
    result = localization_metrics(scored, rows, frame_hop=0.02)
    frames = [scored.frame_scores[r["utt_id"]] for r in rows]
    labels = [scored.frame_labels[r["utt_id"]] for r in rows]
    assert (result["frame_eer"], result["frame_eer_threshold"]) == localization.frame_eer(
        frames, labels
    )
    segments = [[(0.0, 0.1, 1), (0.1, 0.2, 0), (0.2, 0.3, 1)] if i % 2 else [(0.0, 0.3, 1)]
                for i in range(4)]  # fmt: skip
    assert result["range_eer"] == localization.range_eer(frames, segments, 0.02)[0]
    assert localization_metrics(ScoreSet(), rows, 0.02) == {
        "available": False,
        "reason": "the model has no frame-level head",
    }
    assert localization_metrics(ScoreSet(), [{"utt_id": "a"}], None) is None


def write_had_test_split(root: Path) -> Path:
    """HAD layout with quiet genuine speech and loud fake segments on the 20 ms grid."""
    split_dir = root / "HAD" / "HAD_test"
    rng = np.random.default_rng(0)
    lines = []
    for i in range(6):
        n = HOP * (30 + 5 * i)
        x = rng.uniform(-0.05, 0.05, n)
        real = i < 3
        utt = f"HAD_test_{'real' if real else 'fake'}_{i:08d}"
        if real:
            segments = f"0.00-{n / 16000:.2f}-T"
        else:
            x[10 * HOP : 20 * HOP] *= 10
            segments = f"0.00-0.20-T/0.20-0.40-F/0.40-{n / 16000:.2f}-T"
        (split_dir / "test").mkdir(parents=True, exist_ok=True)
        sf.write(split_dir / "test" / f"{utt}.wav", x, 16000, subtype="FLOAT")
        lines.append(f"{utt} {segments} {int(real)}")
    (split_dir / "HAD_test_label.txt").write_text("\n".join(lines) + "\n")
    return root


def eval_config(*overrides: str) -> Any:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("eval", overrides=list(overrides))


@pytest.mark.parametrize("frame_head", [True, False])
def test_had_eval_end_to_end(tmp_path: Path, frame_head: bool):
    root = write_had_test_split(tmp_path / "had")
    ckpt = tmp_path / "energy.ckpt"
    torch.save(
        {
            "state_dict": {"eer_threshold": torch.tensor(-0.1)},
            "hyper_parameters": {"frontend": RAW, "model": ENERGY | {"frame_head": frame_head}},
            "spoof_lightning_config": {"sample_rate": 16000},
        },
        ckpt,
    )
    common = [f"ckpt={ckpt}", f"output_dir={tmp_path / 'out'}", "progress_bar=false"]
    with pytest.raises(ConfigError, match=r"energy\.ckpt stores no data config: pass data="):
        evaluate(eval_config(*common))
    data = [f"data.root={root}", "data.eval_crop=null", "data.num_workers=0", "data.batch_size=4"]
    data += ["data.persistent_workers=false", "data.pin_memory=false", "accelerator=cpu"]
    report = evaluate(eval_config(*common, "data=had", *data))
    metrics = report["metrics"]
    assert metrics["corpus"] == "had" and metrics["n_trials"] == 6
    assert metrics["eer"] == 0.0 and metrics["attacks"]["partial"]["eer"] == 0.0
    assert metrics["decisions"] == {"bonafide": 3, "spoof": 3}  # score > -0.1
    rows = read_scores_csv(report["files"]["csv"])
    assert {"segments", "decision"} <= set(rows[0])
    located = metrics["localization"]
    text = format_report(report)
    if not frame_head:
        assert located == {"available": False, "reason": "the model has no frame-level head"}
        assert "frames" not in report["files"]
        assert "localization: not available" in text
        return
    # loud = fake on the exact 20 ms grid: a perfect localiser
    assert located["frame_eer"] == 0.0
    assert located["range_eer"] == pytest.approx(0.0, abs=1e-12)  # a sum of durations
    assert located["n_utterances"] == 6 and "localization: frame EER 0.000 %" in text
    frames = np.load(report["files"]["frames"])
    lengths = np.diff(frames["offsets"])
    by_id = dict(zip(frames["utt_ids"], lengths, strict=True))
    assert by_id["HAD_test_fake_00000005"] == 55  # one score per 20 ms frame

    # A crop longer than every file: repeat-padding copies the (fake) audio, but its frames
    # are no trials; the frame scores and the localisation results are those of the audio.
    padded = evaluate(eval_config(*common, "data=had", *data, "data.eval_crop=32000"))
    assert padded["metrics"]["localization"] == located
    frames_padded = np.load(padded["files"]["frames"])
    np.testing.assert_array_equal(frames_padded["offsets"], frames["offsets"])
    np.testing.assert_array_equal(frames_padded["scores"], frames["scores"])


def _energy_checkpoint(path: Path, data: dict[str, Any] | None = None) -> Path:
    config: dict[str, Any] = {"sample_rate": 16000} | ({"data": data} if data else {})
    torch.save(
        {
            "state_dict": {"eer_threshold": torch.tensor(float("nan"))},
            "hyper_parameters": {"frontend": RAW, "model": ENERGY},
            "spoof_lightning_config": config,
        },
        path,
    )
    return path


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ("split=train", r"split must be one of \('test', 'val'\), got 'train'"),
        ("tdcf=2020", "tdcf must be 2019 or 2021, got 2020"),
        ("sample_rate=8000", r"sample_rate=8000, but .*energy\.ckpt was trained at 16000 Hz"),
        ("threshold=nan", r"threshold must be a finite number .* or null, got nan"),
        ("threshold=abc", r"threshold must be a finite number .* or null, got 'abc'"),
        ("bootstrap.n_resamples=-1", r"bootstrap must be \{n_resamples: an integer >= 0"),
        ("bootstrap.level=95", r"bootstrap must be .*level: a number in \(0, 1\)"),
        ("metrics=mindcf", r"metrics must be one of .*auto.*asvspoof5.*got 'mindcf'"),
    ],
)
def test_bad_eval_settings_are_refused_by_key(tmp_path: Path, override: str, error: str):
    ckpt = _energy_checkpoint(tmp_path / "energy.ckpt")
    with pytest.raises(ConfigError, match=error):
        evaluate(eval_config(f"ckpt={ckpt}", f"output_dir={tmp_path / 'out'}", override))


def test_unlabelled_folder_with_calibration_needs_a_dev_split(tmp_path: Path):
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "x.wav", np.zeros(3200), 16000)
    ckpt = _energy_checkpoint(tmp_path / "energy.ckpt")
    folder = ["data=folder", f"data.root={audio}", "data.num_workers=0", "accelerator=cpu"]
    folder += ["data.persistent_workers=false", "data.pin_memory=false", "progress_bar=false"]
    common = [f"ckpt={ckpt}", f"output_dir={tmp_path / 'out'}", *folder]
    report = evaluate(eval_config(*common))  # no threshold in the checkpoint: no decisions
    assert report["metrics"]["threshold"]["value"] is None
    assert "decision" not in read_scores_csv(report["files"]["csv"])[0]
    assert "decisions  none: the checkpoint has no dev EER threshold" in format_report(report)
    with pytest.raises(ConfigError, match=r"calibrate=true fits on the val \(dev\) split"):
        evaluate(eval_config(*common, "calibrate=true"))


def test_score_writer_writes_the_eval_files_after_a_test_pass(tmp_path: Path):
    from types import SimpleNamespace

    from spoof_lightning.callbacks.score_writer import ScoreWriter

    items = zip(["u1", "u2", "u3"], [2.0, -1.0, 0.5], [1, 0, 0], ["-", "A01", "A02"], strict=True)
    scores = ScoreSet(UttScore(*item) for item in items)
    module = SimpleNamespace(last_scores={"test": scores}, eer_threshold=torch.tensor(0.0))
    trainer = SimpleNamespace(is_global_zero=True, datamodule=None)
    writer = ScoreWriter(str(tmp_path))
    writer.on_test_end(trainer, module)
    assert writer.written["score_file"] == tmp_path / "test_scores.txt"
    assert [r["score"] for r in read_cm_scores_2019(writer.written["score_file"])] == [2, -1, 0.5]
    metrics = json.loads(writer.written["metrics_file"].read_text())
    assert (metrics["eer_percent"], metrics["n_bonafide"], metrics["n_spoof"]) == (0.0, 1, 2)
    assert metrics["decisions"] == {"bonafide": 2, "spoof": 1}
    assert {"det", "hist", "csv", "submission"} <= writer.written.keys()


def test_asv_scores_feed_the_min_tdcf(tmp_path: Path):
    from omegaconf import OmegaConf

    from spoof_lightning.evaluation import load_asv
    from spoof_lightning.metrics.tdcf import min_tdcf_2019

    rng = np.random.default_rng(4)
    lines = [f"S T{i} - bonafide target {rng.normal(3):.4f}" for i in range(30)]
    lines += [f"S N{i} - bonafide nontarget {rng.normal(-3):.4f}" for i in range(30)]
    lines += [f"S P{i} - A{7 + i % 2:02d} spoof {rng.normal(1):.4f}" for i in range(30)]
    (tmp_path / "asv.txt").write_text("\n".join(lines) + "\n")
    cfg = OmegaConf.create({"asv_scores": str(tmp_path / "asv.txt"), "asv_keys": None})
    asv = load_asv(cfg, {"corpus": "asvspoof2019_la"})
    utterances = _utterances(20, 40)
    rows, _ = join_rows(_scores(utterances), utterances, "x", False)
    metrics = split_metrics(rows, asv=asv, tdcf="2019")
    bona = [r["score"] for r in rows if r["label"] == 1]
    spoof = [r["score"] for r in rows if r["label"] == 0]
    expected = min_tdcf_2019(bona, spoof, asv.target, asv.nontarget, asv.spoof)
    assert metrics["min_tdcf"] == expected.min_tdcf and metrics["tdcf_form"] == "2019"
    assert set(metrics["attacks"]["A07"]) >= {"eer", "min_tdcf"}  # per attack, too
    df = OmegaConf.create({"asv_scores": "s.txt", "asv_keys": "keys.txt"})
    with pytest.raises(ConfigError, match="asv_keys: 2021 ASV keys exist for LA and PA"):
        load_asv(df, {"corpus": "asvspoof2021_df"})
