"""Manifests: reading/writing, the one-pass check of every entry, the builders and
``w2v2 data manifest``."""

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from w2v2.cli import main
from w2v2.data.manifest import (Entry, ManifestError, Requirements, check_manifest, ctc_min_frames,
                                entries_from_folders, entries_from_split, entries_from_table, read_manifest,
                                write_manifest)

SR = 16000


def wav(path: Path, n: int, sr: int = SR, channels: int = 1, subtype: str = "PCM_16", bad: float | None = None) -> Path:
    x = np.random.default_rng(n).uniform(-0.3, 0.3, (n, channels)).astype(np.float32)
    if bad is not None:
        x[n // 2] = bad
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype=subtype)
    return path


# ---- reading and writing -------------------------------------------------------------------------


def test_round_trip_relative_absolute_and_spaces(tmp_path):
    outside = tmp_path / "elsewhere" / "a b.wav"
    entries = [Entry(tmp_path / "m" / "sub dir" / "x y.flac", 123, "HELLO WORLD"),
               Entry(outside, 5, ""), Entry(tmp_path / "m" / "z.wav", 0, "ÉTÉ 'QUOTED' \"TOO\"")]
    write_manifest(tmp_path / "m" / "list.tsv", entries)
    lines = (tmp_path / "m" / "list.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "path\tsamples\ttext"
    assert lines[1] == "sub dir/x y.flac\t123\tHELLO WORLD"  # relative below the manifest's folder
    assert lines[2].startswith(str(outside) + "\t")  # absolute elsewhere
    back = read_manifest(tmp_path / "m" / "list.tsv")
    assert [dataclasses.replace(b, uid=None) for b in back] == entries
    assert [b.id for b in back] == ["sub dir/x y.flac", str(outside), "z.wav"]  # the paths as written
    assert [e.id for e in entries] == [e.path.as_posix() for e in entries]  # built in code: the full path


def test_without_text_column(tmp_path):
    write_manifest(tmp_path / "m.tsv", [Entry(tmp_path / "a.wav", 7)])
    assert (tmp_path / "m.tsv").read_text() == "path\tsamples\na.wav\t7\n"
    assert read_manifest(tmp_path / "m.tsv") == [Entry(tmp_path / "a.wav", 7, None, "a.wav")]


def test_same_file_names_in_two_folders_are_two_ids(tmp_path):
    (tmp_path / "m.tsv").write_text("path\tsamples\na/x.wav\t3\nb/x.wav\t4\n")
    entries = read_manifest(tmp_path / "m.tsv")
    assert [e.id for e in entries] == ["a/x.wav", "b/x.wav"]  # the paths as written, not the stem "x"
    write_manifest(tmp_path / "copy.tsv", entries)  # ids equal to the written paths: no id column
    assert (tmp_path / "copy.tsv").read_text() == "path\tsamples\na/x.wav\t3\nb/x.wav\t4\n"


def test_id_column_is_read_and_kept(tmp_path):
    (tmp_path / "m.tsv").write_text("path\tsamples\tid\na/x.wav\t3\tspk1-x\nb/x.wav\t4\tspk2-x\n")
    entries = read_manifest(tmp_path / "m.tsv")
    assert [e.id for e in entries] == ["spk1-x", "spk2-x"]
    write_manifest(tmp_path / "copy.tsv", entries)
    assert (tmp_path / "copy.tsv").read_text().splitlines() == ["id\tpath\tsamples", "spk1-x\ta/x.wav\t3",
                                                                "spk2-x\tb/x.wav\t4"]
    assert read_manifest(tmp_path / "copy.tsv") == entries


def test_ids_survive_writing_to_another_folder(tmp_path):
    (tmp_path / "m.tsv").write_text("path\tsamples\na/x.wav\t3\n")
    entries = read_manifest(tmp_path / "m.tsv")
    write_manifest(tmp_path / "sub" / "moved.tsv", entries)  # the path is written absolute, the id stays
    lines = (tmp_path / "sub" / "moved.tsv").read_text().splitlines()
    assert lines == ["id\tpath\tsamples", f"a/x.wav\t{tmp_path / 'a' / 'x.wav'}\t3"]
    assert read_manifest(tmp_path / "sub" / "moved.tsv") == entries


def test_an_id_naming_two_recordings_is_refused(tmp_path):
    (tmp_path / "m.tsv").write_text("path\tsamples\tid\na/x.wav\t3\tx\nb/x.wav\t4\tx\n")
    with pytest.raises(ManifestError, match="the id 'x' names two recordings"):
        read_manifest(tmp_path / "m.tsv")
    (tmp_path / "twice.tsv").write_text("path\tsamples\tid\na/x.wav\t3\tx\na/x.wav\t3\tx\n")
    assert len(read_manifest(tmp_path / "twice.tsv")) == 2  # the same file listed twice is one recording
    (tmp_path / "empty.tsv").write_text("path\tsamples\tid\na/x.wav\t3\t\n")
    with pytest.raises(ManifestError, match="empty.tsv:2: empty id"):
        read_manifest(tmp_path / "empty.tsv")
    with pytest.raises(ManifestError, match="names two recordings"):
        write_manifest(tmp_path / "w.tsv", [Entry(tmp_path / "a.wav", 1, None, "u"),
                                            Entry(tmp_path / "b.wav", 1, None, "u")])
    assert not (tmp_path / "w.tsv").exists()


@pytest.mark.parametrize("text", ["A\tB", "A\nB", "A\rB"])
def test_write_refuses_what_a_tsv_cannot_hold(tmp_path, text):
    with pytest.raises(ManifestError, match="tab or line break"):
        write_manifest(tmp_path / "m.tsv", [Entry(tmp_path / "a.wav", 1, text)])
    assert not (tmp_path / "m.tsv").exists()  # nothing half-written


@pytest.mark.parametrize("content,message", [
    ("", "header"), ("file\tlen\nx\t1\n", "header"), ("path\tsamples\nx\n", ":2: expected 2"),
    ("path\tsamples\nx\tmany\n", "must be an integer"), ("path\tsamples\nx\t-3\n", "negative"),
])
def test_read_errors_name_file_and_line(tmp_path, content, message):
    (tmp_path / "m.tsv").write_text(content)
    with pytest.raises(ManifestError, match=message) as e:
        read_manifest(tmp_path / "m.tsv")
    assert str(tmp_path / "m.tsv") in str(e.value)


def test_read_bom_crlf_and_bad_encoding(tmp_path):
    (tmp_path / "m.tsv").write_bytes("\ufeffpath\tsamples\r\na.wav\t3\r\n\r\n".encode())
    assert read_manifest(tmp_path / "m.tsv") == [Entry(tmp_path / "a.wav", 3, None, "a.wav")]
    (tmp_path / "l1.tsv").write_bytes("path\tsamples\ttext\na.wav\t3\tCAF\xc9\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(tmp_path / "l1.tsv")
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "none.tsv")


# ---- checking ----------------------------------------------------------------------------------


def test_ctc_min_frames_by_hand():
    assert ctc_min_frames(list("HELLO|WORLD")) == 11 + 1  # L L needs a blank between
    assert ctc_min_frames(list("AAA")) == 5
    assert ctc_min_frames([]) == 0


def test_frames_follow_the_conv_stack():
    req = Requirements()
    assert req.min_samples == 400
    # 400-sample window, 320-sample hop: floor((n - 400) / 320) + 1
    assert [req.frames(n) for n in (399, 400, 719, 720, 16000)] == [0, 1, 1, 2, 49]


def test_check_reports_every_problem_in_one_pass(tmp_path):
    good = wav(tmp_path / "good.wav", SR)
    rate = wav(tmp_path / "rate48k.flac", 48000, sr=48000, channels=2, subtype="PCM_24")
    short = wav(tmp_path / "short.wav", 399)
    nan = wav(tmp_path / "nan.wav", SR, subtype="FLOAT", bad=np.nan)
    (tmp_path / "garbage.wav").write_bytes(b"\x00\x01junk" * 100)
    wav(tmp_path / "full.flac", 3 * SR)
    data = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 3])
    tight = wav(tmp_path / "tight.wav", 400 + 320 * 11)  # 12 frames: enough for HELLO WORLD, not for more
    entries = [Entry(good, SR, "HELLO"), Entry(rate, SR), Entry(short, 399), Entry(nan, SR),
               Entry(tmp_path / "garbage.wav", 10), Entry(tmp_path / "cut.flac", 3 * SR),
               Entry(tmp_path / "missing.wav", 10), Entry(good, SR + 1),
               Entry(tight, 400 + 320 * 11, "HELLO WORLD"), Entry(tight, 400 + 320 * 11, "HELLO WORLDS"),
               Entry(good, SR, "  ")]
    ok, problems = check_manifest(entries, progress=False)
    assert ok == [entries[0], entries[1], entries[8]]
    reasons = {(p.entry.path.name, p.entry.samples, p.entry.text): p.reason for p in problems}
    assert len(problems) == 8
    assert "receptive field (400)" in reasons[("short.wav", 399, None)]
    assert "NaN or infinite" in reasons[("nan.wav", SR, None)]
    assert "format not recognised" in reasons[("garbage.wav", 10, None)]
    assert "truncated" in reasons[("cut.flac", 3 * SR, None)]
    assert "not found" in reasons[("missing.wav", 10, None)]
    assert "says 16001 samples" in reasons[("good.wav", SR + 1, None)]
    assert "12 frames" in reasons[("tight.wav", 400 + 320 * 11, "HELLO WORLDS")]
    assert "CTC needs 13" in reasons[("tight.wav", 400 + 320 * 11, "HELLO WORLDS")]
    assert "empty transcript" in reasons[("good.wav", SR, "  ")]
    assert all(str(p).startswith(str(p.entry.path)) for p in problems)


