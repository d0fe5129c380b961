"""The embedded demo corpus: multi-speaker speech synthesized with espeak-ng from the domain
grammar of :mod:`w2v2.data.grammar`, laid out like the paper's low-resource setup (section 4.1).

A *speaker* is an espeak-ng English accent, a voice variant (timbre and gender), a base pitch, a
base speed, a word gap, a loudness and a background-noise level. Voice variants are partitioned
between train, dev and test, so test and dev speakers have timbres never heard in training (and
dev is disjoint from test too, so model selection never sees the test voices).

Like Libri-light's limited-resource sets, which are drawn from LibriSpeech training data that is
also part of the unlabeled pre-training pool, the labeled sets here are nested prefixes of the
unlabeled pool (``labeled_5min`` is inside ``labeled_15min`` is inside ``unlabeled``). Dev and test
sentences never occur in the pool or in the language-model text.

Every audio file is named by a hash of what it contains (text and all synthesis settings), so a
rerun, or a run with larger sizes, only synthesizes what is missing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .audio import SAMPLE_RATE, AudioError, audio_info, resample
from .grammar import DEFAULT_GRAMMAR, Grammar
from .manifest import Entry, write_manifest

ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty", "belinda",
                   "grandma", "linda", "steph", "steph2", "steph3")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy", "Denis", "Diogo", "Henrique", "Hugo",
                 "Lee", "Marco", "antonio", "michel", "miguel", "sandro", "travis", "victor")
SPLITS = ("train", "dev", "test")
ESPEAK_INSTALL_HINT = "install it with `apt-get install espeak-ng` (`make demo` does this when run as root)"


@dataclass(frozen=True)
class Speaker:
    id: str
    split: str
    accent: str
    variant: str
    gender: str
    pitch: int  # espeak-ng -p, 0-99
    speed: int  # espeak-ng -s, words per minute
    word_gap: int  # espeak-ng -g, units of 10 ms
    amplitude: int  # espeak-ng -a, 0-200
    snr_db: float  # white background noise, relative to the utterance's RMS


@dataclass(frozen=True)
class Utterance:
    speaker: Speaker
    text: str
    speed: int

    def espeak_args(self) -> list[str]:
        s = self.speaker
        return ["-v", f"{s.accent}+{s.variant}", "-s", str(self.speed), "-p", str(s.pitch), "-g", str(s.word_gap),
                "-a", str(s.amplitude)]

    @property
    def key(self) -> str:
        """Hash of everything that determines the audio."""
        spec = json.dumps([self.espeak_args(), self.speaker.snr_db, self.text])
        return hashlib.sha1(spec.encode()).hexdigest()[:16]

    @property
    def relpath(self) -> Path:
        return Path("audio") / self.speaker.id / f"{self.key}.flac"


@dataclass
class SynthConfig:
    """Sizes are minutes of audio; each split is filled utterance by utterance until it reaches its size."""

    seed: int = 0
    unlabeled_minutes: float = 30.0
    labeled_minutes: tuple[float, ...] = (5.0, 15.0)
    dev_minutes: float = 5.0
    test_minutes: float = 5.0
    lm_sentences: int = 30000
    speakers: dict[str, int] = field(default_factory=lambda: {"train": 24, "dev": 4, "test": 6})

    def __post_init__(self) -> None:
        self.labeled_minutes = tuple(sorted(self.labeled_minutes))
        if any(m <= 0 for m in (self.unlabeled_minutes, self.dev_minutes, self.test_minutes, *self.labeled_minutes)):
            raise ValueError("all sizes in minutes must be positive")
        if self.labeled_minutes and self.labeled_minutes[-1] > self.unlabeled_minutes:
            raise ValueError(f"labeled set of {self.labeled_minutes[-1]:g} min exceeds the unlabeled pool of "
                             f"{self.unlabeled_minutes:g} min: labeled sets are drawn from the pool")
        if sorted(self.speakers) != sorted(SPLITS) or min(self.speakers.values()) < 1:
            raise ValueError(f"need at least one speaker in each of {', '.join(SPLITS)}, got {self.speakers}")


def espeak_binary() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise FileNotFoundError(f"espeak-ng is not installed (not found on PATH): {ESPEAK_INSTALL_HINT}")
    return path


def espeak_version(binary: str) -> str:
    """The version number, e.g. 1.51."""
    line = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    found = re.search(r"text-to-speech: (\S+)", line)
    return found[1] if found else line


def parse_wav(data: bytes, source: str) -> tuple[np.ndarray, int]:
    """16-bit mono PCM from espeak-ng's ``--stdout`` WAV, whose size fields are placeholders
    (the stream length is unknown when the header is written), so the data chunk runs to the end."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(source, "espeak-ng did not produce a WAV stream")
    pos = 12
    sr = None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"fmt ":
            fmt, channels = np.frombuffer(data[pos + 8:pos + 12], "<u2").tolist()
            sr = int.from_bytes(data[pos + 12:pos + 16], "little")
            bits = int.from_bytes(data[pos + 22:pos + 24], "little")
            if (fmt, channels, bits) != (1, 1, 16):
                raise AudioError(source, f"unexpected espeak-ng format (format {fmt}, {channels} ch, {bits} bit)")
        elif chunk == b"data":
            if sr is None:
                raise AudioError(source, "WAV data before its format chunk")
            pcm = data[pos + 8:]
            return np.frombuffer(pcm[:len(pcm) // 2 * 2], "<i2").astype(np.float32) / 32768.0, sr
        pos += 8 + size
    raise AudioError(source, "no audio data in espeak-ng's output")


def render(utt: Utterance, binary: str) -> np.ndarray:
    """The utterance at 16 kHz: espeak-ng (22.05 kHz), soxr resampling, then seeded white noise."""
    cmd = [binary, *utt.espeak_args(), "--stdout", utt.text.lower()]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}) on {cmd}: {proc.stderr.decode(errors='replace')}")
    wav, sr = parse_wav(proc.stdout, f"espeak-ng {' '.join(cmd[1:-2])}")
    wav = resample(wav, sr, SAMPLE_RATE)
    if len(wav) == 0:
        raise AudioError(f"espeak-ng {' '.join(cmd[1:-2])}", f"no samples for {utt.text!r}")
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
    noise = np.random.default_rng(int(utt.key, 16)).standard_normal(len(wav))
    wav = wav + (rms * 10 ** (-utt.speaker.snr_db / 20) * noise).astype(np.float32)
    return np.clip(wav, -1.0, 32767 / 32768)


