"""Build the real-speech benchmark corpus in the ASVspoof 2019 LA layout.

    apt-get install sox libsox-fmt-all espeak-ng flite festival festvox-kallpc16k \
        festvox-kdlpc16k festvox-italp16k festvox-itapc16k festvox-suopuhe-lj \
        festvox-czech-dita festvox-us-slt-hts festvox-ca-ona-hts
    python bench/speech_corpus/build.py data/speech          # -> data/speech/LA/...

Bona fide speech: recorded human speech from Debian packages (:mod:`sources`). Spoofs
(:data:`ATTACKS`): Debian TTS systems (:mod:`tts`) and copy-synthesis of the split's own
real speech (:mod:`dsp`). Train and dev hold A01-A04; eval holds A02 and A04 (seen) and
A05-A08 (never seen in train or dev). Speakers are disjoint between splits, except the one
Spanish telephone speaker, whose prompts are split between train and dev by text.
Every utterance then goes through the same channel (:func:`dsp.channel`): half of every
(split, attack) group in the telephone band, and silences, noise floor and level drawn from
the same distributions; TTS outputs are picked from 1.5x candidates to match the bona fide
durations. ``manifest.json`` records packages, versions, hashes and counts;
``sanity.json`` / ``sanity.md`` the AUC of trivial features per attack.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.speech_corpus import dsp, sanity, sources, tts  # noqa: E402
from spoof_lightning.data.corpora.asvspoof2019 import official_paths  # noqa: E402

VERSION = 1
ATTACKS = {
    "A01": "espeak-ng formant TTS (language of a speaker of the split)",
    "A02": "festival diphone TTS (kal/ked en, lp/pc it, suo fi, dita cs)",
    "A03": "copy-synthesis: 80-band mel magnitude + Griffin-Lim",
    "A04": "copy-synthesis: LPC pulse/noise vocoder",
    "A05": "festival HTS statistical parametric TTS (slt en, ona ca) [eval only]",
    "A06": "flite TTS (slt, rms, awb, kal16) [eval only]",
    "A07": "copy-synthesis: WORLD-like harmonic + noise vocoder [eval only]",
    "A08": "codec then vocoder: Vorbis q-1, sharpened magnitude + Griffin-Lim [eval only]",
}
SPLITS = {  # split (its protocol and flac paths: official_paths) -> (utterance prefix, attacks)
    "train": ("LA_T_", ("A01", "A02", "A03", "A04")),
    "dev": ("LA_D_", ("A01", "A02", "A03", "A04")),
    "eval": ("LA_E_", ("A02", "A04", "A05", "A06", "A07", "A08")),
}
DIPHONE_VOICES = {
    "train": ("kal_diphone", "lp_diphone", "czech_dita"),
    "dev": ("ked_diphone", "suo_fi_lj_diphone"),
    "eval": ("pc_diphone", "kal_diphone"),
}
VOCODERS = {
    "A03": dsp.mel_griffin_lim,
    "A04": dsp.lpc_vocoder,
    "A07": dsp.harmonic_noise_vocoder,
    "A08": dsp.codec_griffin_lim,
}
DEFAULT_SIZES = {"train": (300, 175), "dev": (200, 125), "eval": (400, 150)}  # bona, per attack
SPLIT_SHARE = {"train": 0.35, "dev": 0.25, "eval": 0.40}  # of the word-level speakers' audio
NARROW_SHARE = 0.5
MIN_S, MAX_S = 1.0, 6.0


@dataclass
class Item:
    """One utterance to write."""

    split: str
    attack: str  # '-' for bona fide
    speaker: str
    clips: list[sources.Clip] = field(default_factory=list)  # the real speech it is made of
    pauses: list[float] = field(default_factory=list)
    tts: int = -1  # index into the synthesised TTS audio
    narrow: bool = False
    seed: int = 0
    lead: float = 0.0
    trail: float = 0.0
    level_db: float = -26.0
    snr_db: float = 40.0
    text: str = ""


def assign_speakers(clips: list[sources.Clip], durations: dict) -> dict[str, list[sources.Clip]]:
    """Clips per split: speakers disjoint (greedy by audio time towards SPLIT_SHARE); the
    Spanish telephone prompts go 70/30 to train/dev by prompt, the French ones to eval."""
    by_speaker: dict[str, list[sources.Clip]] = defaultdict(list)
    for clip in clips:
        by_speaker[clip.speaker].append(clip)
    out: dict[str, list[sources.Clip]] = {s: [] for s in SPLITS}
    es = by_speaker.pop("asterisk-prompt-es-co:es", [])
    out["train"] += [c for i, c in enumerate(es) if i % 10 < 7]
    out["dev"] += [c for i, c in enumerate(es) if i % 10 >= 7]
    out["eval"] += by_speaker.pop("asterisk-prompt-fr-armelle:fr", [])
    seconds = {s: sum(durations[c.path] for c in cs) for s, cs in by_speaker.items()}
    total = sum(seconds.values())
    filled = dict.fromkeys(SPLITS, 0.0)
    for speaker in sorted(seconds, key=lambda s: (-seconds[s], s)):
        split = max(SPLITS, key=lambda s: SPLIT_SHARE[s] * total - filled[s])
        filled[split] += seconds[speaker]
        out[split] += by_speaker[speaker]
    return out


def compose(rng: np.random.Generator, pool: list[sources.Clip], durations: dict) -> tuple:
    """(clips, pauses): one speaker's clips read in a row with 0.15-0.6 s pauses, up to a
    target duration of 1.2-5.5 s (one long telephone prompt stands alone)."""
    speaker = pool[int(rng.integers(len(pool)))].speaker
    own = [c for c in pool if c.speaker == speaker]
    target = rng.uniform(1.2, 5.5)
    chosen, pauses, total = [], [], 0.0
    for index in rng.permutation(len(own)):
        clip = own[index]
        length = durations[clip.path]
        if total + length > MAX_S - 0.5 or length < 0.15:
            continue
        if chosen:
            pauses.append(rng.uniform(0.15, 0.6))
            total += pauses[-1]
        chosen.append(clip)
        total += length
        if total >= target:
            break
    if not chosen:  # every clip too long for the target: the shortest one alone
        chosen = [min(own, key=lambda c: durations[c.path])]
    return chosen, pauses


def plan(clips_by_split: dict, durations: dict, sizes: dict, seed: int) -> list[Item]:
    """Every bona fide and copy-synthesis item, and the TTS candidates (1.5x per group)."""
    items = []
    for split_index, (split, (_, attacks)) in enumerate(SPLITS.items()):
        rng = np.random.default_rng([seed, VERSION, split_index])
        pool = clips_by_split[split]
        n_bona, n_attack = sizes[split]
        for attack in ("-", *attacks):
            count = n_bona if attack == "-" else n_attack
            if attack in ("A01", "A02", "A05", "A06"):
                count = int(np.ceil(1.5 * count))  # candidates, matched on duration later
            for _ in range(count):
                item = Item(split, attack, "", seed=int(rng.integers(2**31)))
                if attack in ("-", *VOCODERS):
                    item.clips, item.pauses = compose(rng, pool, durations)
                    item.speaker = item.clips[0].speaker
                    item.narrow = any(c.path.suffix == ".gsm" for c in item.clips)
                    item.text = "+".join(c.text for c in item.clips)
                items.append(item)
    return items


def tts_jobs(items: list[Item], clips_by_split: dict, seed: int) -> list[tts.Job]:
    """A synthesis job for every TTS item (sets its speaker, text and ``tts`` index)."""
    known = tts.espeak_voices()
    jobs = []
    for i, item in enumerate(items):
        if item.attack not in ("A01", "A02", "A05", "A06"):
            continue
        rng = np.random.default_rng([seed, VERSION, 7, i])
        pool = clips_by_split[item.split]
        parts = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
        if item.attack == "A01":
            clip = pool[int(rng.integers(len(pool)))]
            language = clip.language.split("_")[0] if clip.language.split("_")[0] in known else "en"
            words = [c.text.replace("_", " ") for c in pool if c.speaker == clip.speaker]
            voice = f"{language}+{rng.choice(tts.ESPEAK_VARIANTS)}"
            job = tts.Job(
                "espeak-ng", voice, tts.text(rng, language, parts, words), rng.uniform(0.8, 1.15)
            )
        elif item.attack == "A02":
            voice = str(rng.choice(DIPHONE_VOICES[item.split]))
            job = tts.Job("festival", voice, tts.text(rng, tts.FESTIVAL_DIPHONE[voice], parts))
        elif item.attack == "A05":
            voice = str(rng.choice(sorted(tts.FESTIVAL_HTS)))
            job = tts.Job("festival", voice, tts.text(rng, tts.FESTIVAL_HTS[voice], parts))
        else:
            voice = str(rng.choice(tts.FLITE_VOICES))
            job = tts.Job("flite", voice, tts.text(rng, "en", parts), rng.uniform(0.85, 1.15))
        item.speaker, item.text, item.tts = f"{job.engine}:{job.voice}", job.text, len(jobs)
        jobs.append(job)
    return jobs


def match_durations(items: list[Item], audio: list[np.ndarray], durations: dict, seed: int):
    """Keep 1/1.5 of the TTS candidates of each (split, attack): for each of as many durations
    drawn from the split's bona fide utterances, the unused candidate closest to it."""
    keep = [it for it in items if it.tts < 0]
    bona = defaultdict(list)
    groups = defaultdict(list)
    for it in items:
        if it.attack == "-":
            bona[it.split].append(sum(durations[c.path] for c in it.clips) + sum(it.pauses))
        if it.tts >= 0:
            groups[(it.split, it.attack)].append(it)
    for (split, attack), group in sorted(groups.items()):
        rng = np.random.default_rng([seed, VERSION, 11, list(SPLITS).index(split), int(attack[1:])])
        wanted = int(round(len(group) / 1.5))
        lengths = np.array([len(dsp.trim(audio[it.tts])) / dsp.SR for it in group])
        free = np.ones(len(group), bool)
        for target in rng.choice(bona[split], size=wanted):
            j = int(np.argmin(np.where(free, np.abs(lengths - target), np.inf)))
            free[j] = False
            keep.append(group[j])
    return keep


