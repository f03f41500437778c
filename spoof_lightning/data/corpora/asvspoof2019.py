"""ASVspoof 2019 LA and PA (Wang et al., 2020), ``asvspoof2019_la`` / ``asvspoof2019_pa``.

Layout under ``root`` (or ``root`` is the track folder itself):
``{LA,PA}/ASVspoof2019_*_{train,dev,eval}/flac`` and ``{LA,PA}/ASVspoof2019_*_cm_protocols``.
The demo corpus and the real-speech benchmark corpus use the LA layout too.
"""

from __future__ import annotations

from pathlib import Path

from spoof_lightning.data.protocols import (
    BONAFIDE,
    UNKNOWN,
    Loader,
    MissingDataError,
    Problem,
    Utterance,
    corpus,
    dedupe,
    label_of,
    read_lines,
    require,
    settle,
)

OFFICIAL_SPLITS = {"train": "train", "val": "dev", "test": "eval"}


def official_paths(base: Path, track: str, name: str) -> tuple[Path, Path]:
    """``(protocol file, flac dir)`` of split ``name`` (train, dev or eval) in the ``track``
    folder ``base``; also the layout the demo corpus and the test fixtures write."""
    suffix = "trn" if name == "train" else "trl"
    protocols = base / f"ASVspoof2019_{track}_cm_protocols"
    protocol = protocols / f"ASVspoof2019.{track}.cm.{name}.{suffix}.txt"
    return protocol, base / f"ASVspoof2019_{track}_{name}" / "flac"


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
    for number, f, raw in read_lines(protocol):
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
        label = label_of(key, where, raw, found)
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
    return settle(dedupe(out, protocol, found), found, problems, protocol)


def _track_dir(root: Path, track: str, marker: str, key: str) -> Path:
    """``root/<track>`` or ``root`` itself, whichever holds ``marker``."""
    for base in (root / track, root):
        if (base / marker).exists():
            return base
    if not root.exists():
        raise MissingDataError("corpus root", root, key)
    raise MissingDataError(f"{track} directory with {marker}", root / track / marker, key)


def asvspoof2019_paths(root: Path, split: str, track: str, key: str) -> tuple[Path, Path]:
    """``(protocol file, audio dir)`` of an ASVspoof 2019 split in the official layout."""
    name = OFFICIAL_SPLITS[split]
    base = _track_dir(Path(root), track, f"ASVspoof2019_{track}_cm_protocols", key)
    protocol, audio_dir = official_paths(base, track, name)
    require(protocol, f"ASVspoof 2019 {track} {name} protocol", key)
    require(audio_dir, f"ASVspoof 2019 {track} {name} audio directory", key, is_dir=True)
    return protocol, audio_dir


def _loader(track: str) -> Loader:
    def load(
        root: Path, split: str, problems: list[Problem], key: str = "data.root"
    ) -> list[Utterance]:
        protocol, audio_dir = asvspoof2019_paths(root, split, track, key)
        return parse_asvspoof2019(protocol, audio_dir, track, problems)

    load.__doc__ = f"ASVspoof 2019 {track}: ``root`` holds ``{track}/`` or is that folder itself."
    return load


for _track in ("LA", "PA"):
    corpus(f"asvspoof2019_{_track.lower()}")(_loader(_track))
