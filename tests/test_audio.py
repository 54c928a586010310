"""MP3 round trip (real LAME + dr_mp3), exact frame bits, alignment, mel spectrograms."""

from __future__ import annotations

import math
import shutil
import subprocess
import wave

import numpy as np
import pytest

pytest.importorskip("lameenc")
pytest.importorskip("miniaudio")
pytest.importorskip("scipy")

from helmholtz import audio as A  # noqa: E402
from helmholtz._audio.mp3 import to_int16  # noqa: E402

PAPER_BITRATES = (8, 16, 32, 64, 96, 128)


def signal(n: int, sr: int, seed: int = 0) -> np.ndarray:
    """Speech-band test signal: two sines + a chirp + noise, int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    x = 5000 * np.sin(2 * np.pi * 310 * t) + 3000 * np.sin(2 * np.pi * 1130 * t + 0.3)
    x += 2000 * np.sin(2 * np.pi * (200 + 800 * t) * t) + rng.normal(0, 800, n)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def lag(x: np.ndarray, y: np.ndarray) -> int:
    from scipy.signal import correlate

    c = correlate(y.astype(np.float64), x.astype(np.float64), mode="full", method="fft")
    return int(np.argmax(c)) - (x.shape[0] - 1)


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.astype(np.float64), y.astype(np.float64)
    return 10 * math.log10(np.sum(x**2) / max(np.sum((x - y) ** 2), 1e-9))


# ------------------------------------------------------------------ sample rates
def test_codec_rates_for_fsdd_and_paper_bitrates():
    assert [A.codec_sample_rate(8000, b) for b in PAPER_BITRATES] == [8000, 8000, 8000, 8000, 16000, 16000]
    assert set(PAPER_BITRATES) <= set(A.supported_bitrates(8000))
    # LAME's own choice (as `lame -b N`) at 44.1 kHz: low bitrates are coded at lower rates
    assert A.codec_sample_rate(44100, 8) == 8000
    assert A.codec_sample_rate(44100, 32) == 22050
    assert A.codec_sample_rate(44100, 128) == 44100
    assert 144 not in A.supported_bitrates(44100)
    for sr in A.MPEG_SAMPLE_RATES:
        for br in A.supported_bitrates(sr):
            assert br in A.LAME_BITRATES[A.codec_sample_rate(sr, br)]


@pytest.mark.parametrize(
    "sr,br,msg",
    [(44100, 144, "144"), (8000, 10, "bitrate"), (8000, 0, "bitrate"), (1000, 32, "sample_rate"), (400000, 32, "sample_rate")],
)
def test_unsupported_rate_or_bitrate(sr, br, msg):
    x = signal(2000, 8000)
    with pytest.raises(ValueError, match=msg):
        A.mp3_roundtrip(x, sr, br)


def test_bad_argument_types():
    x = signal(2000, 8000)
    with pytest.raises(TypeError, match="sample_rate"):
        A.mp3_roundtrip(x, 8000.0, 32)
    with pytest.raises(TypeError, match="bitrate"):
        A.mp3_roundtrip(x, 8000, "32")
    with pytest.raises(TypeError, match="sample_rate"):
        A.mp3_roundtrip(x, True, 32)
    with pytest.raises(ValueError, match="workers"):
        A.mp3_roundtrip(x, 8000, 32, workers=0)
    with pytest.raises(ValueError, match="codec_rate"):
        A.mp3_roundtrip(x, 8000, 128, codec_rate=8000)
    with pytest.raises(ValueError, match="quality"):
        A.mp3_roundtrip(x, 8000, 32, quality=11)


@pytest.mark.parametrize(
    "bad,exc,msg",
    [
        (np.zeros(100, np.int32), TypeError, "int16"),
        (np.zeros(100, np.uint8), TypeError, "int16"),
        (np.zeros(100, bool), TypeError, "int16"),
        (np.zeros((2, 2, 100), np.int16), ValueError, "dimensions"),
        (np.zeros((0,), np.int16), ValueError, "empty"),
        (np.zeros((3, 0), np.int16), ValueError, "empty"),
        (np.full(100, np.nan, np.float32), ValueError, "NaN"),
        ("noise", TypeError, "NumPy"),
        ([], ValueError, "empty"),
        ([np.zeros((2, 10), np.int16)], ValueError, "1-D"),
        ([np.zeros(10, np.int16), np.zeros(10, np.float32)], TypeError, "mixes"),
    ],
)
def test_bad_waveforms(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        A.mp3_roundtrip(bad, 8000, 32)


# ------------------------------------------------------------------ round trip
@pytest.mark.parametrize("br", PAPER_BITRATES)
def test_roundtrip_length_alignment_and_bits_fsdd_rate(br):
    sr, n = 8000, 6000
    x = signal(n, sr, seed=br)
    r = A.mp3_roundtrip(x, sr, br)
    y = r.audio
    assert y.shape == x.shape and y.dtype == np.int16
    assert lag(x, y) == 0
    assert snr_db(x, y) > 3
    # exact bits = 8 * frame bytes; constant bitrate -> bitrate x duration up to whole frames
    rate = r.codec_rate
    spf = 576 if rate < 32000 else 1152
    m = math.ceil(n * rate / sr)
    frames = math.ceil((m + A.CODEC_DELAY) / spf)
    bits_per_frame = br * 1000 * spf / rate
    assert r.bits.shape == (1,) and r.bits.dtype == np.int64
    assert frames * bits_per_frame <= r.bits[0] <= (frames + 1) * bits_per_frame
    assert br * 1000 * n / sr < r.bits[0] <= br * 1000 * (n / sr + (A.CODEC_DELAY + 2 * spf) / rate)
    assert r.bits_per_second == pytest.approx(r.bits[0] / (n / sr))


@pytest.mark.parametrize("sr,br", [(44100, 32), (44100, 128), (22050, 64), (16000, 160), (11025, 16), (12345, 48)])
def test_roundtrip_alignment_other_rates(sr, br):
    n = int(0.7 * sr)
    x = signal(n, sr, seed=3)
    r = A.mp3_roundtrip(x, sr, br)
    assert r.audio.shape == (n,)
    assert lag(x, r.audio) == 0
    assert snr_db(x, r.audio) > 3
    assert r.codec_rate == A.codec_sample_rate(sr, br)


def test_alignment_of_a_click():
    """A single click comes back at the same sample (lag 0 to the sample)."""
    sr = 8000
    x = np.zeros(4000, np.int16)
    x[1500:1504] = [20000, -20000, 20000, -20000]
    for br in (32, 64, 128):
        y = A.mp3_roundtrip(x, sr, br).audio.astype(np.float64)
        assert abs(int(np.argmax(np.abs(y))) - 1501.5) <= 3


def test_quality_rises_with_bitrate():
    x = signal(16000, 8000, seed=7)
    snrs = [snr_db(x, A.mp3_roundtrip(x, 8000, br).audio) for br in (8, 32, 128)]
    assert snrs[0] < snrs[1] < snrs[2]
    assert snrs[2] > 20


def test_batches_lists_floats_and_tensors_agree():
    sr = 8000
    a, b = signal(3000, sr, 1), signal(5000, sr, 2)
    ra = A.mp3_roundtrip(a, sr, 16).audio
    r_list = A.mp3_roundtrip([a, b], sr, 16)
    assert isinstance(r_list.audio, list) and [y.shape for y in r_list.audio] == [(3000,), (5000,)]
    np.testing.assert_array_equal(r_list.audio[0], ra)
    assert r_list.bits.shape == (2,) and r_list.total_bits == int(r_list.bits.sum())
    assert r_list.seconds.tolist() == [3000 / sr, 5000 / sr]
    batch = np.stack([a, a[::-1].copy()])
    r2 = A.mp3_roundtrip(batch, sr, 16, workers=2)
    assert r2.audio.shape == (2, 3000)
    np.testing.assert_array_equal(r2.audio[0], ra)
    r1 = A.mp3_roundtrip(batch, sr, 16, workers=1)
    np.testing.assert_array_equal(r1.audio, r2.audio)
    np.testing.assert_array_equal(r1.bits, r2.bits)
    f = A.mp3_roundtrip(a.astype(np.float32) / 32768, sr, 16).audio
    assert f.dtype == np.float32 and f.shape == a.shape
    np.testing.assert_allclose(f * 32768, ra, atol=0.51)
    torch = pytest.importorskip("torch")
    t = A.mp3_roundtrip(torch.from_numpy(batch), sr, 16).audio
    assert isinstance(t, torch.Tensor) and t.dtype == torch.int16
    with pytest.raises(TypeError, match="int16"):
        A.mp3_roundtrip(torch.zeros(100, dtype=torch.bfloat16), sr, 16)
    np.testing.assert_array_equal(t.numpy(), r1.audio)


def test_frame_parser_counts_every_byte_of_lame_output():
    x = signal(9000, 8000)
    for rate, br in ((8000, 8), (16000, 128), (44100, 128), (32000, 320)):
        data = A.mp3_encode(to_int16(A.resample(x, 8000, rate)), rate, br)
        sizes = A.mp3_frame_sizes(data)
        assert int(sizes.sum()) == len(data)
        assert A.mp3_bits(data) == 8 * len(data)
        spf = 576 if rate < 32000 else 1152
        nominal = (144000 if spf == 1152 else 72000) * br // rate
        assert set(sizes.tolist()) <= {nominal, nominal + 1}
    with pytest.raises(ValueError, match="not a clean MP3"):
        A.mp3_frame_sizes(b"\x00" * 100)
    with pytest.raises(TypeError):
        A.mp3_frame_sizes("abc")
    # a leading ID3v2 tag is skipped
    tagged = b"ID3\x04\x00\x00\x00\x00\x00\x05" + b"12345" + data
    assert A.mp3_bits(tagged) == 8 * len(data)


def test_mp3_encode_arguments():
    x = signal(1000, 8000)
    with pytest.raises(ValueError, match="MPEG rate"):
        A.mp3_encode(x, 10000, 32)
    with pytest.raises(ValueError, match="bitrate at 8000"):
        A.mp3_encode(x, 8000, 128)
    with pytest.raises(TypeError, match="int16"):
        A.mp3_encode(x.astype(np.float32), 8000, 32)


# ------------------------------------------------------------------ LAME's own output as the oracle
def _write_wav(path, x, sr):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(x.tobytes())


@pytest.mark.skipif(shutil.which("lame") is None, reason="the lame command line tool is not installed")
@pytest.mark.parametrize("sr,br", [(8000, 8), (8000, 32), (16000, 128), (44100, 64)])
def test_same_frames_as_the_lame_command_line(tmp_path, sr, br):
    x = signal(5000, sr, seed=br)
    _write_wav(tmp_path / "a.wav", x, sr)
    subprocess.run(["lame", "--quiet", "-b", str(br), "-m", "m", "--resample", str(sr / 1000), str(tmp_path / "a.wav"), str(tmp_path / "a.mp3")], check=True)
    cli = (tmp_path / "a.mp3").read_bytes()
    ours = A.mp3_encode(x, sr, br)
    # the CLI writes a LAME/Info frame first where one fits (not in 72-byte frames):
    # it is skipped by default, counted on request
    cli_sizes = A.mp3_frame_sizes(cli)
    info_frames = len(A.mp3_frame_sizes(cli, include_info_frame=True)) - len(cli_sizes)
    assert info_frames == (0 if (144000 if sr >= 32000 else 72000) * br // sr < 100 else 1)
    assert cli_sizes.tolist() == A.mp3_frame_sizes(ours).tolist()
    assert A.mp3_bits(cli) == A.mp3_bits(ours)
    # same audio: the frames differ only in the version string LAME writes in the padding
    info = int(A.mp3_frame_sizes(cli, include_info_frame=True)[0]) if info_frames else 0
    y_cli, _ = A.mp3_decode(cli[info:])
    y_ours, _ = A.mp3_decode(ours)
    np.testing.assert_array_equal(y_cli, y_ours)


# ------------------------------------------------------------------ mel spectrograms
def test_mel_filterbank_shape_and_peaks():
    fb = A.mel_filterbank(8000, 512, 96)
    assert fb.shape == (96, 257) and (fb >= 0).all()
    assert (fb.sum(axis=1) > 0).all()  # no empty band at this resolution
    peaks = np.fft.rfftfreq(512, 1 / 8000)[fb.argmax(axis=1)]
    assert np.all(np.diff(peaks) >= 0) and peaks[0] < 60 and peaks[-1] > 3800
    with pytest.raises(ValueError, match="fmax"):
        A.mel_filterbank(8000, 512, 96, fmax=5000)


def test_mel_spectrogram_matches_a_numpy_frame_and_librosa_shape():
    torch = pytest.importorskip("torch")
    sr, n, n_fft, hop = 8000, 8000, 512, 64
    x = signal(n, sr)
    s = A.mel_spectrogram(x, sr, n_fft=n_fft, hop_length=hop, top_db=None)
    assert isinstance(s, torch.Tensor) and s.shape == (96, 1 + n // hop) and s.dtype == torch.float32
    # frame j is centred on sample j*hop, zero padded
    j = 40
    padded = np.pad(x.astype(np.float64) / 32768, n_fft // 2)
    frame = padded[j * hop : j * hop + n_fft] * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft))
    ref = 10 * np.log10(np.maximum(A.mel_filterbank(sr, n_fft, 96) @ np.abs(np.fft.rfft(frame)) ** 2, 1e-10))
    np.testing.assert_allclose(s[:, j].numpy(), ref, atol=2e-3)
    # batches, int16 vs float, top_db floor
    b = A.mel_spectrogram(np.stack([x, x]), sr, n_fft=n_fft, hop_length=hop)
    assert b.shape == (2, 96, 126)
    assert float(b.max() - b.min()) <= 80.0 + 1e-4
    fl = A.mel_spectrogram(torch.from_numpy(x.astype(np.float32) / 32768), sr, n_fft=n_fft, hop_length=hop)
    torch.testing.assert_close(fl, b[0], atol=1e-3, rtol=0)
    # the 1130 Hz tone's band is the loudest steady one
    tone = (10000 * np.sin(2 * np.pi * 1130 * np.arange(n) / sr)).astype(np.int16)
    band = int(A.mel_spectrogram(tone, sr, n_fft=n_fft, hop_length=hop)[:, 60].argmax())
    centres = np.fft.rfftfreq(n_fft, 1 / sr)[A.mel_filterbank(sr, n_fft, 96).argmax(axis=1)]
    assert abs(centres[band] - 1130) < 40


def test_mel_spectrogram_against_librosa_if_installed():
    librosa = pytest.importorskip("librosa")
    x = signal(8000, 8000).astype(np.float32) / 32768
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=8000, n_fft=512, hop_length=64, n_mels=96, pad_mode="constant"), top_db=None)
    ours = A.mel_spectrogram(x, 8000, n_fft=512, hop_length=64, top_db=None).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-2)


def test_mel_spectrogram_bad_input():
    with pytest.raises(TypeError, match="int16 or float"):
        A.mel_spectrogram(np.zeros(100, np.int32), 8000)
    with pytest.raises(ValueError, match="shape"):
        A.mel_spectrogram(np.zeros((1, 2, 100), np.float32), 8000)
    with pytest.raises(TypeError, match="NumPy"):
        A.mel_spectrogram([0.0] * 100, 8000)


@pytest.mark.cuda
def test_mel_spectrogram_on_gpu_matches_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    x = torch.from_numpy(np.stack([signal(8000, 8000, s) for s in range(3)]))
    cpu = A.mel_spectrogram(x, 8000, n_fft=512, hop_length=64)
    gpu = A.mel_spectrogram(x.cuda(), 8000, n_fft=512, hop_length=64)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-2, rtol=0)
