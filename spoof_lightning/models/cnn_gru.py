"""The demo's small CNN-GRU: RawNet2's layers (:mod:`spoof_lightning.models.rawnet2`) at demo
size, with the paper's pre-activation block."""

from collections.abc import Sequence

from spoof_lightning.models.rawnet2 import RawNet2


class CNNGRU(RawNet2):
    """RawNet2-style CNN-GRU, ~0.05M parameters (conf/model/cnn_gru.yaml); the arguments are
    :class:`RawNet2`'s, with demo-size defaults and ``preactivation=True``."""

    def __init__(
        self,
        in_channels: int,
        filts: Sequence[int | Sequence[int]] = (16, (16, 16), (16, 32), (32, 32)),
        blocks_per_group: int = 2,
        first_conv_kernel: int = 129,
        first_conv_stride: int = 4,
        gru_hidden: int = 64,
        gru_layers: int = 1,
        fc_hidden: int = 0,
        min_frames: int = 8,
        preactivation: bool = True,
    ) -> None:
        super().__init__(
            in_channels, filts, blocks_per_group, first_conv_kernel, first_conv_stride,
            gru_hidden, gru_layers, fc_hidden, min_frames, preactivation,
        )  # fmt: skip
