"""Decoding real files of both corpora, and media that cannot be used."""

import wave

import numpy as np
import pytest
import tensorflow as tf

from mater_tf.features import log_mel
from mater_tf.media import MediaError, decode_audio, decode_audio_track, decode_video, is_video, probe
from mater_tf.media.audio_graph import decode_audio_tensor


def test_stereo_ravdess_wav_is_averaged_and_resampled(shared_dir, ravdess_speech):
    golden = np.load(shared_dir / "golden" / "vggish_reference.npz")
    assert int(golden["frontend1/source_channels"]) == 2
    path = ravdess_speech(str(golden["frontend_files"][1]))
    ours = decode_audio(path)
    reference = golden["frontend1/waveform_16k"]  # channel mean, then resampy
    assert abs(len(ours) - len(reference)) <= 2
    n = min(len(ours), len(reference))
    assert np.abs(ours[:n] - reference[:n]).max() < 0.05
    difference = np.abs(log_mel(ours[:n]).numpy() - golden["frontend1/log_mel"])
    assert difference.mean() < 0.1  # tests/test_audio_decoding.py holds the exact figures (float32 round-off)
    mapped = next(iter(tf.data.Dataset.from_tensors(str(path)).map(decode_audio_tensor))).numpy()
    np.testing.assert_allclose(mapped, ours)


def test_cremad_flv_frames_and_audio_track(shared_dir):
    path = shared_dir / "data" / "CREMA-D" / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    video = decode_video(path)
    assert video.frames.dtype == np.uint8 and video.frames.shape[1:] == (360, 480, 3)
    assert (video.width, video.height) == (480, 360)
    assert np.allclose(np.diff(video.times), 1 / 29.97, atol=0.002)
    # The video stream starts 27 ms after the audio stream: both are timed from the earlier start.
    assert video.times[0] == pytest.approx(0.027)
    small = decode_video(path, max_side=240, until_seconds=1.0)
    assert small.frames.shape[1:] == (180, 240, 3) and small.times.max() < 1.0
    audio = decode_audio_track(path)
    assert abs(len(audio) / 16000 - video.times[-1]) < 0.2
    assert 0.05 < np.abs(audio).max() <= 1.0


@pytest.mark.parametrize("until_seconds", [None, 1.0])
def test_one_pass_over_a_video_gives_what_the_two_decoders_give(shared_dir, until_seconds):
    from mater_tf.media import MediaFile

    path = shared_dir / "data" / "CREMA-D" / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    waveform, video = MediaFile.probe(path).decode_clip(320, until_seconds)
    np.testing.assert_array_equal(waveform, decode_audio(path))
    separately = decode_video(path, 320, until_seconds)
    np.testing.assert_array_equal(video.frames, separately.frames)
    np.testing.assert_array_equal(video.times, separately.times)
    assert (video.width, video.height) == (480, 360) and len(video.frames) == (30 if until_seconds else 67)


def test_cremad_mp3_through_tensorflow_io(shared_dir):
    path = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3"
    audio = decode_audio(path)
    assert audio.dtype == np.float32 and 1.5 < len(audio) / 16000 < 4.0
    assert 0.05 < np.abs(audio).max() <= 1.0


def test_unusable_media_is_named(tmp_path):
    with pytest.raises(MediaError, match="missing.wav: file not found"):
        decode_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty.mp4: empty file"):
        decode_video(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(MediaError, match="junk.mp4"):
        decode_audio(tmp_path / "junk.mp4")
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + np.random.default_rng(1).bytes(300))
    with pytest.raises(MediaError, match="junk.wav: audio cannot be decoded"):
        decode_audio(tmp_path / "junk.wav")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MediaError, match=r"notes.txt: not readable media \(Invalid data found"):
        decode_audio(tmp_path / "notes.txt")