def stratified(rng: np.random.Generator, count: int, low: float, high: float) -> np.ndarray:
    return low + (high - low) * (rng.permutation(count) + rng.random(count)) / max(count, 1)


def assign_channel(items: list[Item], seed: int) -> None:
    """Per (split, attack): NARROW_SHARE in the telephone band (inherently narrow-band items
    first), silences, level and SNR from the same stratified draws for every group."""
    groups = defaultdict(list)
    for it in items:
        groups[(it.split, it.attack)].append(it)
    for key, group in sorted(groups.items()):
        rng = np.random.default_rng([seed, VERSION, 13, *map(ord, "".join(key))])
        want = int(round(NARROW_SHARE * len(group)))
        already = sum(it.narrow for it in group)
        wide = [it for it in group if not it.narrow]
        for j in rng.permutation(len(wide))[: max(0, want - already)]:
            wide[j].narrow = True
        n = len(group)
        for it, lead, trail, level, snr in zip(
            group,
            stratified(rng, n, 0.05, 0.5),
            stratified(rng, n, 0.05, 0.5),
            stratified(rng, n, -32, -20),
            stratified(rng, n, 30, 55),
            strict=True,
        ):
            it.lead, it.trail, it.level_db, it.snr_db = lead, trail, level, snr


def render(args: tuple[Item, np.ndarray | None]) -> np.ndarray:
    """The final waveform of one item (runs in a worker process)."""
    item, synthesised = args
    rng = np.random.default_rng([item.seed, VERSION])
    if synthesised is not None:
        wave = synthesised
    else:
        parts = []
        for k, clip in enumerate(item.clips):
            if k:
                parts.append(np.zeros(int(item.pauses[k - 1] * dsp.SR)))
            piece = dsp.trim(sources.decode(clip.path))
            parts.append(piece / dsp.active_rms(piece))
        wave = np.concatenate(parts)
        if item.attack in VOCODERS:
            wave = VOCODERS[item.attack](wave, rng)
    out = dsp.channel(wave, rng, item.narrow, item.lead, item.trail, item.level_db, item.snr_db)
    return out.astype(np.float32)