def test_check_measures_and_limits(tmp_path):
    a = wav(tmp_path / "a.wav", 44100 * 2, sr=44100)
    ok, problems = check_manifest([Entry(a, 0)], measure_samples=True, progress=False)
    assert ok == [Entry(a, 2 * SR)] and not problems
    ok, problems = check_manifest(ok, Requirements(max_seconds=1.5), progress=False)
    assert not ok and "too long: 2.0 s > 1.5 s" in problems[0].reason


# ---- building ----------------------------------------------------------------------------------


def test_folders_recursive_with_extensions(tmp_path):
    wav(tmp_path / "a" / "x.wav", 500)
    wav(tmp_path / "a" / "deep" / "y.WAV", 500)
    (tmp_path / "a" / "deep" / "z.flac").write_bytes(b"not audio")
    (tmp_path / "a" / "notes.txt").write_text("hello")
    found = entries_from_folders([tmp_path / "a"])
    assert sorted(e.path.name for e in found) == ["x.wav", "y.WAV", "z.flac"]
    assert [e.path.name for e in entries_from_folders([tmp_path / "a"], ["flac"])] == ["z.flac"]
    with pytest.raises(ManifestError, match="not a folder"):
        entries_from_folders([tmp_path / "nope"])


def test_transcripts_table(tmp_path):
    wav(tmp_path / "audio" / "one.wav", SR)
    (tmp_path / "t.tsv").write_text("speaker\tpath\ttext\nsp1\taudio/one.wav\tHELLO THERE\n")
    assert entries_from_table(tmp_path / "t.tsv", with_text=True) == [
        Entry(tmp_path / "audio" / "one.wav", 0, "HELLO THERE")]
    assert entries_from_table(tmp_path / "t.tsv", with_text=False)[0].text is None
    (tmp_path / "p.tsv").write_text("path\naudio/one.wav\n")
    with pytest.raises(ManifestError, match="missing text"):
        entries_from_table(tmp_path / "p.tsv", with_text=True)