@pytest.mark.slow
def test_media_is_judged_by_what_ffmpeg_finds_in_it(phone_recording, shared_dir, tmp_path):
    import shutil

    m4a, seconds = phone_recording()  # AAC in MP4, what phones record
    assert probe(m4a).audio and not is_video(m4a)
    # An AAC frame is 1024 samples (23 ms at 44.1 kHz): the length is the source's within one frame.
    assert len(decode_audio(m4a)) / 16000 == pytest.approx(seconds, abs=0.025)
    # An mp3 under another name reads as tensorflow-io reads the .mp3 (another decoder: a few ms apart).
    mp3 = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3"
    reference = decode_audio(mp3)
    for name in ("really an mp3.wav", "clip.dat", "no suffix"):
        shutil.copyfile(mp3, tmp_path / name)
        waveform = decode_audio(tmp_path / name)
        assert abs(len(waveform) - len(reference)) < 0.06 * 16000, name
        middle = reference[len(reference) // 2 : len(reference) // 2 + 8000]  # speech, not silence
        lag = int(np.argmax(np.correlate(waveform, middle))) - len(reference) // 2  # decoder delays differ
        assert abs(lag) < 0.06 * 16000, name
        start = len(reference) // 2 + lag
        assert np.corrcoef(waveform[start : start + 8000], middle)[0, 1] > 0.99, name
        assert not is_video(tmp_path / name)
    # Judged by content both ways: a video under an audio name has moving pictures.
    flv = shared_dir / "data" / "CREMA-D" / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    shutil.copyfile(flv, tmp_path / "video.dat")
    assert is_video(tmp_path / "video.dat") and not is_video(mp3)


def test_audio_tensorflow_cannot_read_gets_one_line_without_tensorflow_internals(tmp_path):
    """A broken mp3 and a WAV whose header says 1 Hz: the reason, not TensorFlow's wrapping (predict's
    line, and prepare's failure reason, which is the same text)."""
    from pipelines.prepare import decode_clip

    (tmp_path / "broken.mp3").write_bytes(b"ID3\x03" + bytes(range(96)))
    with wave.open(str(tmp_path / "one_hz.wav"), "wb") as header_says_1_hz:
        header_says_1_hz.setnchannels(1)
        header_says_1_hz.setsampwidth(2)
        header_says_1_hz.setframerate(1)
        header_says_1_hz.writeframes(np.zeros(5, np.int16).tobytes())
    expected = {
        "broken.mp3": f"{tmp_path / 'broken.mp3'}: audio cannot be decoded (unknown file type); the file may be corrupt",
        "one_hz.wav": f"{tmp_path / 'one_hz.wav'}: audio cannot be decoded (sample rate 1 Hz: too far from 16000 Hz "
        "to resample (a filter bank too large: over 2000 phases)); the file may be corrupt",
    }
    for name, line in expected.items():
        with pytest.raises(MediaError) as caught:
            decode_audio(tmp_path / name)
        assert str(caught.value) == line
        assert decode_clip(str(tmp_path / name))[1] == line


def write_silent_video(path, seconds=1.0):
    """An mp4 with frames and no audio track."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(int(25 * seconds)):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), index * 5 % 255, np.uint8), format="rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_video_without_audio_track(tmp_path):
    path = tmp_path / "mute.mp4"
    write_silent_video(path)
    assert len(decode_video(path).frames) == 25
    with pytest.raises(MediaError, match="mute.mp4: has no audio track"):
        decode_audio(path)


def test_truncated_video_keeps_what_decodes(shared_dir, tmp_path):
    source = (shared_dir / "data" / "CREMA-D" / "VideoFlash" / "1001_DFA_ANG_XX.flv").read_bytes()
    (tmp_path / "cut.flv").write_bytes(source[: len(source) // 2])
    video = decode_video(tmp_path / "cut.flv")
    assert 5 < len(video.frames) < 67


def test_parallel_decoding_gives_the_same_audio(shared_dir):
    """tensorflow-io's mp3 decoder corrupts concurrent decodes unless serialised."""
    from concurrent.futures import ThreadPoolExecutor

    files = sorted((shared_dir / "data" / "CREMA-D" / "AudioMP3").glob("*.mp3"))
    sequential = [decode_audio(f) for f in files]
    for _ in range(2):
        with ThreadPoolExecutor(4) as pool:
            parallel = list(pool.map(decode_audio, files))
        assert all(np.array_equal(a, b) for a, b in zip(sequential, parallel))


def test_wav_that_tensorflow_alone_rejects_is_read(ravdess_speech):
    # Ends in an odd-sized _PMX chunk: tf.audio.decode_wav alone says "Data too short" (see
    # tests/test_audio_decoding.py: read by TensorFlow up to its data chunk's end).
    path = ravdess_speech("03-01-01-01-01-01-01.wav")
    audio = decode_audio(path)
    assert 3.0 < len(audio) / 16000 < 4.5 and np.abs(audio).max() > 0.01


def write_tone(path, container_codecs, rate, layout, seconds=1.5, video=True, amplitude=0.3):
    """A container with a 440 Hz tone of `amplitude` in every channel (and grey frames)."""
    from fractions import Fraction

    import av

    video_codec, audio_codec, sample_format = container_codecs
    with av.open(str(path), "w") as container:  # every stream is added before the first packet
        audio = container.add_stream(audio_codec, rate=rate)
        audio.layout = layout
        if video:
            stream = container.add_stream(video_codec, rate=25)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for index in range(int(25 * seconds)):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, 25)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        channels = len(av.AudioLayout(layout).channels)
        tone = amplitude * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)
        size = audio.codec_context.frame_size or 1024
        for start in range(0, len(tone), size):
            piece = tone[start : start + size]
            if sample_format.endswith("p"):
                block = np.tile(piece, (channels, 1)).astype(np.float32)
            else:
                block = (np.repeat(piece, channels)[None] * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block), format=sample_format, layout=layout
            )
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))


