"""Score files (2019 CM, 2021 submission, CSV, 2019 ASV), id joins and the evaluation report."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from spoof_lightning.metrics.eer import compute_eer
from spoof_lightning.metrics.report import evaluate, evaluate_rows, format_report
from spoof_lightning.metrics.scores import (
    ScoreFileError,
    asv_scores_from_rows,
    join_scores,
    read_asv_scores_2019,
    read_asv_trials_2021,
    read_cm_scores_2019,
    read_scores_2021,
    read_scores_csv,
    write_cm_scores_2019,
    write_scores_2021,
    write_scores_csv,
)
from spoof_lightning.metrics.tdcf import AsvScores, min_tdcf_2019, min_tdcf_2021


@dataclass(frozen=True)
class Entry:  # shaped like data.protocols.Utterance
    utt_id: str
    path: Path
    label: int
    speaker: str = "-"
    attack: str = "-"
    meta: dict = field(default_factory=dict)


PROTOCOL = [
    Entry("LA_E_1", Path("a/LA_E_1.flac"), 1, "LA_0001", "-", {"codec": "alaw"}),
    Entry("LA_E_2", Path("a/LA_E_2.flac"), 0, "LA_0001", "A07", {"codec": "alaw"}),
    Entry("LA_E_3", Path("a/LA_E_3.flac"), 0, "LA_0002", "A08", {"codec": "none"}),
    Entry("LA_E_4", Path("a/LA_E_4.flac"), 1, "LA_0002", "-", {"codec": "none"}),
]
SCORES = {"LA_E_3": -1.25, "LA_E_1": 0.1 + 0.2, "LA_E_4": 2.5, "LA_E_2": 1 / 3}


def test_join_is_by_id_not_order() -> None:
    rows = join_scores(SCORES, PROTOCOL)
    assert [r["utt_id"] for r in rows] == ["LA_E_1", "LA_E_2", "LA_E_3", "LA_E_4"]
    assert [r["score"] for r in rows] == [0.1 + 0.2, 1 / 3, -1.25, 2.5]
    assert rows[1]["codec"] == "alaw" and rows[1]["path"] == "a/LA_E_2.flac"
    assert join_scores({"x": 1.0}, [{"utt_id": "x", "label": 1}]) == [
        {"utt_id": "x", "label": 1, "score": 1.0}
    ]


def test_join_reports_missing_ids_on_both_sides() -> None:
    scores = {f"extra{i}": 0.0 for i in range(7)} | {"LA_E_1": 1.0}
    with pytest.raises(ValueError) as error:
        join_scores(scores, PROTOCOL)
    message = str(error.value)
    assert "3 protocol utterances have no score (LA_E_2, LA_E_3, LA_E_4)" in message
    assert (
        "7 scored utterances are not in the protocol "
        "(extra0, extra1, extra2, extra3, extra4, ... (2 more))" in message
    )
    with pytest.raises(ValueError, match="1 utterance ids repeat in the protocol: LA_E_1"):
        join_scores(SCORES, [*PROTOCOL, PROTOCOL[0]])


def test_2019_cm_file_round_trip(tmp_path: Path) -> None:
    rows = join_scores(SCORES, PROTOCOL)
    path = write_cm_scores_2019(tmp_path / "cm.txt", rows)
    lines = path.read_text().splitlines()
    assert lines[0] == f"LA_E_1 - bonafide {0.1 + 0.2!r}"
    assert lines[1].startswith("LA_E_2 A07 spoof ")
    back = read_cm_scores_2019(path)
    assert [(r["utt_id"], r["attack"], r["label"], r["score"]) for r in back] == [
        (r["utt_id"], r["attack"], r["label"], r["score"]) for r in rows
    ]  # scores exact: repr round-trips


def test_2021_and_csv_round_trip(tmp_path: Path) -> None:
    assert read_scores_2021(write_scores_2021(tmp_path / "s.txt", SCORES)) == SCORES
    rows = join_scores(SCORES, PROTOCOL)
    back = read_scores_csv(write_scores_csv(tmp_path / "s.csv", rows))
    header = (tmp_path / "s.csv").read_text().splitlines()[0]
    assert header == "utt_id,path,label,speaker,attack,codec,score"
    assert back == [r | {"speaker": r["speaker"]} for r in rows]


def test_reader_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("LA_E_1 - bonafide 1.0\nLA_E_2 A07 fake 0.5\n")
    with pytest.raises(ScoreFileError, match=r"bad.txt:2: key 'fake'"):
        read_cm_scores_2019(bad)
    bad.write_text("LA_E_1 0.5\nLA_E_1 0.7\n")
    with pytest.raises(ScoreFileError, match=r"bad.txt:2: utterance 'LA_E_1' is scored twice"):
        read_scores_2021(bad)
    bad.write_text("LA_E_1 nan\n")
    with pytest.raises(ScoreFileError, match=r"bad.txt:1: score 'nan' is not finite"):
        read_scores_2021(bad)
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        read_scores_2021(tmp_path / "nothere.txt")


def test_read_asv_scores_both_layouts(tmp_path: Path) -> None:
    dataset_layout = tmp_path / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    dataset_layout.write_text(
        "bonafide target 2.5\nbonafide nontarget -3.0\nA07 spoof 0.4\nA08 spoof 1.5\n"
    )
    package_layout = tmp_path / "ASVspoof2019_LA_eval_asv_scores.txt"
    package_layout.write_text(
        "LA_0015 LA_E_1 - bonafide target 2.5\nLA_0015 LA_E_2 - bonafide nontarget -3.0\n"
        "LA_0015 LA_E_3 - A07 spoof 0.4\nLA_0015 LA_E_4 - A08 spoof 1.5\n"
    )
    for path in (dataset_layout, package_layout):
        asv = read_asv_scores_2019(path)
        assert asv.target.tolist() == [2.5] and asv.nontarget.tolist() == [-3.0]
        assert asv.spoof.tolist() == [0.4, 1.5] and asv.spoof_attacks == ("A07", "A08")
        assert asv.for_attack("A08").spoof.tolist() == [1.5]
    package_layout.write_text("bonafide impostor 1.0\n")
    with pytest.raises(ScoreFileError, match="1: ASV key 'impostor'"):
        read_asv_scores_2019(package_layout)


def _synthetic(seed: int = 0, n: int = 400) -> dict:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    attacks = np.where(labels == 1, "-", rng.choice(["A07", "A08"], n))
    scores = rng.normal(2.0 * labels + (attacks == "A08"), 1.0)
    codec = rng.choice(["alaw", "none"], n)
    vocoder = np.where(labels == 1, "-", rng.choice(["neural", "traditional"], n))
    return dict(scores=scores, labels=labels, attacks=attacks, codec=codec, vocoder=vocoder)


def test_evaluate_breakdowns_match_direct_computation() -> None:
    d = _synthetic()
    rng = np.random.default_rng(1)
    asv = AsvScores(
        rng.normal(3, 1, 200), rng.normal(0, 1, 300), rng.normal(2, 1, 100), ("A07", "A08") * 50
    )
    result = evaluate(
        d["scores"], d["labels"], d["attacks"], {"codec": d["codec"], "vocoder": d["vocoder"]}, asv
    )
    bona, spoof = d["scores"][d["labels"] == 1], d["scores"][d["labels"] == 0]
    assert (result["eer"], result["eer_threshold"]) == compute_eer(bona, spoof)
    assert (
        result["min_tdcf"]
        == min_tdcf_2019(bona, spoof, asv.target, asv.nontarget, asv.spoof).min_tdcf
    )
    a08 = d["scores"][d["attacks"] == "A08"]
    assert result["attacks"]["A08"]["eer"] == compute_eer(bona, a08)[0]
    assert (
        result["attacks"]["A08"]["min_tdcf"]
        == min_tdcf_2019(bona, a08, asv.target, asv.nontarget, asv.spoof[1::2]).min_tdcf
    )
    alaw = d["codec"] == "alaw"
    assert (
        result["conditions"]["codec"]["alaw"]["eer"]
        == compute_eer(
            d["scores"][alaw & (d["labels"] == 1)], d["scores"][alaw & (d["labels"] == 0)]
        )[0]
    )
    # spoof-only factor: all bona fide against that vocoder's spoofs
    neural = d["vocoder"] == "neural"
    assert result["conditions"]["vocoder"]["neural"]["n_bonafide"] == bona.size
    assert (
        result["conditions"]["vocoder"]["neural"]["eer"]
        == compute_eer(bona, d["scores"][neural])[0]
    )
    assert set(result["conditions"]["vocoder"]) == {"neural", "traditional"}
    table = format_report(result)
    assert "A08" in table and "min t-DCF (2019)" in table and "traditional" in table
    rows = [
        {"score": s, "label": y, "attack": a, "codec": c}
        for s, y, a, c in zip(d["scores"], d["labels"], d["attacks"], d["codec"], strict=True)
    ]
    assert evaluate_rows(rows, ["codec"])["conditions"]["codec"] == result["conditions"]["codec"]


def test_evaluate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 trials have no bona fide/spoof label"):
        evaluate([0.1, 0.2, 0.3], [1, -1, -1], ["-", "-", "-"])
    with pytest.raises(ValueError, match="spoof class is empty"):
        evaluate([0.1, 0.2], [1, 1], ["-", "-"])
    with pytest.raises(ValueError, match="one entry per trial"):
        evaluate([0.1, 0.2], [1, 0], ["-"])


def _write_asv_2021(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    metadata, scores = [], []
    for index in range(240):
        key = ("target", "nontarget", "spoof")[index % 3]
        codec = ("alaw", "none")[index // 3 % 2]
        attack = "A07" if key == "spoof" else "bonafide"
        subset = "progress" if index >= 216 else "eval"
        mean = {"target": 3.0, "nontarget": 0.0, "spoof": 1.5}[key] + (codec == "alaw")
        metadata.append(f"LA_0001 T{index} {codec} tx {attack} {key} notrim {subset}")
        scores.append(f"LA_0001 T{index} {rng.normal(mean, 1.0)!r}")
    (tmp_path / "trial_metadata.txt").write_text("\n".join(metadata) + "\n")
    (tmp_path / "score.txt").write_text("\n".join(scores[::-1]) + "\n")  # order must not matter
    return tmp_path / "score.txt", tmp_path / "trial_metadata.txt"


def test_2021_asv_trials_and_per_condition_tdcf(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    score_path, metadata_path = _write_asv_2021(tmp_path, rng)
    asv_rows = read_asv_trials_2021(score_path, metadata_path, "LA", "eval")
    assert len(asv_rows) == 216 and {r["phase"] for r in asv_rows} == {"eval"}
    assert asv_rows[0]["codec"] == "alaw" and asv_rows[0]["key"] == "target"
    d = _synthetic()
    rows = [
        {"score": s, "label": y, "attack": a, "codec": c}
        for s, y, a, c in zip(d["scores"], d["labels"], d["attacks"], d["codec"], strict=True)
    ]
    result = evaluate_rows(rows, ["codec"], asv=asv_rows, tdcf="2021")
    alaw_asv = asv_scores_from_rows(asv_rows, {"codec": "alaw"})
    assert alaw_asv.target.size == alaw_asv.spoof.size == 36
    alaw = d["codec"] == "alaw"
    expected = min_tdcf_2021(
        d["scores"][alaw & (d["labels"] == 1)],
        d["scores"][alaw & (d["labels"] == 0)],
        alaw_asv.target,
        alaw_asv.nontarget,
        alaw_asv.spoof,
    ).min_tdcf
    assert result["conditions"]["codec"]["alaw"]["min_tdcf"] == expected
    pooled = asv_scores_from_rows(asv_rows)
    assert (
        result["min_tdcf"]
        == min_tdcf_2021(
            d["scores"][d["labels"] == 1],
            d["scores"][d["labels"] == 0],
            pooled.target,
            pooled.nontarget,
            pooled.spoof,
        ).min_tdcf
    )
    assert "t-DCF" in format_report(result).split("codec")[1]
    (tmp_path / "score.txt").write_text("LA_0001 T0 1.0\n")
    with pytest.raises(ValueError, match="215 eval ASV trials .* have no score"):
        read_asv_trials_2021(score_path, metadata_path)
