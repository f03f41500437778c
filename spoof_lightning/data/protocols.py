"""What every corpus shares: the entry type, problems and errors, and the corpus registry.

A corpus loader maps ``(root, split, problems, key=..., **options)`` to the
:class:`Utterance` list of a split, in protocol order. Splits are :data:`SPLITS`
(ASVspoof's train, dev and eval). Line formats are in ``DESIGN.md``; the loaders live
in :mod:`spoof_lightning.data.corpora`, one module per corpus family.

A line that does not parse, an unknown key or a repeated utterance id becomes a
:class:`Problem` and the entry is left out; :func:`load_split` raises a
:class:`ProtocolError` listing them all unless the caller passes its own
``problems`` list (the ``skip`` policy of :mod:`spoof_lightning.data.preflight`,
which reports every one). Nothing is dropped silently.

Adding a corpus (say ``mycorpus``) is two files:

1. ``spoof_lightning/data/corpora/mycorpus.py``: a loader decorated with
   ``@corpus("mycorpus")`` (``conditions=(...)`` names metadata columns eval.py always
   reports per condition). Parse with :func:`read_lines`, :func:`label_of` and
   :func:`dedupe` (or :func:`parse_table` for whitespace tables), name missing paths with
   :func:`require` / :class:`MissingDataError`, and end with :func:`settle`. Every module
   of the package is imported, so the loader is registered with no other edit.
2. ``conf/data/mycorpus.yaml``: ``defaults: [/data_base@_here_, _self_]``, then
   ``corpus: mycorpus`` and the keys of ``conf/data_base.yaml`` that differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spoof_lightning.contracts import BONAFIDE, SPOOF

UNKNOWN = -1
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


# ---------------------------------------------------------------- helpers for loaders


def read_lines(path: Path) -> Iterator[tuple[int, list[str], str]]:
    """Yield ``(line_number, fields, raw_line)`` for the non-blank lines of ``path``."""
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            fields = raw.split()
            if fields:
                yield number, fields, raw.rstrip("\n")


def label_of(key: str, where: str, raw: str, found: list[Problem]) -> int | None:
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


def require(paths: Path | Sequence[Path], what: str, key: str, is_dir: bool = False) -> Path:
    """The first of ``paths`` (one path, or the places a layout allows) that is a file (a
    directory with ``is_dir``), or a :class:`MissingDataError` naming the first and the
    config ``key`` to set."""
    candidates = [paths] if isinstance(paths, Path) else list(paths)
    found = next((p for p in candidates if (p.is_dir() if is_dir else p.is_file())), None)
    if found is None:
        raise MissingDataError(what, candidates[0], key)
    return found


def settle(
    out: list[Utterance], found: list[Problem], problems: list[Problem] | None, source: Path
) -> list[Utterance]:
    """Hand ``found`` to the caller's ``problems`` list, or raise when it gave none."""
    if problems is None:
        if found:
            raise ProtocolError(f"{source}: {len(found)} problem(s):\n{format_problems(found)}")
    else:
        problems.extend(found)
    return out


_IDENTITY = ("speaker", "utt", "attack", "key")  # the Utterance fields; other columns -> meta


def parse_table(
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
    for number, f, raw in read_lines(path):
        where = f"{path}:{number}"
        if len(f) != len(columns):
            expected = f"expected {len(columns)} fields ({' '.join(columns)})"
            found.append(Problem("malformed", where, f"{expected}, got {len(f)}: {raw!r}"))
            continue
        row = dict(zip(columns, f, strict=True))
        if phase is not None and row["phase"] != phase:
            continue
        label = label_of(row["key"], where, raw, found)
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
    return settle(dedupe(out, path, found), found, problems, path)


# ---------------------------------------------------------------- registry

Loader = Callable[..., list[Utterance]]
CORPORA: dict[str, Loader] = {}
# Metadata columns always reported as conditions by eval.py (conditions=auto), even where
# the generic rule (2 to 64 distinct values, not an identity column) would leave them out.
CORPUS_CONDITIONS: dict[str, tuple[str, ...]] = {}


def corpus(name: str, conditions: tuple[str, ...] = ()) -> Callable[[Loader], Loader]:
    """Register the decorated loader as ``data.corpus=<name>`` (see the module docstring)."""

    def register(loader: Loader) -> Loader:
        if CORPORA.get(name, loader) is not loader:
            raise ValueError(f"corpus {name!r} is registered twice")
        CORPORA[name] = loader
        if conditions:
            CORPUS_CONDITIONS[name] = conditions
        return loader

    return register


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
    return settle(out, found, problems, Path(root))


# Registers every loader; last, as the corpus modules import the names above.
from spoof_lightning.data import corpora  # noqa: E402, F401
