"""The embedded demo corpus: grammar, speakers, and a tiny espeak-ng synthesis run."""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from w2v2.cli import main
from w2v2.data.commands import data_commands
from w2v2.data.grammar import DEFAULT_GRAMMAR, digit_string
from w2v2.data.text import year_to_words
from w2v2.data.manifest import read_manifest
from w2v2.data.synth import (SPLITS, Speaker, SynthConfig, Utterance, build_corpus, espeak_binary, labeled_name,
                             make_speakers, parse_wav, sentence_stream)
from w2v2.data.text import normalize_text

TRANSCRIPT = re.compile(r"[A-Z]+('[A-Z]+)?( [A-Z]+('[A-Z]+)?)*")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def draws(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [DEFAULT_GRAMMAR.sentence(rng) for _ in range(n)]


def test_grammar_is_deterministic_given_the_seed():
    assert draws(7, 300) == draws(7, 300)
    assert draws(7, 300) != draws(8, 300)


def test_sentences_follow_the_transcript_convention():
    sentences = draws(0, 3000)
    for s in sentences:
        assert TRANSCRIPT.fullmatch(s), s
        assert normalize_text(s) == s
    words = {w for s in sentences for w in s.split()}
    assert len(words) >= 300  # an n-gram LM has something to learn
    assert len(set(sentences)) > 0.6 * len(sentences)


def test_spoken_number_forms():
    assert year_to_words(1984) == "NINETEEN EIGHTY FOUR"
    assert year_to_words(1905) == "NINETEEN OH FIVE"
    assert year_to_words(1900) == "NINETEEN HUNDRED"
    assert year_to_words(2007) == "TWO THOUSAND SEVEN"
    assert year_to_words(2026) == "TWENTY TWENTY SIX"
    assert digit_string("5550123") == "FIVE FIVE FIVE OH ONE TWO THREE"


def test_sentence_stream_skips_excluded_and_repeated_sentences():
    excluded = set(draws(3, 200))
    got = [s for _, s in zip(range(2000), sentence_stream(DEFAULT_GRAMMAR, random.Random(3), excluded, True))]
    assert len(set(got)) == len(got)
    assert not excluded & set(got)


@pytest.mark.parametrize("seed,counts", [(0, {"train": 24, "dev": 4, "test": 6}),
                                         (1, {"train": 60, "dev": 2, "test": 3}),
                                         (2, {"train": 3, "dev": 1, "test": 1}),
                                         (3, {"train": 70, "dev": 3, "test": 9})])
def test_speakers_of_the_splits_have_disjoint_voices(seed, counts):
    speakers = make_speakers(counts, random.Random(seed))
    by = {s: [spk for spk in speakers if spk.split == s] for s in SPLITS}
    assert {s: len(v) for s, v in by.items()} == counts
    variants = {s: {spk.variant for spk in v} for s, v in by.items()}
    for a in SPLITS:
        for b in SPLITS:
            assert a == b or not variants[a] & variants[b]
        assert len({(spk.accent, spk.variant) for spk in by[a]}) == counts[a]
    assert len({s.id for s in speakers}) == len(speakers)
    assert {spk.gender for spk in by["train"]} == {"female", "male"}


def test_config_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="exceeds the unlabeled pool"):
        SynthConfig(unlabeled_minutes=10, labeled_minutes=(5, 60))
    with pytest.raises(ValueError, match="at least one speaker"):
        SynthConfig(speakers={"train": 5, "dev": 0, "test": 2})


def test_parse_wav_reads_a_stream_header_like_soundfile():
    """espeak-ng --stdout writes placeholder sizes (0x7ffff000); the data runs to the end of the stream."""
    pcm = (np.sin(np.arange(1000) / 7) * 20000).astype("<i2")
    buf = io.BytesIO()
    sf.write(buf, pcm, 22050, format="WAV", subtype="PCM_16")
    data = bytearray(buf.getvalue())
    data[4:8] = data[-len(pcm) * 2 - 4:-len(pcm) * 2] = (0x7FFFF000).to_bytes(4, "little")
    wav, sr = parse_wav(bytes(data), "test")
    assert sr == 22050
    np.testing.assert_array_equal(wav, pcm.astype(np.float32) / 32768)
    with pytest.raises(ValueError, match="did not produce a WAV"):
        parse_wav(b"not audio at all", "test")