def synthesize(utt: Utterance, root: Path, binary: str) -> int:
    """Write ``root / utt.relpath`` unless it is already there; returns its length in samples."""
    from ..interop.model_dir import atomic_write

    path = root / utt.relpath
    if path.exists():
        info = audio_info(path)
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            raise AudioError(path, f"expected 16 kHz mono, found {info.samplerate} Hz x {info.channels} "
                                   "(delete it to have it synthesized again)")
        return info.frames
    wav = render(utt, binary)
    atomic_write(path, lambda tmp: sf.write(tmp, wav, SAMPLE_RATE, format="FLAC", subtype="PCM_16"))
    return len(wav)


def make_speakers(counts: dict[str, int], rng: random.Random) -> list[Speaker]:
    """Speakers of each split, from disjoint sets of voice variants (shared out within each gender
    in proportion to the speaker counts, genders alternating); a variant used twice in a split gets
    another accent."""
    total = sum(counts.values())
    by_gender: dict[str, dict[str, list[tuple[str, str]]]] = {s: {} for s in SPLITS}
    for gender, variants in (("female", FEMALE_VARIANTS), ("male", MALE_VARIANTS)):
        shuffled = [(v, gender) for v in rng.sample(variants, len(variants))]
        for split in ("test", "dev"):
            k = max(1, round(len(variants) * counts[split] / total))
            by_gender[split][gender], shuffled = shuffled[:k], shuffled[k:]
        by_gender["train"][gender] = shuffled
    speakers = []
    for split in SPLITS:
        female, male = by_gender[split]["female"], by_gender[split]["male"]
        first, second = (female, male) if rng.random() < 0.5 else (male, female)
        pool = [v for pair in itertools.zip_longest(first, second) for v in pair if v is not None]
        if counts[split] > len(pool) * len(ACCENTS):
            raise ValueError(f"{counts[split]} {split} speakers: more than its {len(pool)} voice variants "
                             f"x {len(ACCENTS)} accents")
        accent0 = rng.randrange(len(ACCENTS))
        for i in range(counts[split]):
            j, reuse = i % len(pool), i // len(pool)
            variant, gender = pool[j]
            speakers.append(Speaker(
                id=f"{split}{i:02d}", split=split, accent=ACCENTS[(accent0 + j + reuse) % len(ACCENTS)],
                variant=variant, gender=gender, pitch=rng.randint(25, 75), speed=rng.randint(135, 185),
                word_gap=rng.choice((0, 0, 1, 2)), amplitude=rng.randint(70, 130),
                snr_db=round(rng.uniform(25.0, 45.0), 1)))
    return speakers


