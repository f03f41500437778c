"""Front-end × model pairs are checked before anything is built."""

import pytest

from spoof_lightning.build import ConfigError, build_components
from spoof_lightning.contracts import IncompatiblePairError

RAW = {"_target_": "spoof_lightning.frontends.raw.RawFrontEnd"}
LFCC = {"_target_": "spoof_lightning.frontends.lfcc.LFCCFrontEnd", "n_lfcc": 20, "deltas": 0}
CNN_GRU = {
    "_target_": "spoof_lightning.models.cnn_gru.CNNGRU",
    "filts": [8, [8, 8], [8, 16], [16, 16]],
    "gru_hidden": 16,
}
RES2NET = {"_target_": "spoof_lightning.models.se_res2net.SERes2Net"}


def test_model_is_built_with_the_frontend_channel_count():
    frontend, model = build_components(LFCC, CNN_GRU)
    assert frontend.out_channels == 20
    assert model.__class__.__name__ == "CNNGRU"


def test_incompatible_pair_names_both_choices():
    with pytest.raises(IncompatiblePairError, match="frontend=raw.*model=se_res2net50"):
        build_components(RAW, RES2NET, names={"frontend": "raw", "model": "se_res2net50"})


def test_unknown_target_names_the_config_key():
    with pytest.raises(ConfigError, match=r"model\._target_.*no_such_model"):
        build_components(LFCC, {"_target_": "spoof_lightning.models.no_such_model.Model"})


def test_missing_target_names_the_config_key():
    with pytest.raises(ConfigError, match="config `frontend` has no `_target_`"):
        build_components({"n_lfcc": 20}, CNN_GRU)


def test_a_wrapped_backbone_is_checked_against_the_frontend():
    localizer = {
        "_target_": "spoof_lightning.models.frame_localizer.FrameLocalizer",
        "backbone": {"_target_": "spoof_lightning.models.tssdnet.IncTSSDNet"},
        "frame_hop": 0.02,
    }
    with pytest.raises(
        IncompatiblePairError, match=r"model=frame_localizer \(backbone IncTSSDNet\)"
    ):
        build_components(LFCC, localizer, names={"frontend": "lfcc", "model": "frame_localizer"})
