"""ASVspoof 2021 LA, DF and PA evaluation sets (Liu et al., 2023), ``asvspoof2021_{la,df,pa}``.

Layout under ``root``: ``ASVspoof2021_{LA,DF,PA}_eval/flac`` and the keys
``keys/{LA,DF,PA}/CM/trial_metadata.txt`` (or under ``corpus_options.keys_root``). Test
split only: the lines whose phase column is ``eval`` (option ``phase``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from spoof_lightning.data.protocols import (
    Loader,
    MissingDataError,
    Problem,
    SplitUnavailableError,
    Utterance,
    corpus,
    parse_table,
    require,
)

# Column names of keys/<track>/CM/trial_metadata.txt (ASVspoof 2021 evaluation package).
ASV21_COLUMNS = {
    "LA": ("speaker", "utt", "codec", "transmission", "attack", "key", "trim", "phase"),
    "DF": (
        "speaker", "utt", "codec", "source", "attack", "key", "trim", "phase", "vocoder",
        "task", "team", "gender_pair", "language",
    ),
    "PA": (
        "speaker", "utt", "asv_room", "asv_mic", "asv_distance", "attack_room", "attack_mic",
        "attack_distance", "attacker_to_speaker", "key", "trim", "phase",
    ),
}  # fmt: skip
_PA21_ATTACK = ("attack_room", "attack_mic", "attack_distance", "attacker_to_speaker")


def _pa21_attack(row: Mapping[str, str]) -> str:
    return "_".join(row[c] for c in _PA21_ATTACK)


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
        return parse_table(keys, audio_dir, ASV21_COLUMNS[track], problems, phase, _pa21_attack)
    return parse_table(keys, audio_dir, ASV21_COLUMNS[track], problems, phase)


def _loader(track: str) -> Loader:
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
        places = [base / "keys" / track / "CM", base / track / "CM", base / "CM"]
        cm_dir = next((c for c in places if c.is_dir()), places[0])  # the first that exists
        keys_key = f"{key} (or data.corpus_options.keys_root)"
        keys_file = require(cm_dir / "trial_metadata.txt", f"ASVspoof 2021 {track} keys", keys_key)
        audio_dir = root / f"ASVspoof2021_{track}_eval" / "flac"
        require(audio_dir, f"ASVspoof 2021 {track} audio directory", key, is_dir=True)
        return parse_asvspoof2021(keys_file, audio_dir, track, phase, problems)

    load.__doc__ = f"ASVspoof 2021 {track} evaluation set under ``root`` (test split only)."
    return load


for _track in ASV21_COLUMNS:
    corpus(f"asvspoof2021_{_track.lower()}")(_loader(_track))