@pytest.mark.parametrize(
    ("name", "codecs", "rate", "layout", "video"),
    [
        ("clip.mkv", ("mpeg4", "flac", "s16"), 16000, "mono", True),
        ("clip.webm", ("libvpx", "libopus", "fltp"), 48000, "stereo", True),
        ("clip.avi", ("mpeg4", "pcm_s16le", "s16"), 8000, "mono", True),
        ("voice only.mp4", (None, "aac", "fltp"), 44100, "5.1", False),
        ("hi-res 96k.wav", (None, "pcm_s16le", "s16"), 96000, "mono", False),
        ("six channels ü.wav", (None, "pcm_s16le", "s16"), 48000, "5.1", False),
    ],
)
def test_odd_containers_rates_and_channel_counts(tmp_path, name, codecs, rate, layout, video):
    path = tmp_path / name
    write_tone(path, codecs, rate, layout, video=video)
    audio = decode_audio(path)
    assert abs(len(audio) / 16000 - 1.5) < 0.03
    # Channels averaged, whatever the decoder (FFmpeg's own downmix made stereo 1.41x louder).
    assert 0.25 < np.abs(audio[2000:-2000]).max() < 0.33
    spectrum = np.abs(np.fft.rfft(audio[2000:18000]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) < 3  # still a 440 Hz tone at 16 kHz
    if video:
        assert len(decode_video(path).frames) == 37


def test_an_audio_only_mp4_keeps_its_voice_with_faces_masked(tmp_path):
    from mater_tf.data.extraction import ClipExtractor, Windowing
    from mater_tf.features.embedders import audio_embedder

    class NeverCalled:
        name, dim = "never", 3

        def track(self, frames):
            raise AssertionError("an audio-only file has no frames to track")

    path = tmp_path / "voice.mp4"
    write_tone(path, (None, "aac", "fltp"), 44100, "stereo", video=False)
    extractor = ClipExtractor(Windowing(4, 0.5), audio_embedder("logmel"), NeverCalled(), NeverCalled())
    extraction = extractor.extract(str(path), "voice")
    assert extraction.record.audio_valid.tolist() == [1, 1, 1, 0]
    assert extraction.record.face_valid.tolist() == [0, 0, 0, 0] and extraction.face_found_rate is None


@pytest.mark.parametrize(("share", "decoded"), [(0.05, r"0.05"), (0.3, r"0.\d\d")])
def test_a_truncated_video_is_called_truncated_not_short(shared_dir, tmp_path, share, decoded):
    """Cut to 5% (less than a window decodes) or to 30% (more than one window decodes)."""
    from mater_tf.data.extraction import ClipExtractor, Windowing
    from mater_tf.features.embedders import audio_embedder

    source = (shared_dir / "data" / "CREMA-D" / "VideoFlash" / "1001_DFA_ANG_XX.flv").read_bytes()
    (tmp_path / "cut.flv").write_bytes(source[: round(len(source) * share)])
    extractor = ClipExtractor(Windowing(6, 0.5), audio_embedder("logmel"))
    with pytest.raises(
        MediaError, match=rf"cut.flv: truncated or corrupt: only {decoded} s of audio decode of the 2.2\d s"
    ):
        extractor.extract(str(tmp_path / "cut.flv"), "cut")
    (tmp_path / "whole.flv").write_bytes(source)  # the whole file, decoded to within 0.04 s of its header
    assert extractor.extract(str(tmp_path / "whole.flv"), "whole").record.duration > 2.2
    short = tmp_path / "short.wav"
    short.write_bytes(tf.audio.encode_wav(np.full((3000, 1), 0.1, np.float32), 16000).numpy())
    with pytest.raises(MediaError, match=r"short.wav: 0.19 s long, shorter than one 0.5 s window"):
        extractor.extract(str(short), "short")
