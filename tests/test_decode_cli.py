"""transcribe / evaluate / tune-decoder end to end on a tiny random CTC model, against
transformers' own model + CTC tokenizer, jiwer, and the decoder.json contract."""

import json
import shutil
import warnings

import jiwer
import pytest
import soundfile as sf
import torch

from decode_testkit import tiny_ctc_model, write_arpa, write_lexicon, write_manifest_tsv, write_noise
from hf_oracle import transformers
from w2v2.analysis.errors import analyze_errors
from w2v2.cli import main
from w2v2.data.audio import normalize

WORDS = ["THE", "A", "AN", "CAT", "SAT", "ON", "MAT", "DOG", "AT", "TO", "IS", "IT", "IN", "OF", "AND", "I", "O",
         "U", "ME", "WE", "HE", "SO", "NO", "GO", "OX", "QUIZ", "JAVA", "FLY", "BY", "KEY", "VEX", "ZIP"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    model = tiny_ctc_model(tmp)
    audio = [write_noise(tmp / f"utt{i}.wav", s, seed=i) for i, s in enumerate([1.5, 0.7, 2.2, 1.1])]
    lexicon = write_lexicon(tmp / "lexicon.txt", WORDS)
    uni = {"<s>": -99.0, "</s>": -1.0, "<unk>": -3.0, **{w: -1.0 - 0.05 * i for i, w in enumerate(WORDS)}}
    bi = {("THE", "CAT"): -0.2, ("CAT", "SAT"): -0.2, ("SAT", "ON"): -0.2, ("ON", "THE"): -0.2, ("THE", "MAT"): -0.3}
    arpa = write_arpa(tmp / "lm.arpa", uni, bi, backoff=-0.5)
    return tmp, model, audio, lexicon, arpa


def test_transcribe_greedy_matches_transformers(setup, capsys):
    tmp, model, audio, _, _ = setup
    assert main(["transcribe", str(model), *map(str, audio), "--batch-seconds", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(a) for a in audio]
    hf = transformers.Wav2Vec2ForCTC.from_pretrained(tmp / "hf").eval()
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(tmp / "hf" / "vocab.json"))
    texts = []
    for path in audio:
        wav = torch.from_numpy(normalize(sf.read(path, dtype="float32")[0]))
        with torch.no_grad():
            ids = hf(wav[None]).logits[0].argmax(-1)
        texts.append(tokenizer.decode(ids.tolist()))
    assert [line.split("\t")[1] for line in lines] == texts
    assert any(len(t.split()) > 1 for t in texts)  # the comparison covers word boundaries


def test_transcribe_json_word_times(setup, capsys):
    _, model, audio, _, _ = setup
    assert main(["transcribe", str(model), str(audio[2]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == str(audio[2]) and out["text"] == " ".join(w["word"] for w in out["words"])
    starts = [w["start"] for w in out["words"]]
    assert starts == sorted(starts) and all(0 <= w["start"] < w["end"] <= 2.2 for w in out["words"])
    assert all(round(w["start"] / 0.02, 6).is_integer() for w in out["words"])  # 20 ms frames
    assert all(0.0 < w["confidence"] <= 1.0 for w in out["words"])


def test_evaluate_matches_jiwer(setup):
    tmp, model, audio, _, _ = setup
    refs = ["THE CAT SAT", "ON THE MAT", "A DOG", "IT IS"]
    manifest = write_manifest_tsv(tmp / "eval.tsv", list(zip(audio, refs)))
    out = tmp / "eval"
    assert main(["evaluate", str(model), str(manifest), "--out", str(out)]) == 0
    rows = (out / "hyps.tsv").read_text().splitlines()
    assert rows[0] == "id\tpath\tref\thyp"
    table = [r.split("\t") for r in rows[1:]]
    assert [r[0] for r in table] == [str(a) for a in audio] and [r[2] for r in table] == refs  # paths as written
    hyps = [r[3] for r in table]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["wer"] == pytest.approx(jiwer.wer(refs, hyps))
    assert metrics["cer"] == pytest.approx(jiwer.cer(refs, hyps))
    assert metrics["n_utts"] == 4 and metrics["n_words"] == 10 and metrics["decoder"] == {"decoder": "greedy"}
    assert metrics["rtf"] > 0 and metrics["audio_seconds"] == pytest.approx(5.5)
    assert (out / "utterance_wer.png").stat().st_size > 0


def test_evaluate_tells_same_named_files_apart(setup, tmp_path):
    """``a/x.wav`` and ``b/x.wav`` are two utterances of hyps.tsv (ids: the paths as written), and
    ``analyze errors`` pairs two systems' hypotheses one to one by those ids."""
    _, model, audio, _, _ = setup
    lines = ["path\tsamples\ttext"]
    for folder, source in (("a", audio[0]), ("b", audio[1])):
        (tmp_path / folder).mkdir()
        shutil.copyfile(source, tmp_path / folder / "x.wav")
        lines.append(f"{folder}/x.wav\t{sf.info(source).frames}\tTHE CAT")
    (tmp_path / "m.tsv").write_text("\n".join(lines) + "\n")
    assert main(["evaluate", str(model), str(tmp_path / "m.tsv"), "--out", str(tmp_path / "eval")]) == 0
    hyps = tmp_path / "eval" / "hyps.tsv"
    assert [r.split("\t")[0] for r in hyps.read_text().splitlines()[1:]] == ["a/x.wav", "b/x.wav"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "hold different utterances": both ids are shared
        summaries = analyze_errors(hyps, tmp_path / "errors", lm_hypotheses=hyps)
    assert summaries["no LM"]["reference words"] == summaries["LM"]["reference words"] == 4


def test_tune_decoder_writes_decoder_json(setup, capsys):
    tmp, model, audio, lexicon, arpa = setup
    # dev transcripts: what the search says at a setting far from the default
    assert main(["transcribe", str(model), *map(str, audio), "--decoder", "ngram", "--lm", str(arpa),
                 "--lexicon", str(lexicon), "--lm-weight", "4", "--word-score", "3"]) == 0
    refs = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
    dev = write_manifest_tsv(tmp / "dev.tsv", list(zip(audio, refs)))
    assert main(["tune-decoder", str(model), "--dev", str(dev), "--lm", str(arpa), "--lexicon", str(lexicon),
                 "--trials", "8", "--seed", "1"]) == 0
    saved = json.loads((model / "decoder.json").read_text())["ngram"]
    assert saved["lm"] == str(arpa.resolve()) and saved["lexicon"] == str(lexicon.resolve())
    assert 0 <= saved["lm_weight"] <= 5 and -5 <= saved["word_score"] <= 5
    trials = (model / "decoder_tuning_ngram.tsv").read_text().splitlines()
    assert len(trials) == 1 + 9 and (model / "decoder_tuning_ngram.png").stat().st_size > 0
    assert saved["tuning"]["dev_wer"] == pytest.approx(min(float(t.split("\t")[2]) for t in trials[1:]), abs=1e-4)
    # evaluate --decoder ngram picks the tuned setting up by itself ...
    assert main(["evaluate", str(model), str(dev), "--decoder", "ngram", "--out", str(tmp / "tuned")]) == 0
    tuned = json.loads((tmp / "tuned" / "metrics.json").read_text())
    assert tuned["decoder"]["lm_weight"] == saved["lm_weight"] and tuned["decoder"]["lm"] == saved["lm"]
    assert tuned["wer"] == pytest.approx(saved["tuning"]["dev_wer"])
    # ... and it is no worse than the default weights
    assert main(["evaluate", str(model), str(dev), "--decoder", "ngram", "--lm-weight", "2", "--word-score", "0",
                 "--out", str(tmp / "default")]) == 0
    default = json.loads((tmp / "default" / "metrics.json").read_text())
    assert tuned["wer"] <= default["wer"]
    assert default["wer"] == pytest.approx(saved["tuning"]["dev_wer_default"])


def test_bad_inputs_name_the_problem(setup, capsys):
    tmp, model, audio, _, _ = setup
    assert main(["transcribe", str(model), str(tmp / "missing.wav")]) == 2
    assert "missing.wav" in capsys.readouterr().err
    no_text = tmp / "no_text.tsv"
    no_text.write_text(f"path\tsamples\n{audio[0]}\t24000\n")
    assert main(["evaluate", str(model), str(no_text), "--out", str(tmp / "x")]) == 2
    assert "no 'text' column" in capsys.readouterr().err
    assert main(["transcribe", str(model), str(audio[0]), "--decoder", "transformer"]) == 2
    assert "--lexicon" in capsys.readouterr().err
