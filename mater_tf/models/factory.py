"""The one factory that turns a config into a model (CLI, CV and tuner use it)."""

from __future__ import annotations

import dataclasses

from mater_tf.config import ModelConfig
from mater_tf.models.mater import MATER


def build_model(
    config: ModelConfig,
    audio_dim: int,
    face_dim: int,
    num_classes: int,
    num_windows: int | None = None,
    log_mel_frames: int | None = None,
) -> MATER:
    """Builds MATER (or a variant) for embeddings (or log-mel patches) of the given sizes."""
    return MATER(
        audio_dim=audio_dim,
        face_dim=face_dim,
        num_classes=num_classes,
        num_windows=num_windows,
        modalities=tuple(config.modalities),
        encoder=config.encoder,
        positional_encoding=config.positional_encoding,
        attention=config.attention,
        num_layers=config.num_layers,
        d_model=config.d_model,
        num_heads=config.num_heads,
        ff_dim=config.ff_dim,
        dropout=config.dropout,
        head_hidden_dim=config.head_hidden_dim,
        audio_frontend=config.audio_frontend,
        log_mel_frames=log_mel_frames if config.learns_audio else None,
        log_mel_normalization=config.log_mel_normalization,
        embedding_scale=config.embedding_scale,
        log_mel_augment=dataclasses.asdict(config.augment) if config.augment.active else None,
        audio_frontend_filters=tuple(config.audio_frontend_filters),
        audio_frontend_pooling=config.audio_frontend_pooling,
        window_pooling=config.window_pooling,
        ensemble=config.ensemble,
        band_statistics=tuple(config.band_statistics),
        utterance_functionals=config.utterance_functionals,
        utterance_l2=config.utterance_l2,
        name="mater",
    )
