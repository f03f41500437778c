"""ASVspoof 5 track 1 (Wang et al., 2024), ``asvspoof5``.

Layout under ``root``: ``ASVspoof5_protocols/ASVspoof5.{train,dev.track_1,eval.track_1}.tsv``
(or the files in ``root`` itself) and ``flac_{T,D,E_eval}/`` (or ``flac_E/``).
"""

from __future__ import annotations

from pathlib import Path

from spoof_lightning.data.protocols import (
    MissingDataError,
    Problem,
    Utterance,
    corpus,
    parse_table,
    require,
)

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
    return parse_table(protocol, audio_dir, ASV5_COLUMNS, problems)


@corpus("asvspoof5")
def load_asvspoof5(
    root: Path, split: str, problems: list[Problem], key: str = "data.root"
) -> list[Utterance]:
    """ASVspoof 5 (track 1): ``root`` holds ``ASVspoof5_protocols/`` and ``flac_{T,D,E_eval}/``."""
    if not root.is_dir():
        raise MissingDataError("ASVspoof 5 root", root, key)
    name, audio_names = _ASV5_SPLITS[split]
    protocols = [root / "ASVspoof5_protocols" / name, root / name]
    protocol = require(protocols, f"ASVspoof 5 {split} protocol", key)
    dirs = [root / d for d in audio_names]
    audio_dir = require(dirs, f"ASVspoof 5 {split} audio directory", key, is_dir=True)
    return parse_asvspoof5(protocol, audio_dir, problems)
