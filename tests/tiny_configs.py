"""Small model configurations shared by tests (never a real pretrained size)."""

# wav2vec2 for torchaudio's builder: a 3-layer CNN with stride 20, 2 transformer layers of
# dim 32 — the XLS-R code path at a size that runs in milliseconds on CPU.
TINY_WAV2VEC2 = {
    "extractor_conv_layer_config": [[16, 10, 5], [16, 3, 2], [16, 2, 2]],
    "encoder_embed_dim": 32,
    "encoder_pos_conv_kernel": 4,
    "encoder_pos_conv_groups": 2,
    "encoder_num_layers": 2,
    "encoder_num_heads": 2,
    "encoder_ff_interm_features": 64,
}

# WavLM (gated relative position bias) at the same size, for family=wavlm.
TINY_WAVLM = {
    **TINY_WAV2VEC2,
    "family": "wavlm",
    "encoder_num_buckets": 8,
    "encoder_max_distance": 16,
}