def fake_corpus(root: Path) -> Path:
    wav(root / "c" / "audio" / "u1.flac", SR)
    wav(root / "c" / "audio" / "u2.flac", 2 * SR)
    (root / "c" / "transcripts.tsv").write_text("id\tspeaker\tseconds\ttext\traw_text\nu1\ts\t1.0\tONE\tone.\n")
    (root / "split.tsv").write_text("corpus\tid\tseconds\nc\tu1\t1.000\nc\tu2\t2.000\n")
    return root / "split.tsv"


def test_split_lists(tmp_path):
    split = fake_corpus(tmp_path)
    entries, problems = entries_from_split(split, tmp_path, with_text=True)
    assert entries == [Entry(tmp_path / "c" / "audio" / "u1.flac", 0, "ONE")]
    assert len(problems) == 1 and "no transcript for u2" in problems[0].reason
    entries, problems = entries_from_split(split, tmp_path, with_text=False)
    assert [e.path.stem for e in entries] == ["u1", "u2"] and not problems


def test_cli_fails_listing_all_then_skips(tmp_path, capsys):
    wav(tmp_path / "a" / "ok.wav", SR)
    wav(tmp_path / "a" / "tiny.wav", 100)
    (tmp_path / "a" / "junk.wav").write_bytes(b"RIFF....")
    out = tmp_path / "m.tsv"
    assert main(["data", "manifest", str(tmp_path / "a"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "tiny.wav: too short" in err and "junk.wav: " in err and "2 of 3 entries are unusable" in err
    assert not out.exists()
    assert main(["data", "manifest", str(tmp_path / "a"), "--skip-bad", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 entries" in captured.out and "skipped 2 bad" in captured.out
    assert "skipped: " in captured.err and "tiny.wav" in captured.err
    assert read_manifest(out) == [Entry(tmp_path / "a" / "ok.wav", SR, None, "a/ok.wav")]


def test_cli_split_with_text_normalised(tmp_path):
    split = fake_corpus(tmp_path)
    out = tmp_path / "m.tsv"
    assert main(["data", "manifest", "--split", str(split), "--data-root", str(tmp_path), "--with-text",
                 "--skip-bad", "--out", str(out)]) == 0
    assert read_manifest(out) == [Entry(tmp_path / "c" / "audio" / "u1.flac", SR, "ONE", "c/audio/u1.flac")]
    assert main(["data", "manifest", str(tmp_path), "--split", str(split), "--out", str(out)]) == 2


def test_cli_on_the_shared_10_minute_split(shared_data, tmp_path):
    out = tmp_path / "m.tsv"
    split = shared_data / "splits" / "labeled_10min.tsv"
    assert main(["data", "manifest", "--split", str(split), "--data-root", str(shared_data), "--with-text",
                 "--out", str(out)]) == 0
    entries = read_manifest(out)
    with open(split, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [e.path.stem for e in entries] == [r["id"] for r in rows]
    # the split's seconds (3 decimals, either way at a tie) are the 16 kHz sample counts / 16000
    assert all(abs(e.samples / SR - float(r["seconds"])) <= 0.0005 + 1e-9 for e, r in zip(entries, rows))
    assert all(e.text and e.text == e.text.upper() for e in entries)