def sentence_stream(grammar: Grammar, rng: random.Random, exclude: set[str], unique: bool) -> Iterator[str]:
    """Grammar draws, skipping ``exclude`` (and repeats, if ``unique``)."""
    seen = set(exclude)
    misses = 0
    while True:
        s = grammar.sentence(rng)
        if s in seen:
            misses += 1
            if misses > 10000:
                raise ValueError("the grammar ran out of new sentences; ask for fewer minutes")
            continue
        misses = 0
        if unique:
            seen.add(s)
        yield s


def utterance_stream(speakers: list[Speaker], sentences: Iterator[str], rng: random.Random) -> Iterator[Utterance]:
    """Speakers take turns (in a fresh random order each round); speed varies +-8% per utterance."""
    while True:
        for spk in rng.sample(speakers, len(speakers)):
            yield Utterance(spk, next(sentences), round(spk.speed * rng.uniform(0.92, 1.08)))


def fill(stream: Iterator[Utterance], minutes: float, root: Path, binary: str, executor: Executor,
         bar: tqdm, batch: int = 16) -> list[Entry]:
    """Synthesize utterances from ``stream`` in batches until they add up to ``minutes``. Every
    file of the last batch is written too, so that a rerun finds exactly the files of the first."""
    entries: list[Entry] = []
    done, goal = 0, minutes * 60 * SAMPLE_RATE
    while done < goal:
        utts = list(itertools.islice(stream, batch))
        for utt, n in zip(utts, executor.map(synthesize, utts, itertools.repeat(root), itertools.repeat(binary))):
            entries.append(Entry(root / utt.relpath, n, utt.text))
            bar.update(max(0, min(n, goal - done)) / SAMPLE_RATE)
            done += n
    return prefix(entries, minutes)


def labeled_name(minutes: float) -> str:
    """Libri-light style names: 10 -> labeled_10min, 60 -> labeled_1h."""
    return f"labeled_{minutes / 60:g}h" if minutes % 60 == 0 else f"labeled_{minutes:g}min"


def prefix(entries: list[Entry], minutes: float) -> list[Entry]:
    """The shortest leading run of ``entries`` with at least ``minutes`` of audio (all if shorter)."""
    goal, total, out = minutes * 60 * SAMPLE_RATE, 0, []
    for e in entries:
        if total >= goal:
            break
        out.append(e)
        total += e.samples
    return out


