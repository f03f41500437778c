"""Protocol parsers and official directory layouts, one loader per corpus.

Every loader maps ``(root, split, problems, **options)`` to the :class:`Utterance`
list of a split, in protocol order. Splits are ``train``, ``val`` and ``test``
(ASVspoof's train, dev and eval). Line formats are in ``DESIGN.md``.

A line that does not parse, an unknown key or a repeated utterance id becomes a
:class:`Problem` and the entry is left out; :func:`load_split` raises a
:class:`ProtocolError` listing them all unless the caller passes its own
``problems`` list (the ``skip`` policy of :mod:`spoof_lightning.data.preflight`,
which reports every one). Nothing is dropped silently.

Corpora (registry name -> layout under ``root``):

- ``asvspoof2019_la`` / ``asvspoof2019_pa``: ``{LA,PA}/ASVspoof2019_*_{train,dev,eval}/flac``
  and ``{LA,PA}/ASVspoof2019_*_cm_protocols`` (Wang et al., 2020).
- ``asvspoof2021_la`` / ``_df`` / ``_pa``: ``ASVspoof2021_{LA,DF,PA}_eval/flac`` and the
  keys ``keys/{LA,DF,PA}/CM/trial_metadata.txt``; test split only, the lines whose
  phase column is ``eval`` (option ``phase``) (Liu et al., 2023).
- ``asvspoof5``: ASVspoof 5 track 1, ``ASVspoof5_protocols/ASVspoof5.{train,dev.track_1,
  eval.track_1}.tsv`` and ``flac_{T,D,E_eval}/`` (Wang et al., 2024).
- ``in_the_wild``: In-the-Wild (Müller et al., "Does audio deepfake detection generalize?",
  Interspeech 2022), ``meta.csv`` (``file,speaker,label``) beside the wav files, in ``root``
  or ``root/release_in_the_wild``; evaluation only (test split).
- ``had``: Half-truth Audio Detection (Yi et al., Interspeech 2021),
  ``HAD_{train,dev,test}/HAD_<split>_label.txt`` and wav files anywhere below
  ``HAD_<split>/`` (upstream folders include the misspelling ``conbine``).
- ``folder``: any directory of wav/flac/ogg/mp3, unlabeled or labeled by a CSV.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spoof_lightning.data.audio import AUDIO_EXTENSIONS

BONAFIDE, SPOOF, UNKNOWN = 1, 0, -1
KEYS = {"bonafide": BONAFIDE, "spoof": SPOOF}
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Utterance:
    """One protocol entry. ``label``: 1 bona fide, 0 spoof, -1 unknown (unlabeled audio)."""

    utt_id: str
    path: Path
    label: int
    speaker: str = "-"
    attack: str = "-"
    meta: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Problem:
    """Something wrong with one protocol line or audio file."""

    kind: str  # malformed | unknown_key | duplicate_id | missing_file | unreadable | ...
    source: str  # protocol file (with :line) or audio file
    detail: str
    utt_id: str = ""

    def __str__(self) -> str:
        return f"{self.source}: {self.kind}: {self.detail}"


class ProtocolError(ValueError):
    """A malformed protocol/label file: the message names ``file:line`` and the bad content."""


class SplitUnavailableError(ProtocolError):
    """A split the corpus does not have (e.g. training on an evaluation-only corpus)."""


class MissingDataError(FileNotFoundError):
    """A corpus root, protocol or audio directory that does not exist.

    The message names the path that was expected and the config key to set.
    """

    def __init__(self, what: str, expected: Path, key: str = "data.root") -> None:
        super().__init__(
            f"{what} not found: expected {expected}. Set `{key}` to the directory that "
            f"contains it (e.g. python train.py {key}=/path/to/corpus)."
        )
        self.expected = expected
        self.key = key


def format_problems(problems: list[Problem], limit: int = 20) -> str:
    """A multi-line listing of ``problems`` (at most ``limit`` lines, then a count)."""
    lines = [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)


def _lines(path: Path) -> Iterator[tuple[int, list[str], str]]:
    """Yield ``(line_number, fields, raw_line)`` for the non-blank lines of ``path``."""
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            fields = raw.split()
            if fields:
                yield number, fields, raw.rstrip("\n")


def _key(key: str, where: str, raw: str, found: list[Problem]) -> int | None:
    """Map ``bonafide``/``spoof`` to 1/0; anything else is recorded as a problem."""
    if key in KEYS:
        return KEYS[key]
    found.append(
        Problem("unknown_key", where, f"key {key!r} is not 'bonafide' or 'spoof' in {raw!r}")
    )
    return None


def dedupe(utterances: list[Utterance], source: Path, found: list[Problem]) -> list[Utterance]:
    """Keep the first entry of each utterance id; later repeats become problems."""
    seen: set[str] = set()
    out = []
    for u in utterances:
        if u.utt_id in seen:
            found.append(Problem("duplicate_id", str(source), f"{u.utt_id} repeated", u.utt_id))
            continue
        seen.add(u.utt_id)
        out.append(u)
    return out


def _require(path: Path, what: str, key: str, is_dir: bool = False) -> Path:
    if not (path.is_dir() if is_dir else path.is_file()):
        raise MissingDataError(what, path, key)
    return path


# ---------------------------------------------------------------- ASVspoof 2019


def parse_asvspoof2019(
    protocol: Path,
    audio_dir: Path,
    track: str = "LA",
    problems: list[Problem] | None = None,
    ext: str = ".flac",
) -> list[Utterance]:
    """Parse an ASVspoof 2019 CM protocol.

    LA lines: ``speaker utt - attack key``; PA lines: ``speaker utt environment attack key``
    (the environment, e.g. ``aaa``, is kept in ``meta['environment']``). A line holding
    only an utterance id (unkeyed evaluation lists) gives an unlabeled entry.
    """
    found: list[Problem] = []
    out: list[Utterance] = []
    for number, f, raw in _lines(protocol):
        where = f"{protocol}:{number}"
        if len(f) == 1:
            out.append(Utterance(f[0], audio_dir / f"{f[0]}{ext}", UNKNOWN))
            continue
        if len(f) != 5:
            third = "environment" if track == "PA" else "-"
            found.append(
                Problem(
                    "malformed",
                    where,
                    f"expected 5 fields 'speaker utt {third} attack key', got {len(f)}: {raw!r}",
                )
            )
            continue
        speaker, utt, third, attack, key = f
        label = _key(key, where, raw, found)
        if label is None:
            continue
        out.append(
            Utterance(
                utt,
                audio_dir / f"{utt}{ext}",
                label,
                speaker=speaker,
                attack="-" if label == BONAFIDE else attack,
                meta={"environment": third} if track == "PA" else {},
            )
        )
    return _settle(dedupe(out, protocol, found), found, problems, protocol)


def _track_dir(root: Path, track: str, marker: str, key: str) -> Path:
    """``root/<track>`` or ``root`` itself, whichever holds ``marker``."""
    for base in (root / track, root):
        if (base / marker).exists():
            return base
    if not root.exists():
        raise MissingDataError("corpus root", root, key)
    raise MissingDataError(f"{track} directory with {marker}", root / track / marker, key)


_ASV19_SPLITS = {"train": ("train", "trn"), "val": ("dev", "trl"), "test": ("eval", "trl")}


def asvspoof2019_paths(root: Path, split: str, track: str, key: str) -> tuple[Path, Path]:
    """``(protocol file, audio dir)`` of an ASVspoof 2019 split in the official layout."""
    name, suffix = _ASV19_SPLITS[split]
    proto_dir = f"ASVspoof2019_{track}_cm_protocols"
    base = _track_dir(Path(root), track, proto_dir, key)
    protocol = base / proto_dir / f"ASVspoof2019.{track}.cm.{name}.{suffix}.txt"
    _require(protocol, f"ASVspoof 2019 {track} {name} protocol", key)
    audio_dir = base / f"ASVspoof2019_{track}_{name}" / "flac"
    _require(audio_dir, f"ASVspoof 2019 {track} {name} audio directory", key, is_dir=True)
    return protocol, audio_dir


def load_asvspoof2019_la(
    root: Path, split: str, problems: list[Problem], key: str = "data.root"
) -> list[Utterance]:
    """ASVspoof 2019 LA: ``root`` holds ``LA/`` or is the ``LA`` folder itself."""
    protocol, audio_dir = asvspoof2019_paths(root, split, "LA", key)
    return parse_asvspoof2019(protocol, audio_dir, "LA", problems)


def load_asvspoof2019_pa(
    root: Path, split: str, problems: list[Problem], key: str = "data.root"
) -> list[Utterance]:
    """ASVspoof 2019 PA: ``root`` holds ``PA/`` or is the ``PA`` folder itself."""
    protocol, audio_dir = asvspoof2019_paths(root, split, "PA", key)
    return parse_asvspoof2019(protocol, audio_dir, "PA", problems)


# ---------------------------------------------------------------- ASVspoof 2021

# Column names of keys/<track>/CM/trial_metadata.txt (ASVspoof 2021 evaluation package).
ASV21_COLUMNS = {
    "LA": ("speaker", "utt", "codec", "transmission", "attack", "key", "trim", "phase"),
    "DF": (
        "speaker",
        "utt",
        "codec",
        "source",
        "attack",
        "key",
        "trim",
        "phase",
        "vocoder",
        "task",
        "team",
        "gender_pair",
        "language",
    ),  # fmt: skip
    "PA": (
        "speaker",
        "utt",
        "asv_room",
        "asv_mic",
        "asv_distance",
        "attack_room",
        "attack_mic",
        "attack_distance",
        "attacker_to_speaker",
        "key",
        "trim",
        "phase",
    ),  # fmt: skip
}
_PA21_ATTACK = ("attack_room", "attack_mic", "attack_distance", "attacker_to_speaker")
_IDENTITY = ("speaker", "utt", "attack", "key")  # the Utterance fields; other columns -> meta


def _pa21_attack(row: Mapping[str, str]) -> str:
    return "_".join(row[c] for c in _PA21_ATTACK)


def _parse_table(
    path: Path,
    audio_dir: Path,
    columns: tuple[str, ...],
    problems: list[Problem] | None,
    phase: str | None = None,
    attack_of: Callable[[Mapping[str, str]], str] = lambda row: row["attack"],
) -> list[Utterance]:
    """Whitespace-separated rows with exactly ``columns`` (speaker, utt, key among them).

    Rows whose ``phase`` column differs from ``phase`` (when given) are skipped; the
    audio is ``audio_dir/<utt>.flac``; columns other than speaker, utt, attack and key
    go to ``meta``.
    """
    found: list[Problem] = []
    out: list[Utterance] = []
    for number, f, raw in _lines(path):
        where = f"{path}:{number}"
        if len(f) != len(columns):
            expected = f"expected {len(columns)} fields ({' '.join(columns)})"
            found.append(Problem("malformed", where, f"{expected}, got {len(f)}: {raw!r}"))
            continue
        row = dict(zip(columns, f, strict=True))
        if phase is not None and row["phase"] != phase:
            continue
        label = _key(row["key"], where, raw, found)
        if label is None:
            continue
        out.append(
            Utterance(
                row["utt"],
                audio_dir / f"{row['utt']}.flac",
                label,
                speaker=row["speaker"],
                attack="-" if label == BONAFIDE else attack_of(row),
                meta={k: v for k, v in row.items() if k not in _IDENTITY},
            )
        )
    return _settle(dedupe(out, path, found), found, problems, path)


def parse_asvspoof2021(
    keys: Path,
    audio_dir: Path,
    track: str,
    phase: str | None = "eval",
    problems: list[Problem] | None = None,
) -> list[Utterance]:
    """Parse ASVspoof 2021 ``trial_metadata.txt`` of ``track`` (LA, DF or PA).

    Only lines whose phase column equals ``phase`` are kept (``eval`` is the scored
    subset; None keeps progress and hidden lines too). Every column other than
    speaker, utt, attack and key is kept in ``meta`` (codec, transmission, trim, ...).
    PA has no single attack column: its attack id joins the four attacker fields.
    """
    if track == "PA":
        return _parse_table(keys, audio_dir, ASV21_COLUMNS[track], problems, phase, _pa21_attack)
    return _parse_table(keys, audio_dir, ASV21_COLUMNS[track], problems, phase)


def _asvspoof2021_loader(track: str) -> Loader:
    def load(
        root: Path,
        split: str,
        problems: list[Problem],
        key: str = "data.root",
        phase: str | None = "eval",
        keys_root: str | Path | None = None,
    ) -> list[Utterance]:
        if split != "test":
            raise SplitUnavailableError(
                f"ASVspoof 2021 {track} has only an evaluation set (split 'test'), not "
                f"{split!r}: train and validate on ASVspoof 2019 (data.train_corpus, "
                "data.train_root)"
            )
        if not root.is_dir():
            raise MissingDataError(f"ASVspoof 2021 {track} root", root, key)
        base = Path(keys_root) if keys_root is not None else root
        candidates = [base / "keys" / track / "CM", base / track / "CM", base / "CM"]
        found = next((c / "trial_metadata.txt" for c in candidates if c.is_dir()), None)
        keys_file = found or candidates[0] / "trial_metadata.txt"
        keys_key = f"{key} (or data.corpus_options.keys_root)"
        _require(keys_file, f"ASVspoof 2021 {track} keys", keys_key)
        audio_dir = root / f"ASVspoof2021_{track}_eval" / "flac"
        _require(audio_dir, f"ASVspoof 2021 {track} audio directory", key, is_dir=True)
        return parse_asvspoof2021(keys_file, audio_dir, track, phase, problems)

    load.__doc__ = f"ASVspoof 2021 {track} evaluation set under ``root`` (test split only)."
    return load


# ---------------------------------------------------------------- ASVspoof 5

# Columns of the released ASVspoof 5 protocols (ASVspoof5_protocols.tar.gz of the public
# release, Zenodo record 14498691; the layout below was checked on lines of the released
# files): 10 space-separated fields despite ``.tsv``, no header, e.g.
#   E_1607 E_0009538969 M C05 2 E_0009486171 AC1 A26 spoof -   (eval.track_1)
#   D_0062 D_0000000001 F - - - AC1 A11 spoof -                  (dev.track_1)
# speaker, utterance, gender, codec (C01-C11, ``-`` = not coded; train and dev are not
# coded), codec quality level, the source utterance a coded file was made from, attack tag,
# attack (``bonafide`` on bona fide lines), key, and an unused column. Track 1 splits:
# ASVspoof5.train.tsv, ASVspoof5.dev.track_1.tsv, ASVspoof5.eval.track_1.tsv.
ASV5_COLUMNS = (
    "speaker", "utt", "gender", "codec", "codec_q", "codec_seed", "attack_tag", "attack",
    "key", "tmp",
)  # fmt: skip
_ASV5_SPLITS = {
    "train": ("ASVspoof5.train.tsv", ("flac_T",)),
    "val": ("ASVspoof5.dev.track_1.tsv", ("flac_D",)),
    "test": ("ASVspoof5.eval.track_1.tsv", ("flac_E_eval", "flac_E")),
}


def parse_asvspoof5(
    protocol: Path, audio_dir: Path, problems: list[Problem] | None = None
) -> list[Utterance]:
    """Parse an ASVspoof 5 track-1 protocol (whitespace-separated despite ``.tsv``).

    Columns: :data:`ASV5_COLUMNS`; all but speaker, utt, attack and key are kept in
    ``meta``, so codec, codec_q, attack_tag (and gender) are conditions of the evaluation.
    """
    return _parse_table(protocol, audio_dir, ASV5_COLUMNS, problems)


def load_asvspoof5(
    root: Path, split: str, problems: list[Problem], key: str = "data.root"
) -> list[Utterance]:
    """ASVspoof 5 (track 1): ``root`` holds ``ASVspoof5_protocols/`` and ``flac_{T,D,E_eval}/``."""
    if not root.is_dir():
        raise MissingDataError("ASVspoof 5 root", root, key)
    name, audio_names = _ASV5_SPLITS[split]
    candidates = [root / "ASVspoof5_protocols" / name, root / name]
    protocol = next((c for c in candidates if c.is_file()), candidates[0])
    _require(protocol, f"ASVspoof 5 {split} protocol", key)
    dirs = [root / d for d in audio_names]
    audio_dir = next((d for d in dirs if d.is_dir()), dirs[0])
    _require(audio_dir, f"ASVspoof 5 {split} audio directory", key, is_dir=True)
    return parse_asvspoof5(protocol, audio_dir, problems)


# ---------------------------------------------------------------- In-the-Wild

ITW_LABELS = {"bona-fide": BONAFIDE, "spoof": SPOOF}
ITW_ATTACK = "unknown"  # the corpus does not say which system made a spoof


def parse_in_the_wild(
    meta: Path, audio_dir: Path, problems: list[Problem] | None = None
) -> list[Utterance]:
    """Parse In-the-Wild ``meta.csv``: header ``file,speaker,label``, label ``bona-fide`` or
    ``spoof``, e.g. ``0.wav,Alec Guinness,spoof``. The utterance id is the file name; the
    speaker (a public figure) is kept, as per-speaker results are a condition."""
    found: list[Problem] = []
    out: list[Utterance] = []
    with open(meta, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if not {"file", "speaker", "label"} <= set(header):
            raise ProtocolError(f"{meta}:1: header must be 'file,speaker,label', got {header}")
        for number, row in enumerate(reader, start=2):
            where = f"{meta}:{number}"
            name, label = (row["file"] or "").strip(), (row["label"] or "").strip()
            if not name:
                found.append(Problem("malformed", where, f"empty file name in {row}"))
                continue
            if label not in ITW_LABELS:
                found.append(
                    Problem("unknown_key", where, f"label {label!r} is not 'bona-fide' or 'spoof'")
                )
                continue
            bona = ITW_LABELS[label] == BONAFIDE
            out.append(
                Utterance(
                    name,
                    audio_dir / name,
                    ITW_LABELS[label],
                    speaker=(row["speaker"] or "").strip() or "-",
                    attack="-" if bona else ITW_ATTACK,
                )
            )
    return _settle(dedupe(out, meta, found), found, problems, meta)


def load_in_the_wild(
    root: Path, split: str, problems: list[Problem], key: str = "data.root"
) -> list[Utterance]:
    """In-the-Wild: ``root`` (or ``root/release_in_the_wild``) holds meta.csv and the wavs."""
    if split != "test":
        raise SplitUnavailableError(
            f"In-the-Wild is an evaluation-only corpus (split 'test'), it has no {split!r} "
            "split: train on another corpus (e.g. data=asvspoof2019_la), then score with "
            "python eval.py ckpt=... data=in_the_wild data.root=...; or keep data=in_the_wild "
            "and set data.train_corpus=asvspoof2019_la data.train_root=/path/to/LA19"
        )
    if not root.is_dir():
        raise MissingDataError("In-the-Wild root", root, key)
    base = next(
        (b for b in (root, root / "release_in_the_wild") if (b / "meta.csv").is_file()), root
    )
    meta = _require(base / "meta.csv", "In-the-Wild meta.csv", key)
    return parse_in_the_wild(meta, base, problems)


# ---------------------------------------------------------------- HAD


def parse_segments(text: str) -> list[tuple[float, float, bool]]:
    """``0.00-1.27-T/1.27-1.75-F`` -> ``[(0.0, 1.27, True), (1.27, 1.75, False)]``.

    True marks a genuine segment (T), False a fake one (F). Raises ValueError.
    """
    segments = []
    for part in text.split("/"):
        start, end, flag = part.split("-")
        if flag not in ("T", "F"):
            raise ValueError(f"segment flag {flag!r} is not T or F")
        a, b = float(start), float(end)
        if b < a:
            raise ValueError(f"segment {part!r} ends before it starts")
        segments.append((a, b, flag == "T"))
    return segments


def parse_had(
    labels: Path, audio_dir: Path, problems: list[Problem] | None = None
) -> list[Utterance]:
    """Parse a HAD label file: ``<utt> <start>-<end>-<T|F>/... <label>`` (1 real, 0 fake).

    The segment string is kept in ``meta['segments']`` (see :func:`parse_segments`);
    the audio is the first ``<utt>.wav`` found anywhere below ``audio_dir``. The
    attack id is ``partial`` for fake files, ``-`` for real ones.
    """
    found: list[Problem] = []
    files: dict[str, Path] = {}
    for wav in sorted(audio_dir.rglob("*.wav")):
        files.setdefault(wav.stem, wav)
    out: list[Utterance] = []
    for number, f, raw in _lines(labels):
        where = f"{labels}:{number}"
        if len(f) != 3 or f[2] not in ("0", "1"):
            found.append(Problem("malformed", where, f"expected 'utt segments 0|1', got {raw!r}"))
            continue
        utt, segments, flag = f
        try:
            parsed = parse_segments(segments)
        except ValueError as err:
            found.append(Problem("malformed", where, f"bad segment list ({err}): {raw!r}"))
            continue
        label = int(flag)
        if label == BONAFIDE and not all(genuine for _, _, genuine in parsed):
            found.append(Problem("malformed", where, f"real file with fake segments: {raw!r}"))
            continue
        path = files.get(utt, audio_dir / f"{utt}.wav")
        out.append(
            Utterance(
                utt,
                path,
                label,
                attack="-" if label == BONAFIDE else "partial",
                meta={"segments": segments},
            )
        )
    return _settle(dedupe(out, labels, found), found, problems, labels)


_HAD_SPLITS = {"train": "train", "val": "dev", "test": "test"}


def load_had(
    root: Path, split: str, problems: list[Problem], key: str = "data.root"
) -> list[Utterance]:
    """HAD: ``root`` holds ``HAD_{train,dev,test}/`` (or a ``HAD/`` folder that does)."""
    name = _HAD_SPLITS[split]
    base = root / "HAD" if (root / "HAD").is_dir() and not (root / f"HAD_{name}").exists() else root
    if not base.is_dir():
        raise MissingDataError("HAD root", root, key)
    split_dir = _require(base / f"HAD_{name}", f"HAD {name} directory", key, is_dir=True)
    candidates = [split_dir / f"HAD_{name}_label.txt", base / f"HAD_{name}_label.txt"]
    labels = next((c for c in candidates if c.is_file()), candidates[0])
    _require(labels, f"HAD {name} label file", key)
    return parse_had(labels, split_dir, problems)


# ---------------------------------------------------------------- folder

_FOLDER_SPLITS = {"train": ("train",), "val": ("val", "dev"), "test": ("test", "eval")}
_SPLIT_NAMES = {name for names in _FOLDER_SPLITS.values() for name in names}
_LABELS = {"1": BONAFIDE, "0": SPOOF, "bonafide": BONAFIDE, "spoof": SPOOF, "bona-fide": BONAFIDE}


def scan_audio(directory: Path) -> list[Path]:
    """Audio files (wav, flac, ogg, mp3) below ``directory``, recursively, sorted."""
    return sorted(
        p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
    )


def parse_label_csv(
    csv_path: Path, root: Path, split: str | None, problems: list[Problem] | None = None
) -> list[Utterance]:
    """Rows ``path,label[,split][,attack][,speaker]`` (header required) of a label CSV.

    ``path`` is relative to ``root`` (or absolute) and is the utterance id; ``label``
    is bonafide/spoof, 1/0, or empty/-1 for unknown. With a ``split`` column only the
    rows of ``split`` are kept (val also matches dev, test also matches eval); a row
    whose split is none of these is a problem, never silently left out.
    """
    found: list[Problem] = []
    out: list[Utterance] = []
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if "path" not in header or "label" not in header:
            raise ProtocolError(f"{csv_path}:1: header must contain 'path,label', got {header}")
        if split is not None and "split" not in header and split != "test":
            raise ProtocolError(
                f"{csv_path}: no 'split' column, so its rows form the test split only; add a "
                f"column split (train/val/test) to use it for {split!r}"
            )
        for number, row in enumerate(reader, start=2):
            where = f"{csv_path}:{number}"
            if not row.get("path"):
                found.append(Problem("malformed", where, f"empty path in {row}"))
                continue
            if split is not None and "split" in row:
                row_split = (row["split"] or "").strip().lower()
                if row_split not in _SPLIT_NAMES:
                    names = ", ".join(sorted(_SPLIT_NAMES))
                    found.append(Problem("malformed", where, f"split {row_split!r} not in {names}"))
                    continue
                if row_split not in _FOLDER_SPLITS[split]:
                    continue
            raw_label = (row.get("label") or "").strip().lower()
            if raw_label in ("", "-1", "-", "unknown"):
                label = UNKNOWN
            elif raw_label in _LABELS:
                label = _LABELS[raw_label]
            else:
                found.append(Problem("unknown_key", where, f"label {raw_label!r} in {row}"))
                continue
            rel = row["path"].strip()
            attack = (row.get("attack") or "").strip() or "-"
            out.append(
                Utterance(
                    rel,
                    Path(rel) if Path(rel).is_absolute() else root / rel,
                    label,
                    speaker=(row.get("speaker") or "").strip() or "-",
                    attack="-" if label == BONAFIDE else attack,
                )
            )
    return _settle(dedupe(out, csv_path, found), found, problems, csv_path)


def load_folder(
    root: Path,
    split: str,
    problems: list[Problem],
    key: str = "data.root",
    labels: str | Path | None = None,
) -> list[Utterance]:
    """Any directory of audio, recursively, as the split.

    Without ``labels`` the files are unlabeled (label -1); a split reads ``root/<split>``
    (``val`` also ``dev``; ``test`` also ``eval``) when it exists, else ``root`` itself for
    the test split. With ``labels`` (a CSV, see :func:`parse_label_csv`) its rows are
    the entries. The utterance id is the path relative to ``root``.
    """
    if not root.is_dir():
        raise MissingDataError("audio folder", root, key)
    if labels is not None:
        csv_path = Path(labels) if Path(labels).is_absolute() else root / labels
        _require(csv_path, "label CSV", "data.corpus_options.labels")
        return parse_label_csv(csv_path, root, split, problems)
    directory = next((root / d for d in _FOLDER_SPLITS[split] if (root / d).is_dir()), None)
    if directory is None:
        if split != "test":
            raise MissingDataError(f"folder {split!r} split", root / split, key)
        directory = root
    files = scan_audio(directory)
    if not files:
        raise MissingDataError(f"audio files ({', '.join(AUDIO_EXTENSIONS)})", directory, key)
    return [Utterance(p.relative_to(root).as_posix(), p, UNKNOWN) for p in files]


# ---------------------------------------------------------------- registry


def _settle(
    out: list[Utterance], found: list[Problem], problems: list[Problem] | None, source: Path
) -> list[Utterance]:
    """Hand ``found`` to the caller's ``problems`` list, or raise when it gave none."""
    if problems is None:
        if found:
            raise ProtocolError(f"{source}: {len(found)} problem(s):\n{format_problems(found)}")
    else:
        problems.extend(found)
    return out


