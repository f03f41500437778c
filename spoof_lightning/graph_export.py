"""Trace a countermeasure, front-end included, into ONNX or TorchScript, and check the result.

The graph maps a waveform ``[batch, time]`` (float32, at the model's sample rate) to
``logits [batch, 2]`` (spoof, bona fide; score = ``logits[:, 1] - logits[:, 0]``), with
both axes dynamic. It is traced once at ``length`` samples: code that depends on the input
length in Python is kept as a branch (``torch.jit.script_if_tracing`` in the models), and
:func:`verify` runs the exported graph at other lengths against the eager model; a graph
that does not give the same logits (within ``TOLERANCE``) is refused, never written.

ONNX uses the TorchScript-based exporter (``dynamo=False``: seconds, no extra dependency),
opset 17. Its STFT takes no complex tensors, so the torchaudio spectrograms of the spectral
front-ends (``spectrogram``, ``mel``, ``lfcc``) are swapped, in a copy of the model, for the
same STFT computed with real outputs (:class:`RealSpectrogram`); nnAudio's CQT is convolutions
and exports as it is.
"""

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn

from spoof_lightning.checkpoint import Countermeasure

OPSET = 17
TOLERANCE = 1e-4  # max |logit difference| between an exported graph and the eager model
METADATA_FILE = "spoof_lightning.json"  # TorchScript extra file holding the metadata


class ExportError(ValueError):
    """A model that cannot be exported (or whose export does not match it), by name."""


class ScoringGraph(nn.Module):
    """What is exported: waveform ``[B, T]`` -> logits ``[B, 2]``, front-end included."""

    def __init__(self, net: Countermeasure) -> None:
        super().__init__()
        self.net = net

    def forward(self, waveform: Tensor) -> Tensor:
        return self.net(waveform).logits


class RealSpectrogram(nn.Module):
    """A ``torchaudio.transforms.Spectrogram`` (its window and settings) computed from the
    real/imaginary STFT, which the ONNX exporter supports: ``|X|^power``."""

    def __init__(self, spectrogram: torchaudio.transforms.Spectrogram) -> None:
        super().__init__()
        if spectrogram.normalized or spectrogram.power is None:
            raise ExportError("ONNX export supports power spectrograms without normalisation")
        self.spectrogram = spectrogram

    def forward(self, x: Tensor) -> Tensor:
        s = self.spectrogram
        if s.pad > 0:
            x = F.pad(x, (s.pad, s.pad))
        shape = x.shape
        z = torch.stft(
            x.reshape(-1, shape[-1]),
            s.n_fft,
            s.hop_length,
            s.win_length,
            s.window,
            s.center,
            s.pad_mode,
            normalized=False,
            onesided=s.onesided,
            return_complex=False,
        )
        power = z.pow(2).sum(-1)  # |X|^2
        out = power if s.power == 2 else power.pow(s.power / 2)
        return out.reshape(shape[:-1] + out.shape[-2:])


def onnx_ready(net: Countermeasure) -> Countermeasure:
    """A copy of ``net`` whose torchaudio spectrograms are :class:`RealSpectrogram`."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, torchaudio.transforms.Spectrogram):
                setattr(module, name, RealSpectrogram(child))
    return net


def check_lengths(length: int, min_samples: int = 1) -> list[int]:
    """The input lengths an export is checked at: ``length``, a shorter and a longer one."""
    return sorted({length, max(min_samples, (3 * length) // 4 + 1), 2 * length - 7})


def verify(
    run: Callable[[np.ndarray], np.ndarray], net: Countermeasure, lengths: Sequence[int], what: str
) -> float:
    """Largest |logit difference| between ``run`` (the exported graph) and ``net`` over
    random waveforms of ``lengths`` (batch 2); ExportError above :data:`TOLERANCE`."""
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for length in lengths:
        wave = 0.1 * torch.randn(2, length, generator=generator)
        with torch.no_grad():
            expected = net(wave).logits.numpy()
        got = run(wave.numpy())
        worst = max(worst, float(np.abs(got - expected).max()))
        if not worst <= TOLERANCE:
            raise ExportError(
                f"the {what} export gives other logits than the model at {length} samples "
                f"(max |difference| {worst:.3g} > {TOLERANCE}): the traced graph does not "
                "generalise to this input length; the file is not written"
            )
    return worst


def to_onnx(net: Countermeasure, path: Path, length: int, metadata: dict[str, str]) -> None:
    """Write ``net`` as ONNX to ``path`` (traced at ``length`` samples), with ``metadata``
    in the model's ``metadata_props``."""
    import onnx

    graph = ScoringGraph(onnx_ready(net)).eval()
    example = torch.zeros(1, length)
    torch.onnx.export(
        graph,
        (example,),
        str(path),
        dynamo=False,
        opset_version=OPSET,
        input_names=["waveform"],
        output_names=["logits"],
        dynamic_axes={"waveform": {0: "batch", 1: "time"}, "logits": {0: "batch"}},
    )
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, metadata)
    onnx.save(model, str(path))


def load_onnx(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, str]]:
    """``(waveform [B, T] -> logits [B, 2] through onnxruntime on CPU, metadata_props)``."""
    import onnx
    import onnxruntime

    metadata = {
        p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props
    }
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: buffer-reuse notes of dynamic shapes are noise
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda wave: session.run(None, {"waveform": wave.astype(np.float32)})[0], metadata


def to_torchscript(net: Countermeasure, path: Path, length: int, metadata: dict[str, str]) -> None:
    """Write ``net`` as a traced TorchScript module with ``metadata`` (a JSON extra file)."""
    graph = ScoringGraph(net).eval()
    with torch.no_grad():
        traced = torch.jit.trace(graph, (torch.zeros(1, length),), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})


def load_torchscript(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, str]]:
    """``(waveform [B, T] -> logits [B, 2] through the TorchScript module, its metadata)``."""
    files = {METADATA_FILE: ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)

    def run(wave: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(wave.astype(np.float32))).numpy()

    return run, json.loads(files[METADATA_FILE] or "{}")


__all__ = [
    "METADATA_FILE",
    "OPSET",
    "TOLERANCE",
    "ExportError",
    "RealSpectrogram",
    "ScoringGraph",
    "check_lengths",
    "load_onnx",
    "load_torchscript",
    "onnx_ready",
    "to_onnx",
    "to_torchscript",
    "verify",
]