def build_corpus(cfg: SynthConfig, out: Path, executor: Executor, grammar: Grammar = DEFAULT_GRAMMAR) -> dict:
    """Synthesize the corpus into ``out``; returns (and writes as corpus.json) its description."""
    binary = espeak_binary()
    out.mkdir(parents=True, exist_ok=True)
    speakers = make_speakers(cfg.speakers, random.Random(f"{cfg.seed}:speakers"))
    by_split = {s: [spk for spk in speakers if spk.split == s] for s in SPLITS}
    assert not {s.variant for s in by_split["train"]} & {s.variant for s in by_split["dev"] + by_split["test"]}
    splits: dict[str, list[Entry]] = {}
    held_out: set[str] = set()
    sizes = {"test": cfg.test_minutes, "dev": cfg.dev_minutes, "train": cfg.unlabeled_minutes}
    with tqdm(total=sum(sizes.values()) * 60, unit="s", desc="synthesizing speech", unit_scale=True) as bar:
        for split in ("test", "dev", "train"):
            rng = random.Random(f"{cfg.seed}:{split}")
            stream = utterance_stream(by_split[split], sentence_stream(grammar, rng, held_out, unique=True), rng)
            splits[split] = fill(stream, sizes[split], out, binary, executor, bar)
            if split != "train":
                held_out |= {e.text for e in splits[split]}
    lm_rng = random.Random(f"{cfg.seed}:lm")
    lm_text = list(itertools.islice(sentence_stream(grammar, lm_rng, held_out, unique=False), cfg.lm_sentences))
    assert not held_out & ({e.text for e in splits["train"]} | set(lm_text))

    manifests = {"unlabeled": (splits["train"], False), "dev": (splits["dev"], True), "test": (splits["test"], True)}
    for m in cfg.labeled_minutes:
        manifests[labeled_name(m)] = (prefix(splits["train"], m), True)
    for name, (entries, with_text) in manifests.items():
        write_manifest(out / f"{name}.tsv", entries, with_text=with_text)
    (out / "lm_text.txt").write_text("\n".join(lm_text) + "\n", encoding="utf-8")

    samples_of = Counter()
    for e in splits["train"] + splits["dev"] + splits["test"]:
        samples_of[e.path.parent.name] += e.samples
    utts_of = Counter(e.path.parent.name for e in splits["train"] + splits["dev"] + splits["test"])
    summary = {
        "seed": cfg.seed, "config": asdict(cfg), "espeak": espeak_version(binary), "sample_rate": SAMPLE_RATE,
        "manifests": {name: {"file": f"{name}.tsv", "utterances": len(entries),
                             "minutes": round(sum(e.samples for e in entries) / SAMPLE_RATE / 60, 3),
                             "speakers": sorted({e.path.parent.name for e in entries})}
                      for name, (entries, _) in manifests.items()},
        "lm_text": {"file": "lm_text.txt", "sentences": len(lm_text), "unique": len(set(lm_text)),
                    "words": sum(len(s.split()) for s in lm_text)},
        "word_types": {"grammar": len(grammar.vocabulary()),
                       "unlabeled_pool": len({w for e in splits["train"] for w in e.text.split()}),
                       "lm_text": len({w for s in lm_text for w in s.split()})},
        "speakers": [dict(asdict(s), utterances=utts_of[s.id], minutes=round(samples_of[s.id] / SAMPLE_RATE / 60, 3))
                     for s in speakers],
    }
    (out / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def describe(summary: dict) -> str:
    """A plain-text table of the corpus (also written to README.md next to it)."""
    lines = [f"Synthetic multi-speaker corpus (espeak-ng {summary['espeak']}, seed {summary['seed']})", "",
             f"{'manifest':<16} {'utts':>6} {'minutes':>8} {'speakers':>8}"]
    for name, m in summary["manifests"].items():
        lines.append(f"{m['file']:<16} {m['utterances']:>6} {m['minutes']:>8.2f} {len(m['speakers']):>8}")
    lm = summary["lm_text"]
    lines += [f"{lm['file']:<16} {lm['sentences']:>6} sentences ({lm['unique']} distinct, {lm['words']} words)",
              f"word types: grammar {summary['word_types']['grammar']}, unlabeled pool "
              f"{summary['word_types']['unlabeled_pool']}, LM text {summary['word_types']['lm_text']}", "",
              f"{'speaker':<8} {'accent':<15} {'variant':<9} {'gender':<7} {'pitch':>5} {'wpm':>4} {'snr':>5} "
              f"{'utts':>5} {'min':>6}"]
    for s in summary["speakers"]:
        lines.append(f"{s['id']:<8} {s['accent']:<15} {s['variant']:<9} {s['gender']:<7} {s['pitch']:>5} "
                     f"{s['speed']:>4} {s['snr_db']:>5} {s['utterances']:>5} {s['minutes']:>6.2f}")
    return "\n".join(lines)


def plot_corpus(summary: dict, path: Path) -> None:
    """Minutes of audio per speaker, coloured by split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spk = summary["speakers"]
    colours = {"train": "tab:blue", "dev": "tab:orange", "test": "tab:green"}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(spk)), 3.5))
    for split, colour in colours.items():
        idx = [i for i, s in enumerate(spk) if s["split"] == split]
        ax.bar(idx, [spk[i]["minutes"] for i in idx], color=colour, label=split)
    ax.set_xticks(range(len(spk)), [s["id"] for s in spk], rotation=90, fontsize=6)
    ax.set_ylabel("minutes")
    ax.set_title("synthetic corpus: audio per speaker")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(summary: dict, out: Path) -> str:
    text = describe(summary)
    (out / "README.md").write_text("```\n" + text + "\n```\n\n![audio per speaker](corpus.png)\n"
                                   "\nBuilt by `w2v2 data synth`; see corpus.json for every setting.\n",
                                   encoding="utf-8")
    plot_corpus(summary, out / "corpus.png")
    return text