def test_missing_espeak_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        espeak_binary()
    assert main(["data", "synth", "--out", str(tmp_path / "corpus")]) == 2
    assert "espeak-ng is not installed" in capsys.readouterr().err


def test_data_group_takes_several_sub_commands():
    sub = argparse.ArgumentParser().add_subparsers(dest="command")
    data_commands(sub).add_parser("one").set_defaults(x=1)
    data_commands(sub).add_parser("two").set_defaults(x=2)
    parser = sub.choices["data"]
    assert parser.parse_args(["two"]).x == 2 and parser.parse_args(["one"]).x == 1


TINY = SynthConfig(seed=5, unlabeled_minutes=0.4, labeled_minutes=(0.1, 0.25), dev_minutes=0.15, test_minutes=0.15,
                   lm_sentences=400, speakers={"train": 4, "dev": 2, "test": 2})


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> tuple[Path, dict]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    out = tmp_path_factory.mktemp("synth")
    with ThreadPoolExecutor(2) as ex:
        summary = build_corpus(TINY, out, ex)
    return out, summary


@needs_espeak
def test_tiny_corpus_files_match_their_manifests(tiny_corpus):
    out, summary = tiny_corpus
    speed = {s["id"]: s["speed"] for s in summary["speakers"]}
    for name in ("unlabeled", "dev", "test"):
        entries = read_manifest(out / f"{name}.tsv")
        minutes = {"unlabeled": TINY.unlabeled_minutes, "dev": TINY.dev_minutes, "test": TINY.test_minutes}[name]
        total = sum(e.samples for e in entries)
        assert minutes * 60 * 16000 <= total < minutes * 60 * 16000 + max(e.samples for e in entries)
        for e in entries:
            info = sf.info(str(e.path))
            assert (info.format, info.samplerate, info.channels) == ("FLAC", 16000, 1)
            assert info.frames == e.samples
            wav, _ = sf.read(str(e.path), dtype="float32")
            assert 0.005 < np.sqrt(np.mean(wav**2)) < 0.5
        for e in entries if name != "unlabeled" else []:
            # espeak-ng's -s is words per minute; allow for pauses, long words and +-8% speed jitter
            nominal = len(e.text.split()) * 60 / speed[e.path.parent.name]
            assert 0.4 * nominal < e.samples / 16000 < 2.0 * nominal + 1.0, e.text
    assert all(e.text is None for e in read_manifest(out / "unlabeled.tsv"))


@needs_espeak
def test_tiny_corpus_splits_are_disjoint_and_nested(tiny_corpus):
    out, summary = tiny_corpus
    m = {name: read_manifest(out / f"{name}.tsv")
         for name in ("unlabeled", "dev", "test", "labeled_0.1min", "labeled_0.25min")}
    spk = {name: {e.path.parent.name for e in es} for name, es in m.items()}
    assert not spk["unlabeled"] & (spk["dev"] | spk["test"]) and not spk["dev"] & spk["test"]
    voice = {s["id"]: s["variant"] for s in summary["speakers"]}
    assert not {voice[s] for s in spk["unlabeled"]} & {voice[s] for s in spk["test"] | spk["dev"]}
    pool = [e.path for e in m["unlabeled"]]
    small, large = [e.path for e in m["labeled_0.1min"]], [e.path for e in m["labeled_0.25min"]]
    assert small == large[:len(small)] and large == pool[:len(large)]
    held_out = {e.text for e in m["dev"] + m["test"]}
    train_text = {e.text for e in m["labeled_0.25min"]} | {s for s in (out / "lm_text.txt").read_text().splitlines()}
    assert len((out / "lm_text.txt").read_text().splitlines()) == TINY.lm_sentences
    assert not held_out & train_text
    assert json.loads((out / "corpus.json").read_text())["seed"] == TINY.seed