def write(la_dir: Path, items: list[Item], audio: list[np.ndarray], workers: int, seed: int):
    """Render every item and write flac files, protocols and the sanity rows."""
    speakers = sorted({it.speaker for it in items})
    speaker_ids = {s: f"LA_{i + 1:04d}" for i, s in enumerate(speakers)}
    rng = np.random.default_rng([seed, VERSION, 17])
    ids = rng.choice(9_000_000, size=len(items), replace=False) + 1_000_000
    order = rng.permutation(len(items))
    rows = []
    with Pool(workers) as pool:
        waves = pool.imap(
            render,
            ((items[i], audio[items[i].tts] if items[i].tts >= 0 else None) for i in order),
            chunksize=4,
        )
        lines = defaultdict(list)
        for k, (i, wave) in enumerate(zip(order, waves, strict=True)):
            it = items[i]
            prefix, _ = SPLITS[it.split]
            utt = f"{prefix}{ids[k]}"
            flac = official_paths(la_dir, "LA", it.split)[1] / f"{utt}.flac"
            flac.parent.mkdir(parents=True, exist_ok=True)
            sf.write(flac, wave, dsp.SR, "PCM_16")
            key = "bonafide" if it.attack == "-" else "spoof"
            lines[it.split].append((utt, f"{speaker_ids[it.speaker]} {utt} - {it.attack} {key}\n"))
            rows.append(
                {
                    "utt": utt,
                    "split": it.split,
                    "attack": it.attack,
                    "speaker": it.speaker,
                    "text": it.text,
                    "narrow": it.narrow,
                    **sanity.features(wave.astype(np.float64)),
                }
            )
    for split in SPLITS:
        protocol = official_paths(la_dir, "LA", split)[0]
        protocol.parent.mkdir(parents=True, exist_ok=True)
        protocol.write_text("".join(line for _, line in sorted(lines[split])))
    return rows, speaker_ids


