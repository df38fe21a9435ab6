"""The MATER network: one encoder per modality over time windows, late fusion."""

from __future__ import annotations

import math

import keras
from keras import ops

from mater_tf.data.schema import member_key
from mater_tf.layers import (
    PACKAGE,
    EncoderBlock,
    EnsembleAverage,
    LateFusion,
    MaskedConcatPooling,
    MaskedMeanPooling,
    PositionalEncoding,
    StackMembers,
)
from mater_tf.layers.augment import LogMelAugment
from mater_tf.layers.frontends import DEFAULT_BAND_STATISTICS, SMALL_FILTERS, WindowFrontend
from mater_tf.layers.utterance_functionals import UtteranceFunctionals

# The voice descriptors per log-mel frame (= mater_tf.data.schema.VOICE_DESCRIPTORS; models
# import no data module, a test holds them equal).
VOICE_DESCRIPTORS = 18

OUTPUT_KEYS = ("logits", "audio_logits", "face_logits")
# How the projected embeddings are scaled before the PE is added (see `MATER`).
EMBEDDING_SCALES = ("sqrt_d_model", "none")
WINDOW_POOLINGS = {"mean": MaskedMeanPooling, "concat": MaskedConcatPooling}


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
            "patch", "clip" or "none" (see `mater_tf.layers.frontends.NORMALIZATIONS`).
        audio_frontend_filters: the `small` front end's channels per conv block.
        audio_frontend_pooling: how the front end pools its last feature map
            (see `mater_tf.layers.frontends.POOLINGS`).
        band_statistics: what the `stats` front end (and the `band_stats`
            pooling) computes per mel band over each window
            (`mater_tf.layers.frontends.BAND_STATISTICS`).
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
            clip as one vector: the functionals over its present windows' frames of the
            log-mel and of the voice descriptors (`audio_voice_descriptors` [batch, T,
            log_mel_frames, 18]; `UtteranceFunctionals`), standardised with the training
            split's statistics (`utterance_normalization`, set by the task), through dropout
            and a linear layer with an L2 penalty (`utterance_l2`, what a linear SVM on the
            field's standard functionals is), whose logits are added to the windows' audio
            logits. Every ensemble member has its own linear layer.
        utterance_l2: the L2 penalty of that linear layer's weights.
        log_mel_augment: with a front end, the arguments of a `LogMelAugment`
            (random gain per clip, SpecAugment masks per window; training only),
            or None for no augmentation.
        embedding_scale: "sqrt_d_model" multiplies the projected embeddings by
            sqrt(d_model), as the Transformer does before adding the PE
            (Vaswani et al. 3.4); "none" adds the PE to the bare projection.
            The embedding inputs are l2-normalised, so at initialisation their
            projection has RMS about sqrt(2 / (D + d_model)) per component
            (0.044 at D = d_model = 512), 16 times below the PE's 0.71: the PE
            swamped the windows' content, and at the paper's learning rate of
            1e-6 the projection never caught up. Scaled, the two are of the same
            order (RMS ratio about 1.4). The scale is applied whether or not the
            PE is on, so the PE ablation changes the PE alone. It is not applied
            to the output of a learned audio front end: the small front end's
            batch-normalised output already projects to about the PE's size
            (ratio 1.4 at d_model 64, 0.6 at 512, in training mode), and scaling
            it would put it 8-14 times above the PE; the VGGish front end's
            output is left unscaled alike. Models saved before this option
            existed load with "none", as they were trained.
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
        learns_audio = audio_frontend != "none" and "audio" in modalities
        if utterance_functionals and not learns_audio:
            raise ValueError("utterance_functionals needs the audio branch with a learned front end")
        dims = {"audio": audio_dim, "face": face_dim}

        # === Layers ===
        # One set of branches per ensemble member (layer names end in _member{k}; a single model's
        # have no suffix, and an ensemble's averaged outputs take the output names).
        members = []
        for member in range(ensemble):
            suffix = f"_member{member}" if ensemble > 1 else ""
            branches = {}
            for modality in modalities:
                branch = {
                    "projection": keras.layers.Dense(d_model, name=f"{modality}_projection{suffix}"),
                    "input_dropout": keras.layers.Dropout(dropout, name=f"{modality}_input_dropout{suffix}"),
                    "pooling": WINDOW_POOLINGS[window_pooling](name=f"{modality}_pooling{suffix}"),
                    "fc1": keras.layers.Dense(
                        head_hidden_dim, activation="relu", name=f"{modality}_fc1{suffix}"
                    ),
                    "head_dropout": keras.layers.Dropout(dropout, name=f"{modality}_head_dropout{suffix}"),
                    "fc2": keras.layers.Dense(num_classes, name=f"{modality}_logits{suffix}"),
                }
                if modality == "audio" and utterance_functionals:
                    branch["utterance_dropout"] = keras.layers.Dropout(
                        dropout, name=f"utterance_dropout{suffix}"
                    )
                    branch["utterance_logits"] = keras.layers.Dense(
                        num_classes,
                        kernel_regularizer=keras.regularizers.L2(utterance_l2),
                        name=f"utterance_logits{suffix}",
                    )
                if positional_encoding:
                    branch["positional_encoding"] = PositionalEncoding(
                        name=f"{modality}_positional_encoding{suffix}"
                    )
                if encoder == "transformer":
                    branch["encoders"] = [
                        EncoderBlock(
                            d_model,
                            num_heads,
                            ff_dim,
                            dropout=dropout,
                            use_attention=attention,
                            name=f"{modality}_encoder_{layer}{suffix}",
                        )
                        for layer in range(num_layers)
                    ]
                elif encoder == "lstm":
                    branch["encoders"] = [
                        keras.layers.LSTM(
                            d_model, return_sequences=True, name=f"{modality}_lstm_{layer}{suffix}"
                        )
                        for layer in range(num_layers)
                    ]
                else:
                    raise ValueError(f"encoder must be 'transformer' or 'lstm', got {encoder!r}")
                branches[modality] = branch
            fusion = LateFusion(name=f"logits{suffix}")
            members.append((branches, fusion))
        if learns_audio:
            if not log_mel_frames:
                raise ValueError("an audio front end needs log_mel_frames (frames per window)")
            frontend = WindowFrontend(
                audio_frontend,
                log_mel_frames,
                normalization=log_mel_normalization,
                filters=audio_frontend_filters,
                pooling=audio_frontend_pooling,
                statistics=band_statistics,
                name="audio_frontend",
            )
            augment = LogMelAugment(**log_mel_augment, name="log_mel_augment") if log_mel_augment else None
        if utterance_functionals:
            functionals = UtteranceFunctionals(name="utterance_functionals")
            # Set from the training split by the task (`adapt`), as the band normalisation is.
            utterance_normalization = keras.layers.Normalization(axis=-1, name="utterance_normalization")

        # === Functional model ===
        inputs, embeddings, valids, attention_scores = {}, {}, {}, {}
        utterance = None
        for modality in modalities:
            valids[modality] = keras.Input((num_windows,), name=f"{modality}_valid")
            if modality == "audio" and learns_audio:
                log_mel = keras.Input((num_windows, log_mel_frames, 64), name="audio_log_mel")
                inputs["audio_log_mel"] = log_mel
                embeddings[modality] = frontend(augment(log_mel) if augment else log_mel, valids[modality])
                if utterance_functionals:
                    descriptors = keras.Input(
                        (num_windows, log_mel_frames, VOICE_DESCRIPTORS), name="audio_voice_descriptors"
                    )
                    inputs["audio_voice_descriptors"] = descriptors
                    # The functionals read the clip as recorded: no augmentation.
                    utterance = utterance_normalization(functionals(log_mel, descriptors, valids[modality]))
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
        member_outputs = []  # per member: {"logits": fused, "{m}_logits": ...}
        for member, (branches, fusion) in enumerate(members):
            outputs = {}
            for modality in modalities:
                branch, valid = branches[modality], valids[modality]
                x = branch["projection"](embeddings[modality])
                if embedding_scale == "sqrt_d_model" and not (modality == "audio" and learns_audio):
                    x = x * math.sqrt(d_model)
                if positional_encoding:
                    x = branch["positional_encoding"](x)
                x = branch["input_dropout"](x)
                for layer, block in enumerate(branch["encoders"]):
                    if encoder == "lstm":
                        x = block(x, mask=ops.cast(valid, "bool"))
                    elif attention and member == 0:  # the attention views show member 0
                        x, scores = block(x, valid, return_attention_scores=True)
                        attention_scores[f"{modality}_attention_{layer}"] = scores
                    else:
                        x = block(x, valid)
                pooled = branch["pooling"](x, valid)
                logits = branch["fc2"](branch["head_dropout"](branch["fc1"](pooled)))
                if "utterance_logits" in branch:
                    logits = logits + branch["utterance_logits"](branch["utterance_dropout"](utterance))
                outputs[f"{modality}_logits"] = logits
            outputs = {
                "logits": fusion(
                    [outputs[f"{m}_logits"] for m in modalities], [valids[m] for m in modalities]
                ),
                **outputs,
            }
            member_outputs.append(outputs)
        if ensemble == 1:
            outputs = member_outputs[0]
        else:
            # The ensemble's outputs average the members' probabilities; the members' own logits,
            # side by side, are what training reads (each member on its own loss).
            outputs = {}
            for key in member_outputs[0]:
                per_member = [member[key] for member in member_outputs]
                outputs[key] = EnsembleAverage(name=key)(per_member)
                outputs[member_key(key)] = StackMembers(name=member_key(key))(per_member)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

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