@needs_espeak
def test_audio_is_espeak_output_resampled_to_16k_plus_light_noise(tiny_corpus):
    """Re-synthesize one test utterance to a WAV file, read it with soundfile, resample it with soxr
    directly: the corpus file must be the same signal (up to its 25-45 dB background noise)."""
    out, summary = tiny_corpus
    entry = read_manifest(out / "test.tsv")[0]
    fields = next(s for s in summary["speakers"] if s["id"] == entry.path.parent.name)
    spk = Speaker(**{k: v for k, v in fields.items() if k not in ("utterances", "minutes")})
    utt = next(u for u in (Utterance(spk, entry.text, v) for v in range(100, 250)) if u.key == entry.path.stem)
    ref_file = out / "reference.wav"
    subprocess.run(["espeak-ng", *utt.espeak_args(), "-w", str(ref_file), entry.text.lower()], check=True)
    ref, sr = sf.read(str(ref_file), dtype="float32")
    assert sr == 22050
    ref = soxr.resample(ref, 22050, 16000, quality="HQ")
    got, _ = sf.read(str(entry.path), dtype="float32")
    assert len(got) == len(ref)
    snr = 10 * np.log10(np.sum(ref**2) / np.sum((got - ref) ** 2))
    assert spk.snr_db - 1.0 < snr < spk.snr_db + 1.0


@needs_espeak
def test_rerun_reuses_every_file(tiny_corpus):
    out, _ = tiny_corpus
    files = sorted((out / "audio").rglob("*.flac"))
    before = {p: p.stat().st_mtime_ns for p in files}
    manifest = (out / "unlabeled.tsv").read_text()
    with ThreadPoolExecutor(2) as ex:
        build_corpus(TINY, out, ex)
    assert sorted((out / "audio").rglob("*.flac")) == files
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert (out / "unlabeled.tsv").read_text() == manifest


def test_file_names_hash_everything_that_shapes_the_audio():
    spk = make_speakers({"train": 2, "dev": 1, "test": 1}, random.Random(0))[0]
    a = Utterance(spk, "TURN ON THE LIGHTS", 150)
    assert a.key == Utterance(spk, "TURN ON THE LIGHTS", 150).key
    others = Utterance(spk, "TURN OFF THE LIGHTS", 150), Utterance(spk, "TURN ON THE LIGHTS", 151)
    assert len({a.key, *(u.key for u in others)}) == 3


def test_labeled_set_names_follow_libri_light():
    assert [labeled_name(m) for m in (10, 60, 120, 5, 0.5)] == [
        "labeled_10min", "labeled_1h", "labeled_2h", "labeled_5min", "labeled_0.5min"]


@needs_espeak
def test_command_writes_corpus_with_report_and_plot(tmp_path, capsys):
    out = tmp_path / "corpus"
    args = ["data", "synth", "--out", str(out), "--seed", "1", "--unlabeled-minutes", "0.2", "--labeled-minutes",
            "0.1", "--dev-minutes", "0.05", "--test-minutes", "0.05", "--lm-sentences", "50", "--train-speakers", "2",
            "--dev-speakers", "1", "--test-speakers", "1"]
    assert main(args) == 0
    assert "labeled_0.1min.tsv" in capsys.readouterr().out
    summary = json.loads((out / "corpus.json").read_text())
    assert summary["config"]["speakers"] == {"train": 2, "dev": 1, "test": 1}
    assert [s["split"] for s in summary["speakers"]] == ["train", "train", "dev", "test"]
    assert (out / "corpus.png").read_bytes()[:4] == b"\x89PNG"
    assert "test.tsv" in (out / "README.md").read_text()