def counts(rows: list[dict]) -> dict:
    out: dict = defaultdict(lambda: defaultdict(int))
    for r in rows:
        out[r["split"]][r["attack"]] += 1
    return {s: dict(sorted(c.items())) for s, c in out.items()}


def build(out: Path, cache: Path, seed: int = 0, workers: int = 2, sizes=DEFAULT_SIZES) -> Path:
    """Build ``out/LA`` (refused if it exists); returns it."""
    la_dir = out / "LA"
    if la_dir.exists():
        raise SystemExit(f"{la_dir} exists; remove it or choose another output directory")
    missing = sources.missing_tools()
    if missing:
        raise SystemExit(
            "missing Debian packages, install them first:\n  apt-get install " + " ".join(missing)
        )
    start = time.time()
    packages = sources.fetch(cache)
    clips = sources.clips({p: v["root"] for p, v in packages.items()})
    with Pool(workers) as pool:
        lengths = pool.map(_trimmed_seconds, [c.path for c in clips], chunksize=16)
    durations = {c.path: s for c, s in zip(clips, lengths, strict=True)}
    clips = [c for c in clips if 0.15 <= durations[c.path] <= MAX_S - 0.5]
    by_split = assign_speakers(clips, durations)
    items = plan(by_split, durations, sizes, seed)
    jobs = tts_jobs(items, by_split, seed)
    tmp = out / f".LA.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    audio = tts.synthesize(jobs, tmp / "tts")
    items = match_durations(items, audio, durations, seed)
    assign_channel(items, seed)
    rows, speaker_ids = write(tmp / "LA", items, audio, workers, seed)
    table = sanity.report(rows)
    manifest = {
        "version": VERSION,
        "seed": seed,
        "attacks": ATTACKS,
        "splits": {s: list(a) for s, (_, a) in SPLITS.items()},
        "bonafide_packages": {
            p: {k: v for k, v in d.items() if k != "root"} for p, d in packages.items()
        },
        "tool_packages": {p: sources.installed_version(p) for p in sources.TOOL_PACKAGES},
        "speakers": {
            s: {"id": i, "split": sorted({r["split"] for r in rows if r["speaker"] == s})}
            for s, i in speaker_ids.items()
        },
        "counts": counts(rows),
        "seconds": round(time.time() - start, 1),
    }
    (tmp / "LA" / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (tmp / "LA" / "utterances.json").write_text(json.dumps(rows, indent=0) + "\n")
    (tmp / "LA" / "sanity.json").write_text(
        json.dumps({"auc": table, "outside_0.35_0.65": sanity.worst(table)}, indent=1) + "\n"
    )
    (tmp / "LA" / "sanity.md").write_text(sanity.markdown(table))
    shutil.rmtree(tmp / "tts", ignore_errors=True)
    os.rename(tmp / "LA", la_dir)
    tmp.rmdir()
    return la_dir


def _trimmed_seconds(path: Path) -> float:
    return len(dsp.trim(sources.decode(path))) / dsp.SR


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output root (the corpus goes to OUT/LA)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="where .deb files are downloaded and unpacked (default OUT/debs)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count (smoke)")
    args = parser.parse_args(argv)
    sizes = {s: tuple(max(2, round(n * args.scale)) for n in c) for s, c in DEFAULT_SIZES.items()}
    la_dir = build(args.out, args.cache or args.out / "debs", args.seed, args.workers, sizes)
    print(la_dir)
    print((la_dir / "sanity.md").read_text())


if __name__ == "__main__":
    main()
