"""The page of ``w2v2 serve`` in headless Chromium, as a person uses it: a FLAC chosen in the file
input gives the transcript of ``w2v2 transcribe`` (words, their times and confidences), drawn over
the waveform; a recording from the (fake) microphone is uploaded as a 16-bit WAV and transcribed as
the command line transcribes that WAV; an error of the service is shown on the page."""

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from decode_testkit import tiny_ctc_model
from serve_testkit import Server, offline

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not shutil.which("chromium"),
                                reason="chromium is not installed ('make chromium', or apt-get install chromium)")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve_page")
    model = tiny_ctc_model(tmp)
    with Server(model, tmp / "server.log", tmp / "tmpdir") as server:
        yield server, model, tmp


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
                                    args=["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        yield browser
        browser.close()


def page_words(page) -> list[dict]:
    """The transcript as the page shows it: each word's text, its time label and its data."""
    return page.eval_on_selector_all("#transcript .word", """spans => spans.map(s => ({
        word: s.querySelector('.text').textContent, label: s.querySelector('small').textContent,
        title: s.title, start: +s.dataset.start, end: +s.dataset.end, confidence: +s.dataset.confidence,
        background: getComputedStyle(s).backgroundColor}))""")


def assert_shows(page, reference: dict) -> None:
    words = page_words(page)
    assert " ".join(w["word"] for w in words) == reference["text"]
    assert page.inner_text("#transcript").split() == [t for w in words for t in (w["word"], w["label"])]
    for shown, ref in zip(words, reference["words"], strict=True):
        assert (shown["word"], shown["start"], shown["end"]) == (ref["word"], ref["start"], ref["end"])
        assert shown["label"] == f"{ref['start']:.2f}–{ref['end']:.2f}"
        assert shown["confidence"] == pytest.approx(ref["confidence"], abs=1e-4)
        assert f"confidence {ref['confidence']:.3f}" in shown["title"]
    # coloured by confidence: the page's scale has 121 hues (red 0 to green 120 degrees), so words
    # whose confidences fall on different hues get different colours and the same hue the same one
    hues: dict[int, set[str]] = {}
    for w in words:
        hues.setdefault(math.floor(120 * w["confidence"] + 0.5), set()).add(w["background"])
    assert all(len(colours) == 1 for colours in hues.values())
    assert len(set().union(*hues.values())) == len(hues)


def test_upload_a_flac_shows_the_transcript_of_transcribe(served, browser):
    server, model, tmp = served
    rng = np.random.default_rng(3)
    flac = tmp / "speech.flac"
    sf.write(flac, (0.2 * rng.standard_normal(3 * 16000)).astype(np.float32), 16000, subtype="PCM_16")
    reference = offline(model, [flac])[str(flac)]
    assert len(reference["words"]) > 3
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_selector("#decoder option", state="attached")  # /info was read
    assert "greedy (default)" in page.inner_text("#decoder")
    page.set_input_files("#file", str(flac))
    page.wait_for_selector("#result:not([hidden])", timeout=60000)
    assert_shows(page, reference)
    assert page.get_attribute("#wave", "data-drawn") == "waveform"  # decoded in the browser
    assert re.search(r"3\.00 s of audio · decoder greedy", page.inner_text("#meta"))
    assert page.is_hidden("#error")
    page.close()


def test_a_recording_is_sent_as_wav_and_transcribed(served, browser, tmp_path):
    server, model, _ = served
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_selector("#decoder option", state="attached")
    page.click("#record")
    page.wait_for_selector("#record.recording")
    page.wait_for_timeout(2000)
    page.click("#record")
    page.wait_for_selector("#result:not([hidden])", timeout=60000)
    wav = tmp_path / "recording.wav"  # what was uploaded, offered on the page as a download
    wav.write_bytes(bytes(page.evaluate("""async () => Array.from(new Uint8Array(
        await (await fetch(document.getElementById('download').href)).arrayBuffer()))""")))
    info = sf.info(wav)
    assert info.format == "WAV" and info.subtype == "PCM_16" and info.channels == 1
    assert 1.0 < info.duration < 5.0 and np.abs(sf.read(wav)[0]).max() > 0.01  # the fake microphone's beeps
    assert_shows(page, offline(model, [wav])[str(wav)])
    page.close()


def test_an_error_of_the_service_is_shown(served, browser, tmp_path):
    server, _, tmp = served
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio at all\n" * 10)
    page = browser.new_page()
    page.goto(server.url)
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#error:not([hidden])", timeout=30000)
    assert page.inner_text("#error").startswith("422 ")
    assert "notes.txt: not an audio file soundfile can read" in page.inner_text("#error")
    assert page.is_hidden("#result")
    page.close()
    assert list((tmp / "tmpdir").iterdir()) == []
