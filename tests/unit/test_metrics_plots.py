"""DET and histogram PNGs are written and non-empty."""

from pathlib import Path

import numpy as np
import pytest

from spoof_lightning.metrics.plots import plot_det, plot_score_histogram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_write_pngs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bona, spoof = rng.normal(2, 1, 300), rng.normal(0, 1, 900)
    det = plot_det({"a": (bona, spoof), "b": (bona, spoof + 1)}, tmp_path / "sub" / "det.png")
    hist = plot_score_histogram(bona, spoof, tmp_path / "hist.png", threshold=1.0)
    for path in (det, hist):
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    with pytest.raises(ValueError, match="at least one system"):
        plot_det({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="spoof 0"):
        plot_score_histogram(bona, [], tmp_path / "x.png")
