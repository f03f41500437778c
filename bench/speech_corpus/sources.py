"""Where the audio comes from: Debian packages, fetched with apt-get and unpacked with dpkg.

Bona fide speech is the recorded human speech shipped in these packages (one speaker per
package and language, as far as their credits say):

- ``asterisk-prompt-es-co`` (Colombian Spanish telephone prompts, GSM 8 kHz),
  ``asterisk-prompt-fr-armelle`` (French prompts by Armelle Desjardins, GSM 8 kHz);
- ``ktuberling-data`` (words read by one speaker per language, ~20 languages);
- ``klettres-data`` (letters and syllables read by one speaker per language).

``asterisk-core-sounds-*`` and ``asterisk-prompt-it-menardi`` are never used: an
independent held-out measurement of the project is built from them.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.speech_corpus.dsp import SR

BONAFIDE_PACKAGES = (
    "asterisk-prompt-es-co",
    "asterisk-prompt-fr-armelle",
    "ktuberling-data",
    "klettres-data",
)
FORBIDDEN_PREFIXES = ("asterisk-core-sounds", "asterisk-prompt-it-menardi")
# Tools that must be installed (apt-get install) to synthesise and code the spoofs.
TOOL_PACKAGES = (
    "sox",
    "libsox-fmt-all",
    "espeak-ng",
    "flite",
    "festival",
    "festvox-kallpc16k",
    "festvox-kdlpc16k",
    "festvox-italp16k",
    "festvox-itapc16k",
    "festvox-suopuhe-lj",
    "festvox-czech-dita",
    "festvox-us-slt-hts",
    "festvox-ca-ona-hts",
)
AUDIO_SUFFIXES = (".gsm", ".ogg", ".wav")
# ktuberling's Serbian variants are the same recordings under four names.
DUPLICATE_DIRS = ("sr@ijekavian", "sr@ijekavianlatin", "sr@latin")


@dataclass(frozen=True)
class Clip:
    """One recorded item of a bona fide speaker."""

    speaker: str  # "<package>:<language>"
    language: str
    text: str  # the file stem (prompt name, word or syllable)
    path: Path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def installed_version(package: str) -> str | None:
    """The installed version of a Debian package, or None."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status} ${Version}", package],
        capture_output=True,
        text=True,
    )
    fields = out.stdout.split()
    return fields[-1] if out.returncode == 0 and "installed" in fields else None


def missing_tools() -> list[str]:
    """The tool packages that are not installed."""
    return [p for p in TOOL_PACKAGES if installed_version(p) is None]


def fetch(cache: Path, packages: tuple[str, ...] = BONAFIDE_PACKAGES) -> dict[str, dict]:
    """Download (``apt-get download``, into ``cache``) and unpack (``dpkg -x``) ``packages``.

    Already present ``.deb`` files are reused. Returns ``{package: {deb, version, sha256,
    root}}`` for the manifest.
    """
    cache.mkdir(parents=True, exist_ok=True)
    info = {}
    for package in packages:
        if package.startswith(FORBIDDEN_PREFIXES):
            raise ValueError(f"{package} is reserved for the independent held-out measurement")
        debs = sorted(cache.glob(f"{package}_*.deb"))
        if not debs:
            subprocess.run(["apt-get", "download", package], cwd=cache, check=True)
            debs = sorted(cache.glob(f"{package}_*.deb"))
        deb = debs[-1]
        root = cache / "unpacked" / package
        if not root.is_dir():
            partial = root.with_name(package + ".partial")
            subprocess.run(["rm", "-rf", str(partial)], check=True)
            partial.mkdir(parents=True)
            subprocess.run(["dpkg", "-x", str(deb), str(partial)], check=True)
            partial.rename(root)
        version = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        info[package] = {"deb": deb.name, "version": version, "sha256": sha256(deb), "root": root}
    return info


def clips(roots: dict[str, Path]) -> list[Clip]:
    """Every bona fide clip under the unpacked packages, in a stable order."""
    found = []
    for package, root in sorted(roots.items()):
        for path in sorted(root.rglob("*")):
            if path.suffix not in AUDIO_SUFFIXES or not path.is_file():
                continue
            parts = path.relative_to(root).parts
            if package.startswith("asterisk-prompt"):
                language = package.split("-")[2]
            elif package == "ktuberling-data":
                language = parts[-2]
            else:  # klettres: <lang>/{alpha,syllab}/<item>.ogg
                language = parts[-3]
            if language in DUPLICATE_DIRS or path.stem.startswith("beep"):
                continue
            found.append(Clip(f"{package}:{language}", language, path.stem, path))
    return found


def decode(path: Path) -> np.ndarray:
    """Any clip as mono float64 at 16 kHz (GSM files through sox, others via soundfile)."""
    if path.suffix == ".gsm":
        raw = subprocess.run(
            [
                "sox",
                "-t",
                "gsm",
                "-r",
                "8000",
                "-c",
                "1",
                str(path),
                "-t",
                "raw",
                "-e",
                "signed",
                "-b",
                "16",
                "-r",
                str(SR),
                "-",
            ],
            capture_output=True,
            check=True,
        ).stdout
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    from bench.speech_corpus.dsp import resample

    audio, rate = sf.read(path, dtype="float64", always_2d=True)
    return resample(audio.mean(axis=1), rate)
