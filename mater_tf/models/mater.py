"""The MATER network: one encoder per modality over time windows, late fusion.

Its parts, each in its own file: `ModalityEncoder` (modality_encoder.py), the backbone of a
branch; `ClassifierHead` (classifier_head.py), a branch's logits; `LogMelInput`
(log_mel_input.py), the learned audio front end's input stage; `ensemble_outputs`
(ensemble.py), the members' averaging; the late fusion is `mater_tf.layers.LateFusion`. The
parts build named layers into one flat functional graph rather than nested models: a `.keras`
file addresses weights by their place in the top-level graph, so models saved before the
split (the built-in among them) load into this class unchanged.
"""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.config.model import learns_audio_frontend
from mater_tf.layers import PACKAGE, LateFusion
from mater_tf.layers.band_statistics import DEFAULT_BAND_STATISTICS
from mater_tf.layers.patch_frontend import SMALL_FILTERS
from mater_tf.models.classifier_head import WINDOW_POOLINGS, ClassifierHead
from mater_tf.models.ensemble import ensemble_outputs, member_suffix
from mater_tf.models.log_mel_input import LogMelInput
from mater_tf.models.modality_encoder import EMBEDDING_SCALES, ModalityEncoder


@keras.saving.register_keras_serializable(package=PACKAGE)
class MATER(keras.Model):
    """Dual-stream MATER (Ghaleb et al., ICIP 2020, section 2.2).

    Per modality: the window embeddings [batch, T, D] are zeroed where absent,
    projected to `d_model`, scaled (`embedding_scale`), given the sinusoidal PE, passed through
    `num_layers` encoder layers (or LSTMs for the baseline), mean-pooled over
    the present windows and mapped to class logits by two FC layers. The
    fused logits average the modalities present (paper eq. 3).

    Inputs (by name): `{m}_embedding` [batch, T, D_m] and `{m}_valid`
    [batch, T] (1 = window present) for each modality m in `modalities`.
    Outputs: `logits` (fused) and `{m}_logits` per modality. An ensemble
    (`ensemble` > 1) adds `member_logits` and `{m}_member_logits`, every
    member's logits [batch, members, classes], for the members' losses.

    Args:
        audio_dim: D_a, size of the audio embeddings.
        face_dim: D_v, size of the face embeddings.
        num_classes: emotion classes.
        num_windows: T, or None for any length.
        modalities: branches to build, from ("audio", "face").
        encoder: "transformer" (MATER) or "lstm" (baseline).
        positional_encoding: add the sinusoidal PE.
        attention: keep multi-head self-attention in the encoder layers.
        num_layers: encoder layers per modality.
        d_model: encoder width.
        num_heads: attention heads.
        ff_dim: feed-forward hidden width.
        dropout: dropout rate.
        head_hidden_dim: width of the first FC layer.
        audio_frontend: "none" (the audio input is window embeddings), or
            "vggish" / "small" / "stats": the audio input is each window's log-mel
            patch (`audio_log_mel` [batch, T, log_mel_frames, 64]) and this front
            end (conv, or band statistics), inside the network, embeds it.
        log_mel_frames: log-mel frames per window (with a front end).
        log_mel_normalization: how the front end normalises each patch: "band",
            "patch", "clip" or "none" (see `mater_tf.layers.patch_frontend.NORMALIZATIONS`).
        audio_frontend_filters: the `small` front end's channels per conv block.
        audio_frontend_pooling: how the front end pools its last feature map
            (see `mater_tf.layers.patch_frontend.POOLINGS`).
        band_statistics: what the `stats` front end (and the `band_stats`
            pooling) computes per mel band over each window
            (`mater_tf.layers.band_statistics.BAND_STATISTICS`).
        window_pooling: how each branch's encoded windows become one vector:
            "mean" over the present windows (the paper, eq. 2) or "concat", the
            windows side by side (absent ones zero), so the head sees which
            window said what (`WINDOW_POOLINGS`).
        ensemble: members of a deep ensemble (1 = the single network). Every
            member is a whole set of branches with its own initial weights and
            dropout, trained on its own loss (`MemberCrossEntropy`) side by side
            on the same batches; `logits` and `{m}_logits` average the members'
            probabilities (`EnsembleAverage`). The audio front end (its
            normalisation statistics, and a conv front end's weights) is shared.
            The attention views show member 0.
        utterance_functionals: with a front end, the audio branch also reads the whole
            clip as one vector, the functionals of its log-mel and voice descriptors
            (`audio_voice_descriptors` [batch, T, log_mel_frames, 18]; `LogMelInput`),
            through a linear layer with an L2 penalty (what a linear SVM on the field's
            standard functionals is) whose logits add to the windows' audio logits
            (`ClassifierHead`). Every ensemble member has its own linear layer.
        utterance_l2: the L2 penalty of that linear layer's weights.
        log_mel_augment: with a front end, the arguments of a `LogMelAugment`
            (random gain per clip, SpecAugment masks per window; training only),
            or None for no augmentation.
        embedding_scale: "sqrt_d_model" multiplies the projected embeddings by
            sqrt(d_model) before the PE (Vaswani et al. 3.4; not a learned audio front
            end's output: `ModalityEncoder` says why); "none" adds the PE to the bare
            projection. Models saved before this option existed load with "none", as
            they were trained.
    """

    def __init__(
        self,
        audio_dim,
        face_dim,
        num_classes,
        num_windows=None,
        modalities=("audio", "face"),
        encoder="transformer",
        positional_encoding=True,
        attention=True,
        num_layers=6,
        d_model=512,
        num_heads=8,
        ff_dim=2048,
        dropout=0.1,
        head_hidden_dim=256,
        audio_frontend="none",
        log_mel_frames=None,
        log_mel_normalization="band",
        embedding_scale="sqrt_d_model",
        log_mel_augment=None,
        audio_frontend_filters=SMALL_FILTERS,
        audio_frontend_pooling="time_and_frequency",
        window_pooling="mean",
        ensemble=1,
        band_statistics=DEFAULT_BAND_STATISTICS,
        utterance_functionals=False,
        utterance_l2=0.01,
        **kwargs,
    ):
        if window_pooling not in WINDOW_POOLINGS:
            raise ValueError(
                f"window_pooling must be one of {tuple(WINDOW_POOLINGS)}, got {window_pooling!r}"
            )
        if window_pooling == "concat" and not num_windows:
            raise ValueError("window_pooling='concat' needs num_windows")
        if ensemble < 1:
            raise ValueError(f"ensemble must be at least 1, got {ensemble}")
        if embedding_scale not in EMBEDDING_SCALES:
            raise ValueError(f"embedding_scale must be one of {EMBEDDING_SCALES}, got {embedding_scale!r}")
        modalities = tuple(modalities)
        learns_audio = learns_audio_frontend(audio_frontend, modalities)
        if utterance_functionals and not learns_audio:
            raise ValueError("utterance_functionals needs the audio branch with a learned front end")
        dims = {"audio": audio_dim, "face": face_dim}

        # === Layers ===
        # Per ensemble member: an encoder and a head per modality and their late fusion (layer
        # names end in _member{k}; a single model's have no suffix). The audio input stage, when
        # the model learns its front end, is one for all members.
        members = []
        for member in range(ensemble):
            suffix = member_suffix(member, ensemble)
            encoders, heads = {}, {}
            for modality in modalities:
                learned = modality == "audio" and learns_audio
                encoders[modality] = ModalityEncoder(
                    modality,
                    d_model=d_model,
                    num_layers=num_layers,
                    num_heads=num_heads,
                    ff_dim=ff_dim,
                    dropout=dropout,
                    encoder=encoder,
                    positional_encoding=positional_encoding,
                    attention=attention,
                    scale_embeddings=embedding_scale == "sqrt_d_model" and not learned,
                    suffix=suffix,
                )
                heads[modality] = ClassifierHead(
                    modality,
                    num_classes=num_classes,
                    hidden_dim=head_hidden_dim,
                    dropout=dropout,
                    window_pooling=window_pooling,
                    utterance_l2=utterance_l2 if learned and utterance_functionals else None,
                    suffix=suffix,
                )
            members.append((encoders, heads, LateFusion(name=f"logits{suffix}")))
        log_mel_input = None
        if learns_audio:
            log_mel_input = LogMelInput(
                audio_frontend,
                log_mel_frames,
                normalization=log_mel_normalization,
                filters=audio_frontend_filters,
                pooling=audio_frontend_pooling,
                statistics=band_statistics,
                augment=log_mel_augment,
                utterance_functionals=utterance_functionals,
            )

        # === Functional model ===
        inputs, embeddings, valids = {}, {}, {}
        utterance = None
        for modality in modalities:
            valids[modality] = keras.Input((num_windows,), name=f"{modality}_valid")
            if modality == "audio" and log_mel_input is not None:
                audio_inputs = log_mel_input.inputs(num_windows)
                inputs.update(audio_inputs)
                embeddings[modality], utterance = log_mel_input(audio_inputs, valids[modality])
            else:
                embeddings[modality] = keras.Input(
                    (num_windows, dims[modality]), name=f"{modality}_embedding"
                )
                inputs[f"{modality}_embedding"] = embeddings[modality]
            inputs[f"{modality}_valid"] = valids[modality]
            # Absent windows are zeroed first, so their contents cannot reach any output.
            embeddings[modality] = embeddings[modality] * ops.expand_dims(
                ops.cast(valids[modality], embeddings[modality].dtype), -1
            )
        attention_scores = {}  # the attention views show member 0
        member_outputs = []  # per member: {"logits": fused, "{m}_logits": ...}
        for member, (encoders, heads, fusion) in enumerate(members):
            logits = {}
            for modality in modalities:
                encoded = encoders[modality](
                    embeddings[modality], valids[modality], attention_scores if member == 0 else None
                )
                logits[f"{modality}_logits"] = heads[modality](encoded, valids[modality], utterance)
            fused = fusion(list(logits.values()), [valids[m] for m in modalities])
            member_outputs.append({"logits": fused, **logits})
        super().__init__(inputs=inputs, outputs=ensemble_outputs(member_outputs), **kwargs)

        # === Config ===
        self.audio_dim = audio_dim
        self.face_dim = face_dim
        self.num_classes = num_classes
        self.num_windows = num_windows
        self.modalities = modalities
        self.encoder = encoder
        self.positional_encoding = positional_encoding
        self.attention = attention
        self.num_layers = num_layers
        self.d_model = d_model
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = dropout
        self.head_hidden_dim = head_hidden_dim
        self.audio_frontend = audio_frontend
        self.log_mel_frames = log_mel_frames
        self.log_mel_normalization = log_mel_normalization
        self.embedding_scale = embedding_scale
        self.log_mel_augment = dict(log_mel_augment) if log_mel_augment else None
        self.audio_frontend_filters = tuple(audio_frontend_filters)
        self.audio_frontend_pooling = audio_frontend_pooling
        self.window_pooling = window_pooling
        self.ensemble = ensemble
        self.band_statistics = tuple(band_statistics)
        self.utterance_functionals = utterance_functionals
        self.utterance_l2 = utterance_l2
        self._attention_scores = attention_scores

    def attention_model(self) -> keras.Model:
        """A model on the same inputs that returns every layer's attention weights.

        Outputs `{modality}_attention_{layer}`: [batch, heads, T, T], row t is
        how window t attends to every window. Empty when attention is off or
        the encoder is an LSTM.
        """
        if not self._attention_scores:
            raise ValueError("this model has no attention (attention=False, encoder='lstm' or num_layers=0)")
        return keras.Model(self.inputs, dict(self._attention_scores), name="mater_attention")

    def get_config(self):
        return {
            "audio_dim": self.audio_dim,
            "face_dim": self.face_dim,
            "num_classes": self.num_classes,
            "num_windows": self.num_windows,
            "modalities": list(self.modalities),
            "encoder": self.encoder,
            "positional_encoding": self.positional_encoding,
            "attention": self.attention,
            "num_layers": self.num_layers,
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
            "head_hidden_dim": self.head_hidden_dim,
            "audio_frontend": self.audio_frontend,
            "log_mel_frames": self.log_mel_frames,
            "log_mel_normalization": self.log_mel_normalization,
            "embedding_scale": self.embedding_scale,
            "log_mel_augment": self.log_mel_augment,
            "audio_frontend_filters": list(self.audio_frontend_filters),
            "audio_frontend_pooling": self.audio_frontend_pooling,
            "window_pooling": self.window_pooling,
            "ensemble": self.ensemble,
            "band_statistics": list(self.band_statistics),
            "utterance_functionals": self.utterance_functionals,
            "utterance_l2": self.utterance_l2,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        # Models saved before these options existed standardised each patch and
        # added the PE to the unscaled projection.
        return cls(**{"log_mel_normalization": "patch", "embedding_scale": "none", **config})
