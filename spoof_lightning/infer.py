"""Score audio files with an exported or trained countermeasure; no Hydra, no training config.

    spoof-lightning infer model.onnx|model.ts|model.pt|best.ckpt file.wav [...]
        [--threshold T]

Prints one tab-separated line per file: ``file``, ``score`` (logit_bona - logit_spoof,
higher = more bona fide), ``decision`` (``bonafide`` when score > the threshold stored with
the model, the dev-set EER threshold, or ``--threshold``; ``-`` without one) and, when the
model was exported with a calibration, ``p_bonafide``: the posterior probability of bona
fide at the calibration prior, ``sigmoid(scale * score + offset + logit(prior))``. A file
that cannot be read gets one ``error: <file>: <reason>`` line on stderr; the others are
scored, and the command exits 2.

Each file is read as eval.py reads it (mono, resampled to the model's rate), then cropped
to its first ``eval_crop`` samples and padded (the checkpoint's data config, stored in the
export), so the scores are those of ``eval.py`` on the same checkpoint. The Python API is
:class:`Scorer`: ``Scorer.load(path).score_file("a.wav")``. Released weights (``AASIST.pth``)
store no config: export them first (``spoof-lightning export ckpt=AASIST.pth
model=aasist format=onnx``).
"""

import math
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spoof_lightning.cli import USER_ERROR_EXIT_CODE, CommandParser
from spoof_lightning.data.audio import AudioError, fix_length, load_audio
from spoof_lightning.metrics.calibration import stored_calibration


@dataclass
class Result:
    """The score of one file, its decision (None without a threshold) and, for calibrated
    models, the probability of bona fide."""

    path: str
    score: float
    decision: str | None
    p_bonafide: float | None


@dataclass
class Scorer:
    """A model ``waveform [B, T] -> logits [B, 2]`` and what scoring a file needs."""

    logits: Callable[[np.ndarray], np.ndarray]
    sample_rate: int
    eval_crop: int | None
    pad: str
    threshold: float | None
    calibration: Mapping[str, float] | None
    min_samples: int = 1

    @classmethod
    def load(cls, path: str | Path) -> "Scorer":
        """From an ONNX or TorchScript export, an exported ``.pt`` or a train.py checkpoint."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model {path} not found")
        if path.suffix == ".onnx" or (zipfile.is_zipfile(path) and _is_torchscript(path)):
            return cls._from_graph(path)
        return cls._from_checkpoint(path)

    @classmethod
    def _from_info(
        cls, run: Callable[[np.ndarray], np.ndarray], info: Mapping[str, str]
    ) -> "Scorer":
        return cls(
            logits=run,
            sample_rate=int(info["sample_rate"]),
            eval_crop=int(info["eval_crop"]) if info.get("eval_crop") else None,
            pad=info.get("pad") or "repeat",
            threshold=float(info["eer_threshold"]) if info.get("eer_threshold") else None,
            calibration=stored_calibration(
                {key: info.get(f"calibration_{key}") for key in ("scale", "offset", "prior")}
            ),
            min_samples=int(info.get("min_samples") or 1),
        )

    @classmethod
    def _from_graph(cls, path: Path) -> "Scorer":
        from spoof_lightning.graph_export import load_onnx, load_torchscript

        run, info = (load_onnx if path.suffix == ".onnx" else load_torchscript)(path)
        if "sample_rate" not in info:
            raise ValueError(f"{path} is not a model exported by `spoof-lightning export`")
        return cls._from_info(run, info)

    @classmethod
    def _from_checkpoint(cls, path: Path) -> "Scorer":
        from spoof_lightning.checkpoint import load_countermeasure
        from spoof_lightning.export import scoring_setup

        loaded = load_countermeasure(path)

        def run(wave: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return loaded.net(torch.from_numpy(wave)).logits.numpy()

        crop, pad = scoring_setup(loaded)
        return cls(
            logits=run,
            sample_rate=loaded.sample_rate,
            eval_crop=crop,
            pad=pad,
            threshold=loaded.eer_threshold,
            calibration=loaded.calibration,
            min_samples=int(getattr(loaded.net.frontend, "min_samples", 1)),
        )

    def waveform(self, path: str | Path) -> np.ndarray:
        """The model input of one file ``[1, T]`` (raises AudioError naming the file)."""
        x = load_audio(path, self.sample_rate)
        if self.eval_crop is not None:
            x = fix_length(x, self.eval_crop, "first", self.pad)
        elif len(x) < self.min_samples:
            x = fix_length(x, self.min_samples, "first", self.pad)
        return np.ascontiguousarray(x, dtype=np.float32)[None]

    def score_file(self, path: str | Path, threshold: float | None = None) -> Result:
        """Score one file (``threshold`` overrides the stored one)."""
        logits = self.logits(self.waveform(path))[0]
        score = float(logits[1] - logits[0])
        threshold = self.threshold if threshold is None else threshold
        decision = None if threshold is None else ("bonafide" if score > threshold else "spoof")
        probability = None
        if self.calibration:
            c = self.calibration
            z = c["scale"] * score + c["offset"] + math.log(c["prior"] / (1 - c["prior"]))
            probability = 1 / (1 + math.exp(-z)) if z > -700 else 0.0
        return Result(str(path), score, decision, probability)


def _is_torchscript(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def format_result(result: Result, calibrated: bool) -> str:
    fields = [result.path, f"{result.score:.6f}", result.decision or "-"]
    if calibrated:
        fields.append(f"{result.p_bonafide:.6f}")
    return "\t".join(fields)


def main(argv: list[str] | None = None) -> None:
    parser = CommandParser("infer", __doc__.splitlines()[0])
    parser.add_argument("model", help="model.onnx, model.ts, model.pt or a train.py checkpoint")
    parser.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3, ...)")
    parser.add_argument("--threshold", type=float, help="decision threshold (default: stored)")
    args = parser.parse_args(argv)
    try:
        scorer = Scorer.load(args.model)
    except Exception as err:  # a model file that cannot be used: one line, exit 2
        print(f"error: {args.model}: {err}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT_CODE) from None
    calibrated = scorer.calibration is not None
    print("\t".join(["file", "score", "decision"] + (["p_bonafide"] if calibrated else [])))
    failed = 0
    for path in args.files:
        try:
            result = scorer.score_file(path, args.threshold)
        except Exception as err:  # unreadable, or not scorable (too short): name the file
            reason = err.reason if isinstance(err, AudioError) else str(err).splitlines()[0]
            print(f"error: {path}: {reason}", file=sys.stderr)
            failed += 1
            continue
        print(format_result(result, calibrated), flush=True)
    if failed:
        raise SystemExit(USER_ERROR_EXIT_CODE)


if __name__ == "__main__":
    main()