Loader = Callable[..., list[Utterance]]
CORPORA: dict[str, Loader] = {
    "asvspoof2019_la": load_asvspoof2019_la,
    "asvspoof2019_pa": load_asvspoof2019_pa,
    "asvspoof2021_la": _asvspoof2021_loader("LA"),
    "asvspoof2021_df": _asvspoof2021_loader("DF"),
    "asvspoof2021_pa": _asvspoof2021_loader("PA"),
    "asvspoof5": load_asvspoof5,
    "in_the_wild": load_in_the_wild,
    "had": load_had,
    "folder": load_folder,
}


# Metadata columns always reported as conditions by eval.py (conditions=auto), even where
# the generic rule (2 to 64 distinct values, not an identity column) would leave them out.
CORPUS_CONDITIONS: dict[str, tuple[str, ...]] = {"in_the_wild": ("speaker",)}


def load_split(
    corpus: str,
    root: str | Path,
    split: str,
    problems: list[Problem] | None = None,
    key: str = "data.root",
    **options: object,
) -> list[Utterance]:
    """Utterances of ``split`` of the registered ``corpus`` under ``root``.

    Bad protocol lines are appended to ``problems`` and left out; when ``problems``
    is None a :class:`ProtocolError` lists them instead. ``key`` is the config key
    named when ``root`` is wrong; ``options`` go to the corpus loader.
    """
    if corpus not in CORPORA:
        raise ValueError(
            f"unknown corpus {corpus!r} (data.corpus); choose one of {sorted(CORPORA)}"
        )
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    found: list[Problem] = []
    out = CORPORA[corpus](Path(root), split, found, key=key, **options)
    return _settle(out, found, problems, Path(root))


__all__ = [
    "ASV21_COLUMNS",
    "ASV5_COLUMNS",
    "BONAFIDE",
    "CORPORA",
    "CORPUS_CONDITIONS",
    "SPLITS",
    "SPOOF",
    "UNKNOWN",
    "MissingDataError",
    "Problem",
    "ProtocolError",
    "SplitUnavailableError",
    "Utterance",
    "asvspoof2019_paths",
    "dedupe",
    "format_problems",
    "load_asvspoof2019_la",
    "load_asvspoof2019_pa",
    "load_asvspoof5",
    "load_folder",
    "load_had",
    "load_in_the_wild",
    "load_split",
    "parse_asvspoof2019",
    "parse_asvspoof2021",
    "parse_asvspoof5",
    "parse_had",
    "parse_in_the_wild",
    "parse_label_csv",
    "parse_segments",
    "scan_audio",
]
