"""The model's input and output names that records feed: which record keys become which inputs."""

from __future__ import annotations

# Model input names <- record keys.
MODEL_INPUTS = {
    "audio": ("audio_embedding", "audio_valid"),
    "face": ("face_embedding", "face_valid"),
}
LOG_MEL_INPUT = "audio_log_mel"
VOICE_DESCRIPTORS_INPUT = "audio_voice_descriptors"


def member_key(output: str) -> str:
    """The model output holding every ensemble member's version of `output` ("logits" ->
    "member_logits", "audio_logits" -> "audio_member_logits"): [batch, members, classes]."""
    return "member_logits" if output == "logits" else output.replace("_logits", "_member_logits")


def input_names(modalities, audio_log_mel: bool = False, voice_descriptors: bool = False) -> list[str]:
    """The model's input names: embeddings and masks, or log-mel patches for the audio branch
    (and the voice descriptors of its utterance functionals)."""
    names = []
    for modality in modalities:
        embedding, valid = MODEL_INPUTS[modality]
        names += [LOG_MEL_INPUT if modality == "audio" and audio_log_mel else embedding, valid]
        if modality == "audio" and voice_descriptors:
            names.append(VOICE_DESCRIPTORS_INPUT)
    return names
