"""experiment=real_speech_cpu: its front-end sees the phase cue it was chosen for.

Two voiced signals with the same harmonic amplitudes: a pulse train (harmonics in phase, as
the glottal pulses of natural speech) and the same harmonics with random phases (what a
Griffin-Lim or sinusoidal vocoder re-synthesises). A 25 ms frame hardly tells them apart;
the recipe's 2 ms frames show the pulses as energy that comes and goes within each period.
"""

import functools
import math

import pytest
import torch
from hydra.utils import instantiate

from spoof_lightning.cli import compose_config

SR, SECONDS = 16_000, 1.0
NARROW = ["frontend.n_fft=512", "frontend.win_length=400", "frontend.hop_length=160"]


def harmonics(f0: float, phases: torch.Tensor) -> torch.Tensor:
    """Sum of the harmonics of ``f0``, unit amplitude, the given phases."""
    t = torch.arange(int(SR * SECONDS), dtype=torch.float64) / SR
    k = torch.arange(1, len(phases) + 1, dtype=torch.float64)[:, None]
    return torch.cos(2 * math.pi * f0 * k * t + phases[:, None]).sum(0).float()


@functools.cache
def recipe_frontend(*overrides: str) -> torch.nn.Module:
    cfg = compose_config("train", ["experiment=real_speech_cpu", *overrides])
    return instantiate(cfg.frontend).eval()


def pulse_gap(f0: float, frontend_overrides: list[str]) -> float:
    """How much more the log spectrum swings from frame to frame (std over frames, mean
    over bins) for the in-phase harmonics than for the random-phase ones."""
    frontend = recipe_frontend(*frontend_overrides)
    n = int(4000 / f0) - 1  # the harmonics below 4 kHz
    aligned = harmonics(f0, torch.zeros(n))
    random_phase = torch.rand(n, generator=torch.Generator().manual_seed(0)) * 2 * math.pi
    with torch.no_grad():
        feats = frontend(torch.stack([aligned, harmonics(f0, random_phase)]))[:, :, 10:-10]
    spread = feats.std(dim=2).mean(dim=1)
    return float(spread[0] - spread[1])


@pytest.mark.parametrize("f0", [90.0, 125.0, 180.0, 240.0])
def test_the_recipe_front_end_sees_the_phase_that_25_ms_frames_average_away(f0: float) -> None:
    wide = pulse_gap(f0, [])
    assert wide > 1.5  # nats: the 2 ms frames swing with the pulses of each period
    assert abs(pulse_gap(f0, NARROW)) < 0.2 * wide
