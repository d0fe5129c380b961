"""``w2v2 serve`` over HTTP, as a client uses it: transcripts equal ``w2v2 transcribe``'s (the tuned
n-gram search by default, greedy and beam overrides on request), bad uploads of every kind get a
4xx naming the problem and the service still answers, a request past the queue bound gets 503 with
Retry-After, and nothing is left in the temporary folder."""

import json
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from decode_testkit import tiny_ctc_model, write_arpa, write_lexicon, write_noise
from serve_testkit import Server, offline, same_transcript
from w2v2.decode.tune import write_decoder_json

WORDS = ["THE", "A", "CAT", "SAT", "ON", "MAT", "DOG", "AT", "TO", "IS", "IT", "IN", "OF", "I", "O", "U", "ME",
         "WE", "HE", "SO", "NO", "GO", "OX", "QUIZ", "FLY", "BY", "KEY", "VEX", "ZIP"]
TUNED = {"lm_weight": 1.3, "word_score": -0.4, "beam_size": 20}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A model whose decoder.json holds a tuned n-gram search, served with small limits."""
    tmp = tmp_path_factory.mktemp("serve_api")
    model = tiny_ctc_model(tmp)
    arpa = write_arpa(tmp / "lm.arpa", {"<s>": -99.0, "</s>": -1.0, "<unk>": -3.0,
                                        **{w: -1.0 - 0.05 * i for i, w in enumerate(WORDS)}}, backoff=-0.5)
    lexicon = write_lexicon(tmp / "lexicon.txt", WORDS)
    write_decoder_json(model, "ngram", {"lm": str(arpa), "lexicon": str(lexicon), **TUNED})
    audio = {"a": write_noise(tmp / "a.wav", 2.5, seed=1), "b": write_noise(tmp / "b.wav", 1.6, seed=2)}
    with Server(model, tmp / "server.log", tmp / "tmpdir", "--max-mb", "1", "--max-seconds", "10",
                "--max-pending", "1") as server:
        yield server, model, audio, tmp


def post(server, path, data=None, params=None, name=None):
    with open(path, "rb") as f:
        return httpx.post(f"{server.url}/transcribe", files={"file": (name or path.name, f)}, data=data,
                          params=params, timeout=120)


def test_health_and_info(served):
    server, _, _, _ = served
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok", "pending": 0, "max_pending": 1}
    info = httpx.get(f"{server.url}/info").json()
    assert info["model"]["vocab"][:5] == ["<pad>", "<s>", "</s>", "<unk>", "|"] and info["model"]["units"] == "char"
    assert info["model"]["parameters"] > 0 and info["model"]["layout"]["feature_norm"] == "layer"
    assert info["decoder"]["default"] == "ngram" and info["decoder"]["available"] == ["greedy", "ngram"]
    assert info["decoder"]["settings"]["lm_weight"] == TUNED["lm_weight"]
    assert info["decoder"]["settings"]["unk_score"] == "-inf"  # JSON has no infinity
    assert info["limits"]["max_mb"] == 1 and info["limits"]["max_seconds"] == 10


def test_default_is_the_tuned_ngram_search_as_transcribe(served):
    server, model, audio, _ = served
    r = post(server, audio["a"])
    assert r.status_code == 200, r.text
    body = r.json()
    reference = offline(model, [audio["a"]], "--decoder", "ngram")[str(audio["a"])]
    assert same_transcript(body, reference) and body["words"], (body, reference)
    assert set(body["text"].split()) <= set(WORDS)  # the lexicon constrained it
    assert body["decoder"]["decoder"] == "ngram" and body["decoder"]["lm_weight"] == TUNED["lm_weight"]
    assert body["duration"] == pytest.approx(2.5)
    timing = body["timing"]
    assert 0 <= timing["queue"] <= timing["total"] and 0 < timing["decode"] <= timing["total"]
    assert timing["rtf"] == pytest.approx(timing["decode"] / 2.5) and timing["batch"] == 1


def test_decoder_overrides_as_transcribe(served):
    server, model, audio, _ = served
    greedy = post(server, audio["b"], data={"decoder": "greedy"})
    assert greedy.status_code == 200 and greedy.json()["decoder"] == {"decoder": "greedy"}
    assert same_transcript(greedy.json(), offline(model, [audio["b"]])[str(audio["b"])])
    beam = post(server, audio["b"], params={"beam_size": "2", "lm_weight": "0.5", "word_score": "1"})
    assert beam.status_code == 200 and beam.json()["decoder"]["beam_size"] == 2
    reference = offline(model, [audio["b"]], "--decoder", "ngram", "--beam-size", "2", "--lm-weight", "0.5",
                        "--word-score", "1")[str(audio["b"])]
    assert same_transcript(beam.json(), reference)


@pytest.mark.parametrize("fields, status, message", [
    ({"beam_size": "100000"}, 422, "beam_size must be between 1 and 500, got 100000"),
    ({"beam_size": "2.5"}, 422, "beam_size must be an integer, got '2.5'"),
    ({"lm_weight": "7"}, 422, "lm_weight must be between 0 and 5, got 7"),
    ({"word_score": "nan"}, 422, "word_score must be between -5 and 5, got nan"),
    ({"word_score": "loud"}, 422, "word_score must be a number, got 'loud'"),
    ({"decoder": "transformer"}, 422, "decoder 'transformer' is not available"),
    ({"decoder": "greedy", "beam_size": "5"}, 422, "beam_size applies to decoder=ngram only"),
    ({"lm": "/etc/passwd"}, 400, "unknown field(s) lm"),
])
def test_out_of_bounds_decoder_fields(served, fields, status, message):
    server, _, audio, _ = served
    r = post(server, audio["b"], data=fields)
    assert r.status_code == status and message in r.json()["detail"], r.text
    assert server.alive()


def bad_uploads(tmp):
    """(name, request kwargs, status, message) of every kind of bad upload."""
    tmp.mkdir()
    text = tmp / "notes.txt"
    text.write_text("these are not the samples you are looking for\n" * 20)
    good = tmp / "good.flac"
    rng = np.random.default_rng(0)
    sf.write(good, (0.1 * rng.standard_normal(32000)).astype(np.float32), 16000, subtype="PCM_16")
    truncated = tmp / "truncated.flac"
    truncated.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    long = tmp / "long.flac"
    sf.write(long, (0.1 * rng.standard_normal(12 * 16000)).astype(np.float32), 16000, subtype="PCM_16")
    short = tmp / "short.wav"
    sf.write(short, np.zeros(100, dtype=np.float32), 16000)
    big = tmp / "big.wav"
    big.write_bytes(b"\0" * (1024 * 1024 + 10))
    return [
        ("empty", {"files": {"file": ("empty.flac", b"")}}, 400, "empty.flac: empty upload (0 bytes)"),
        ("not audio", {"files": {"file": ("notes.txt", text.read_bytes())}}, 422,
         "notes.txt: not an audio file soundfile can read"),
        ("corrupt", {"files": {"file": ("truncated.flac", truncated.read_bytes())}}, 422,
         "truncated.flac: corrupt or truncated audio"),
        ("too short", {"files": {"file": ("short.wav", short.read_bytes())}}, 422,
         "short.wav: only 100 samples at 16000 Hz"),
        ("over the duration limit", {"files": {"file": ("long.flac", long.read_bytes())}}, 413,
         "long.flac: the audio is 12.0 s long; this service accepts at most 10 s (--max-seconds)"),
        ("over the size limit", {"files": {"file": ("big.wav", big.read_bytes())}}, 413,
         "the upload is 1.0 MB; this service accepts at most 1 MB (--max-mb)"),
        ("over the size limit, no Content-Length", {"content": iter(multipart(big, "b")),  # chunked
                                                    "headers": {"content-type": "multipart/form-data; boundary=b"}},
         413, "the upload is larger than 1 MB; this service accepts at most 1 MB"),
        ("missing file field", {"files": {"audio": ("good.flac", good.read_bytes())}}, 400,
         "missing form field 'file'"),
        ("file field is not a file", {"data": {"file": "good.flac"}, "files": {"other": ("x", b"x")}}, 400, "form field 'file' must be one file upload"),
        ("two files", {"files": [("file", ("a.flac", good.read_bytes())), ("file", ("b.flac", good.read_bytes()))]},
         400, "Too many files"),
        ("not multipart", {"content": good.read_bytes(), "headers": {"content-type": "audio/flac"}}, 415,
         "expected a multipart/form-data upload"),
    ]


def test_bad_uploads_are_refused_with_their_problem_and_nothing_is_left(served):
    server, _, audio, tmp = served
    for name, kwargs, status, message in bad_uploads(tmp / "bad"):
        r = httpx.post(f"{server.url}/transcribe", timeout=60, **kwargs)
        assert r.status_code == status, (name, r.status_code, r.text)
        assert message in r.json()["detail"], (name, r.json())
        assert server.alive(), name
    assert post(server, audio["b"]).status_code == 200  # still serving
    assert httpx.get(f"{server.url}/health").json()["pending"] == 0  # every place was given back
    assert list((tmp / "tmpdir").iterdir()) == []  # uploads went to a temporary folder, removed


def multipart(path, boundary: str) -> tuple[bytes, bytes]:
    """A one-file multipart body, split before the file's bytes."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head, path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()


