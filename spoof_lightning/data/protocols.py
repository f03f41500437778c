"""Protocol parsers and official directory layouts, one loader per corpus.

Every loader maps ``(root, split, **options)`` to a list of :class:`Utterance` in
protocol order. Splits are named ``train``, ``val`` and ``test`` (ASVspoof's train,
dev and eval). Formats are documented in ``DESIGN.md``; a line that does not fit is a
:class:`ProtocolError` naming ``file:line`` and the line, never a silent drop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

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


class ProtocolError(ValueError):
    """A malformed protocol/label file: the message names ``file:line`` and the bad content."""


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


def _lines(path: Path) -> Iterator[tuple[int, list[str], str]]:
    """Yield ``(line_number, fields, raw_line)`` for the non-blank lines of ``path``."""
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            fields = raw.split()
            if fields:
                yield number, fields, raw.rstrip("\n")


def parse_key(key: str, path: Path, number: int, raw: str) -> int:
    """Map ``bonafide``/``spoof`` to 1/0; anything else is a :class:`ProtocolError`."""
    try:
        return KEYS[key]
    except KeyError:
        raise ProtocolError(
            f"{path}:{number}: unknown key {key!r} (expected 'bonafide' or 'spoof') in line {raw!r}"
        ) from None


def check_unique(utterances: list[Utterance], source: Path) -> None:
    """Raise :class:`ProtocolError` listing utterance ids that occur more than once."""
    seen: set[str] = set()
    dups: list[str] = []
    for u in utterances:
        if u.utt_id in seen:
            dups.append(u.utt_id)
        seen.add(u.utt_id)
    if dups:
        shown = ", ".join(sorted(set(dups))[:10])
        raise ProtocolError(f"{source}: {len(dups)} duplicate utterance id(s): {shown}")


def parse_asvspoof2019(
    protocol: Path, audio_dir: Path, track: str = "LA", ext: str = ".flac"
) -> list[Utterance]:
    """Parse an ASVspoof 2019 CM protocol.

    LA lines: ``speaker utt - attack key``; PA lines: ``speaker utt environment attack key``
    (the environment, e.g. ``aaa``, is kept in ``meta['environment']``). A line holding
    only an utterance id (unkeyed evaluation lists) gives an unlabeled entry.
    """
    out: list[Utterance] = []
    for number, f, raw in _lines(protocol):
        if len(f) == 1:
            out.append(Utterance(f[0], audio_dir / f"{f[0]}{ext}", UNKNOWN))
            continue
        if len(f) != 5:
            third = "environment" if track == "PA" else "-"
            raise ProtocolError(
                f"{protocol}:{number}: expected 5 fields 'speaker utt {third} attack key', "
                f"got {len(f)} in line {raw!r}"
            )
        speaker, utt, third, attack, key = f
        label = parse_key(key, protocol, number, raw)
        meta = {"environment": third} if track == "PA" else {}
        out.append(
            Utterance(
                utt,
                audio_dir / f"{utt}{ext}",
                label,
                speaker=speaker,
                attack="-" if label == BONAFIDE else attack,
                meta=meta,
            )
        )
    check_unique(out, protocol)
    return out


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
    if split not in _ASV19_SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    name, suffix = _ASV19_SPLITS[split]
    proto_dir = f"ASVspoof2019_{track}_cm_protocols"
    base = _track_dir(Path(root), track, proto_dir, key)
    protocol = base / proto_dir / f"ASVspoof2019.{track}.cm.{name}.{suffix}.txt"
    audio_dir = base / f"ASVspoof2019_{track}_{name}" / "flac"
    if not protocol.is_file():
        raise MissingDataError(f"ASVspoof 2019 {track} {name} protocol", protocol, key)
    if not audio_dir.is_dir():
        raise MissingDataError(f"ASVspoof 2019 {track} {name} audio directory", audio_dir, key)
    return protocol, audio_dir


def load_asvspoof2019_la(root: Path, split: str, key: str = "data.root") -> list[Utterance]:
    """ASVspoof 2019 LA: ``root`` is the folder holding ``LA/`` or the ``LA`` folder itself."""
    protocol, audio_dir = asvspoof2019_paths(root, split, "LA", key)
    return parse_asvspoof2019(protocol, audio_dir, "LA")


def load_asvspoof2019_pa(root: Path, split: str, key: str = "data.root") -> list[Utterance]:
    """ASVspoof 2019 PA: ``root`` is the folder holding ``PA/`` or the ``PA`` folder itself."""
    protocol, audio_dir = asvspoof2019_paths(root, split, "PA", key)
    return parse_asvspoof2019(protocol, audio_dir, "PA")


Loader = Callable[..., list[Utterance]]
CORPORA: dict[str, Loader] = {
    "asvspoof2019_la": load_asvspoof2019_la,
    "asvspoof2019_pa": load_asvspoof2019_pa,
}


def load_split(
    corpus: str, root: str | Path, split: str, key: str = "data.root", **options: object
) -> list[Utterance]:
    """Utterances of ``split`` of the registered ``corpus`` under ``root``.

    ``key`` is the config key named in error messages when ``root`` is wrong.
    """
    if corpus not in CORPORA:
        raise ValueError(
            f"unknown corpus {corpus!r} (data.corpus); choose one of {sorted(CORPORA)}"
        )
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    return CORPORA[corpus](Path(root), split, key=key, **options)


__all__ = [
    "BONAFIDE",
    "CORPORA",
    "SPLITS",
    "SPOOF",
    "UNKNOWN",
    "MissingDataError",
    "ProtocolError",
    "Utterance",
    "asvspoof2019_paths",
    "check_unique",
    "load_asvspoof2019_la",
    "load_asvspoof2019_pa",
    "load_split",
    "parse_asvspoof2019",
]
