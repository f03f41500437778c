"""Convert a corpus split into sharded tar archives for network or object storage.

Format: WebDataset tar shards, written with the standard library's ``tarfile``.
Each sample is two members sharing a key, ``<key>.json`` (utt_id, label, speaker,
attack, meta, source path) and ``<key>.<ext>`` holding the original audio bytes
(no re-encoding: a shard decodes to exactly what the files decode to). The folder
also holds ``index.json`` (shards and their sample counts, which the streaming
reader needs to give every rank the same number of batches) and, when entries were
skipped, ``data_problems.csv``.

Why WebDataset tars and not Lightning's litdata: plain POSIX tars need no extra
dependency (litdata is not installed here), can be inspected with ``tar tf``, copied
with any tool, and read by the ``webdataset`` library too; litdata's chunk format
is only readable through litdata.

Usage::

    spoof-lightning shards --corpus asvspoof2019_la --root /data/ASVspoof2019 \\
        --split train --out /data/shards/la19 [--shard-size 1000] [--on-error skip]

writes ``/data/shards/la19/train/{shard-000000.tar,...,index.json}``; then train with
``data.loader=shards data.shards_root=/data/shards/la19``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

from spoof_lightning.atomic import write_text
from spoof_lightning.cli import CommandParser
from spoof_lightning.data.preflight import Level, Policy, apply_policy, check_split
from spoof_lightning.data.protocols import SPLITS, Problem, Utterance, load_split

log = logging.getLogger(__name__)
INDEX = "index.json"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shards(
    utterances: Sequence[Utterance],
    out_dir: str | Path,
    shard_size: int = 1000,
    prefix: str = "shard",
    extra: dict | None = None,
) -> Path:
    """Write ``utterances`` (in order) as tar shards of ``shard_size`` samples; returns the index.

    Each shard is written under a temporary name and renamed when complete, and the
    index is written last, so an interrupted conversion never looks finished.
    """
    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for first in range(0, len(utterances), shard_size):
        name = f"{prefix}-{first // shard_size:06d}.tar"
        tmp = out / f".{name}.partial"
        chunk = utterances[first : first + shard_size]
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for offset, utt in enumerate(chunk):
                key = f"{first + offset:09d}"
                meta = {
                    "utt_id": utt.utt_id,
                    "label": utt.label,
                    "speaker": utt.speaker,
                    "attack": utt.attack,
                    "meta": dict(utt.meta),
                    "source": str(utt.path),
                }
                _add(tar, f"{key}.json", json.dumps(meta).encode())
                _add(tar, f"{key}{utt.path.suffix.lower()}", utt.path.read_bytes())
        os.replace(tmp, out / name)
        shards.append({"name": name, "count": len(chunk)})
    index = {"format": "webdataset", "version": 1, "total": len(utterances), "shards": shards}
    index.update(extra or {})
    path = out / INDEX
    write_text(path, json.dumps(index, indent=1) + "\n")
    return path


def convert(
    corpus: str,
    root: str | Path,
    split: str,
    out: str | Path,
    shard_size: int = 1000,
    check: Level = "header",
    on_error: Policy = "strict",
    **options: object,
) -> Path:
    """Preflight one split of ``corpus`` and write it to ``out/<split>/`` as shards."""
    problems: list[Problem] = []
    utterances = load_split(corpus, root, split, problems, key="--root", **options)
    split_dir = Path(out) / split
    report = check_split(split, utterances, problems, check)
    kept = apply_policy({split: report}, on_error, split_dir)[split]
    extra = {"corpus": corpus, "split": split, "root": str(root), "skipped": len(report.problems)}
    index = write_shards(kept, split_dir, shard_size, extra=extra)
    log.info("%s %s: %d samples in %s", corpus, split, len(kept), index.parent)
    return index


def main(argv: list[str] | None = None) -> None:
    parser = CommandParser("shards", "Convert a corpus split to WebDataset tar shards.")
    parser.add_argument("--corpus", required=True, help="registry name, e.g. asvspoof2019_la")
    parser.add_argument("--root", required=True, help="corpus root (what data.root would be)")
    parser.add_argument("--split", required=True, nargs="+", choices=SPLITS)
    parser.add_argument("--out", required=True, help="output folder; shards go to OUT/<split>/")
    parser.add_argument("--shard-size", type=int, default=1000, help="samples per shard")
    parser.add_argument("--check", default="header", choices=["off", "exists", "header", "decode"])
    parser.add_argument("--on-error", default="strict", choices=["strict", "skip"])
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="corpus option (data.corpus_options), e.g. labels=labels.csv or phase=eval",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--option {item!r}: expected KEY=VALUE")
        options[key] = value
    for split in args.split:
        index = convert(
            args.corpus, args.root, split, args.out, args.shard_size, args.check, args.on_error,
            **options,
        )  # fmt: skip
        print(index)


if __name__ == "__main__":
    main()


__all__ = ["INDEX", "convert", "main", "write_shards"]