def test_past_the_queue_bound_503_with_retry_after(served):
    server, model, audio, _ = served
    head, rest = multipart(audio["a"], "slowboundary")
    go, answer = threading.Event(), {}

    def slow_body():  # a client that takes its time uploading: it holds the only place
        yield head
        go.wait(60)
        yield rest

    def slow_request():
        answer["r"] = httpx.post(f"{server.url}/transcribe", content=slow_body(), timeout=120,
                                 headers={"content-type": "multipart/form-data; boundary=slowboundary"})

    thread = threading.Thread(target=slow_request)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/health").json()["pending"] < 1:
            assert time.monotonic() < deadline, "the slow request was never admitted"
            time.sleep(0.05)
        busy = post(server, audio["b"])
        assert busy.status_code == 503 and "busy: 1 requests are being served (at most 1" in busy.json()["detail"]
        assert int(busy.headers["retry-after"]) >= 1
    finally:
        go.set()
        thread.join(120)
    assert answer["r"].status_code == 200, answer["r"].text
    reference = offline(model, [audio["a"]], "--decoder", "ngram")[str(audio["a"])]
    assert same_transcript(answer["r"].json(), reference)
    assert post(server, audio["b"]).status_code == 200  # the place was given back


def test_json_shape(served):
    server, _, audio, _ = served
    body = post(server, audio["b"]).json()
    assert set(body) == {"text", "words", "duration", "decoder", "timing"}
    assert set(body["timing"]) == {"queue", "decode", "total", "rtf", "batch"}
    assert all(set(w) == {"word", "start", "end", "confidence"} for w in body["words"])
    json.dumps(body, allow_nan=False)


def test_serve_command_refuses_what_it_cannot_serve(served, tmp_path, capsys):
    from w2v2.cli import main

    _, model, _, _ = served
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "w2v2 serve: error:" in capsys.readouterr().err
    greedy_only = tmp_path / "greedy_only"
    greedy_only.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.json"):
        (greedy_only / name).write_bytes((model / name).read_bytes())
    assert main(["serve", str(greedy_only), "--decoder", "ngram"]) == 2
    assert "no tuned n-gram decoder in decoder.json" in capsys.readouterr().err
    assert main(["serve", str(model), "--max-pending", "0"]) == 2
    assert "serve limit max_pending must be positive, got 0" in capsys.readouterr().err
