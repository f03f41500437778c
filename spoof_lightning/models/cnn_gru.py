"""The demo's small CNN-GRU: RawNet2's layers (:mod:`spoof_lightning.models.rawnet2`) at demo
size, with the paper's pre-activation block."""

from typing import Any

from spoof_lightning.models.rawnet2 import RawNet2

DEMO_SIZE = {
    "filts": (16, (16, 16), (16, 32), (32, 32)),
    "first_conv_kernel": 129,
    "first_conv_stride": 4,
    "gru_hidden": 64,
    "gru_layers": 1,
    "fc_hidden": 0,
    "preactivation": True,
}


class CNNGRU(RawNet2):
    """RawNet2-style CNN-GRU, ~0.05M parameters (conf/model/cnn_gru.yaml): :class:`RawNet2`
    whose keyword arguments default to :data:`DEMO_SIZE`."""

    def __init__(self, in_channels: int, **kwargs: Any) -> None:
        super().__init__(in_channels, **{**DEMO_SIZE, **kwargs})
