"""The main job in miniature: every stage of ``w2v2 experiment lowres`` runs, the report is complete,
and a second invocation redoes nothing."""

import argparse
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from w2v2.data.manifest import read_manifest, write_manifest
from w2v2.experiment import lowres
from w2v2.experiment.lowres import check_disjoint
from w2v2.experiment.report import manifest_names
from w2v2.experiment.stages import StageRunner

W2V2 = [sys.executable, "-m", "w2v2.cli"]


def test_disjointness_check_refuses_test_audio_in_training(tmp_path):
    from train_utils import write_corpus

    manifest = write_corpus(tmp_path / "a", n=4)
    entries = read_manifest(manifest)
    write_manifest(tmp_path / "train.tsv", entries[:3])
    write_manifest(tmp_path / "test.tsv", entries[2:])  # clip 2 in both
    with pytest.raises(ValueError, match="1 dev/test recordings are also in the training audio"):
        check_disjoint([tmp_path / "train.tsv"], [tmp_path / "test.tsv"])
    copy = tmp_path / "copy.flac"  # the same recording under another name is caught too
    shutil.copyfile(entries[0].path, copy)
    write_manifest(tmp_path / "test2.tsv", [entries[3].__class__(copy, entries[0].samples, None)])
    with pytest.raises(ValueError, match="also in the training audio"):
        check_disjoint([tmp_path / "train.tsv"], [tmp_path / "test2.tsv"])
    write_manifest(tmp_path / "test3.tsv", entries[3:])
    check_disjoint([tmp_path / "train.tsv"], [tmp_path / "test3.tsv"])


def test_manifest_names_tell_same_stems_apart(tmp_path):
    a, b = tmp_path / "a" / "test.tsv", tmp_path / "b" / "test.tsv"
    assert manifest_names([tmp_path / "dev.tsv", b]) == ["dev", "test"]  # stems where they differ
    assert manifest_names([a, b, tmp_path / "x" / "dev.tsv"]) == ["a-test", "b-test", "dev"]
    assert manifest_names([tmp_path / "x" / "a" / "t.tsv", tmp_path / "y" / "a" / "t.tsv"]) == ["x-a-t", "y-a-t"]
    # a prefixed name that meets a stem grows again; the stem stays
    assert manifest_names([a, b, tmp_path / "a-test.tsv"]) == [f"{tmp_path.name}-a-test", "b-test", "a-test"]
    with pytest.raises(ValueError, match="the same manifest is given twice"):
        manifest_names([a, tmp_path / "b" / ".." / "a" / "test.tsv"])
    with pytest.raises(ValueError, match="no folder name tells these manifests apart"):
        manifest_names([a, tmp_path / "a" / "test.TSV"])


class DryRunner(StageRunner):
    """Runs no command: an evaluation writes a metrics.json whose WER tells its test set (by the
    test manifest's folder); a stage whose folder has a stage.json is skipped, as for real."""

    wer = {"a": 0.25, "b": 0.5}

    def run(self, name, args, marker_dir, resumable=False):
        marker = marker_dir / "stage.json"
        skipped = marker.is_file()
        if not skipped:
            marker_dir.mkdir(parents=True, exist_ok=True)
            if args[:2] == ["data", "phonemize"]:  # a copy stands for the phone transcripts
                write_manifest(args[args.index("--out") + 1], read_manifest(args[2]))
            if args[0] == "evaluate":  # every --out folder (one per --decoder)
                wer = self.wer[Path(args[2]).parent.name]
                metrics = {"wer": wer, "cer": wer / 2, "n_words": 10, "n_chars": 40}
                for out in args[args.index("--out") + 1:]:
                    Path(out).mkdir(parents=True, exist_ok=True)
                    (Path(out) / "metrics.json").write_text(json.dumps(metrics))
            marker.write_text(json.dumps({"stage": name, "command": "w2v2 " + " ".join(args), "seconds": 0.0}))
        record = {**json.loads(marker.read_text()), "skipped": skipped}
        self.records.append(record)
        return record


def test_lowres_two_test_sets_with_one_file_stem(tmp_path, monkeypatch):
    """a/test.tsv and b/test.tsv get their own evaluation folders and report columns and rows
    (the same stem once shared one folder: the second set was skipped as done and the report showed
    the first one's figures under both names)."""
    from train_utils import write_corpus

    entries = read_manifest(write_corpus(tmp_path / "corpus", n=6))
    sets = {"unlabeled.tsv": entries[:2], "labeled.tsv": entries[2:3], "dev.tsv": entries[3:4],
            "a/test.tsv": entries[4:5], "b/test.tsv": entries[5:6]}
    for name, part in sets.items():
        write_manifest(tmp_path / name, part)
    monkeypatch.setattr(lowres, "StageRunner", DryRunner)
    args = argparse.Namespace(unlabeled=str(tmp_path / "unlabeled.tsv"), labeled=[str(tmp_path / "labeled.tsv")],
                              dev=str(tmp_path / "dev.tsv"), test=[str(tmp_path / "a" / "test.tsv"),
                                                                  str(tmp_path / "b" / "test.tsv")],
                              lm_text=str(tmp_path / "lm.txt"), out=str(tmp_path / "exp"), scale="ci",
                              decoders=["greedy", "ngram"], units=["letters"], seed=1)
    lowres.run_lowres(args)
    exp = tmp_path / "exp"
    evals = sorted(p.parent.relative_to(exp / "finetune").as_posix()
                   for p in (exp / "finetune").glob("*/eval/*/metrics.json"))
    assert evals == [f"labeled-{init}/eval/{t}-{d}" for init in ("pretrained", "scratch")
                     for t in ("a-test", "b-test") for d in ("greedy", "ngram")]
    rows = json.loads((exp / "report.json").read_text())["rows"]
    assert len(rows) == 2 * 2 * 2 and all(r["labeled"] == "labeled" for r in rows)
    assert {(r["test"], r["wer"]) for r in rows} == {("a-test", 25.0), ("b-test", 50.0)}
    report = (exp / "report.md").read_text()
    assert "| a-test WER (CER) | b-test WER (CER) |" in report and "| 25.0 (12.5) | 50.0 (25.0) |" in report


def test_lowres_phone_units_beside_letters(tmp_path, monkeypatch):
    """--units letters phones: phone models fine-tune on phonemised labeled and dev sets with token
    units and select by PER, their LM searches spell words through the phone lexicon and are tuned
    and scored on the word transcripts; they have no greedy rows; the letter runs keep their folders."""
    from train_utils import write_corpus

    entries = read_manifest(write_corpus(tmp_path / "corpus", n=5))
    for name, part in {"unlabeled": entries[:2], "lab": entries[2:3], "dev": entries[3:4], "test": entries[4:5]}.items():
        write_manifest(tmp_path / "a" / f"{name}.tsv", part)
    monkeypatch.setattr(lowres, "StageRunner", DryRunner)
    a, exp = tmp_path / "a", tmp_path / "exp"
    args = argparse.Namespace(unlabeled=str(a / "unlabeled.tsv"), labeled=[str(a / "lab.tsv")], dev=str(a / "dev.tsv"),
                              test=[str(a / "test.tsv")], lm_text=str(tmp_path / "lm.txt"), out=str(exp),
                              scale="ci", decoders=["greedy", "ngram"], units=["phones", "letters"], seed=1)
    lowres.run_lowres(args)
    commands = {json.loads(m.read_text())["stage"]: json.loads(m.read_text())["command"].split()
                for m in exp.rglob("stage.json")}
    ft = commands["finetune lab-phones-pretrained"]
    assert ft[ft.index("--train") + 1] == str(exp / "phones" / "lab.tsv")
    assert ft[ft.index("--valid") + 1] == str(exp / "phones" / "dev.tsv")
    assert ft[ft.index("--units") + 1] == "token" and ft[ft.index("--best-by") + 1] == "wer"
    letters = commands["finetune lab-pretrained"]
    assert letters[letters.index("--train") + 1] == str(a / "lab.tsv") and "--units" not in letters
    assert commands["phonemize lab"][:3] == ["w2v2", "data", "phonemize"]
    assert commands["phone lexicon"][-1] == "--phones"
    tune = commands["tune ngram lab-phones-scratch"]
    assert tune[tune.index("--dev") + 1] == str(a / "dev.tsv")
    assert tune[tune.index("--lexicon") + 1] == str(exp / "lm" / "phone_lexicon.txt")
    ev = commands["evaluate lab-phones-pretrained test ngram"]  # no greedy row: its greedy output is phones
    assert ev[ev.index("--decoder") + 1:ev.index("--out")] == ["ngram"]
    ev = commands["evaluate lab-pretrained test greedy ngram"]  # both decoders on one pass of the model
    assert ev[ev.index("--out") + 1:] == [str(exp / "finetune" / "lab-pretrained" / "eval" / f"test-{d}")
                                          for d in ("greedy", "ngram")]
    assert commands["tune ngram lab-pretrained"] and ev[2] == str(exp / "finetune" / "lab-pretrained" / "best")
    rows = json.loads((exp / "report.json").read_text())["rows"]
    assert sorted((r["units"], r["pretrained"], r["decoder"]) for r in rows) == sorted(
        [("letters", p, d) for p in (True, False) for d in ("greedy", "ngram")]
        + [("phones", p, "ngram") for p in (True, False)])
    assert "| lab (0.0 min) | phones | yes | 4-gram |" in (exp / "report.md").read_text()
    args.units = ["phones"]
    with pytest.raises(ValueError, match="--units needs letters"):
        lowres.run_lowres(args)


def test_lowres_units_and_scratch_baselines_from_the_scale(tmp_path, monkeypatch):
    """Without --units the scale's units are fine-tuned; a scale whose scratch_units lack phones
    fine-tunes (and tunes, evaluates and reports) phone models from the pre-trained model only."""
    from train_utils import write_corpus

    entries = read_manifest(write_corpus(tmp_path / "corpus", n=5))
    for name, part in {"unlabeled": entries[:2], "lab": entries[2:3], "dev": entries[3:4], "test": entries[4:5]}.items():
        write_manifest(tmp_path / "a" / f"{name}.tsv", part)
    monkeypatch.setattr(lowres, "StageRunner", DryRunner)
    monkeypatch.setitem(lowres.SCALES, "ci", dataclasses.replace(
        lowres.SCALES["ci"], units=("letters", "phones"), scratch_units=("letters",)))
    a, exp = tmp_path / "a", tmp_path / "exp"
    args = argparse.Namespace(unlabeled=str(a / "unlabeled.tsv"), labeled=[str(a / "lab.tsv")], dev=str(a / "dev.tsv"),
                              test=[str(a / "test.tsv")], lm_text=str(tmp_path / "lm.txt"), out=str(exp),
                              scale="ci", decoders=["greedy", "ngram"], units=None, seed=1)
    lowres.run_lowres(args)
    stages = {json.loads(m.read_text())["stage"] for m in exp.rglob("stage.json")}
    assert {s for s in stages if s.startswith("finetune ")} == {
        "finetune lab-pretrained", "finetune lab-scratch", "finetune lab-phones-pretrained"}
    assert not any("phones-scratch" in s for s in stages)
    rows = json.loads((exp / "report.json").read_text())["rows"]
    assert sorted((r["units"], r["pretrained"], r["decoder"]) for r in rows) == sorted(
        [("letters", p, d) for p in (True, False) for d in ("greedy", "ngram")] + [("phones", True, "ngram")])
    assert "| lab (0.0 min) | phones | no |" not in (exp / "report.md").read_text()


def test_real_scale_fine_tunes_phones_beside_letters_and_scratch_letters_only():
    real = lowres.SCALES["real"]
    assert real.units == ("letters", "phones")
    assert [real.inits(u) for u in real.units] == [("pretrained", "scratch"), ("pretrained",)]
    assert all(lowres.SCALES[s].units == ("letters",) for s in ("ci", "demo", "short"))


@pytest.mark.slow
def test_lowres_experiment_end_to_end(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    corpus = tmp_path / "corpus"
    subprocess.run(W2V2 + ["data", "synth", "--out", str(corpus), "--unlabeled-minutes", "1.5", "--labeled-minutes",
                           "0.5", "--dev-minutes", "0.3", "--test-minutes", "0.3", "--lm-sentences", "400",
                           "--train-speakers", "6", "--dev-speakers", "2", "--test-speakers", "2"],
                   check=True, capture_output=True)
    cmd = W2V2 + ["experiment", "lowres", "--scale", "ci", "--unlabeled", str(corpus / "unlabeled.tsv"),
                  "--labeled", str(next(corpus.glob("labeled_*.tsv"))), "--dev", str(corpus / "dev.tsv"),
                  "--test", str(corpus / "test.tsv"), "--lm-text", str(corpus / "lm_text.txt"),
                  "--out", str(tmp_path / "exp"), "--units", "letters", "phones"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    exp = tmp_path / "exp"
    stages = sorted(p.parent.relative_to(exp).as_posix() for p in exp.rglob("stage.json"))
    # pretrain, 2 phonemised sets, 2 letter and 2 phone fine-tunings, 2 LMs and the phone lexicon,
    # 4 x 2 tunings, 4 evaluations (each of all decoders: 3 for letters, 2 for phones), error analysis
    assert len(stages) == 1 + 2 + 4 + 3 + 8 + 4 + 1, stages
    report = (exp / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| labeled_")]
    assert len(rows) == 10 and all(re.search(r"\| \d+\.\d \|", r) for r in rows), rows
    for needed in ("## Error analysis", "## Training curves", "## Commands", "w2v2 pretrain", "w2v2 finetune",
                   "w2v2 lm build", "w2v2 lm train", "w2v2 tune-decoder", "w2v2 evaluate", "versions:", "machine:"):
        assert needed in report, needed
    html = (exp / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "<table>" in html
    # every number of the report is the one its evaluation wrote (report.md cell and report.json row)
    summary = json.loads((exp / "report.json").read_text())
    assert summary["scale"] == "ci" and re.fullmatch(r"[0-9a-f]{4,40}|unknown", summary["commit"])
    pre_log = [json.loads(line) for line in (exp / "pretrain" / "log.jsonl").read_text().splitlines()]
    last_valid = [r for r in pre_log if r["kind"] == "valid"][-1]
    assert summary["pretrain"]["updates"] == max(r["update"] for r in pre_log) > 0
    assert summary["pretrain"]["valid_acc"] == last_valid["acc"]
    assert summary["pretrain"]["targets"] == "latents"  # the ci budget's continuous targets
    assert len(summary["rows"]) == 10
    lab = next(corpus.glob("labeled_*.tsv")).stem
    for row in summary["rows"]:
        init = "pretrained" if row["pretrained"] else "scratch"
        run = "-".join([lab, init] if row["units"] == "letters" else [lab, "phones", init])
        metrics = json.loads((exp / "finetune" / run / "eval" / f"test-{row['decoder']}" / "metrics.json").read_text())
        assert row["labeled"] == lab and row["test"] == "test"
        assert row["wer"] == round(100 * metrics["wer"], 2) and row["cer"] == round(100 * metrics["cer"], 2)
        assert (row["ref_words"], row["ref_chars"]) == (metrics["n_words"], metrics["n_chars"])
        lm = {"greedy": "None", "ngram": "4-gram", "rescore": "4-gram + Transformer rescoring"}[row["decoder"]]
        cell = "%.1f (%.1f)" % (100 * metrics["wer"], 100 * metrics["cer"])
        assert any(f"| {row['units']} | {'yes' if row['pretrained'] else 'no'} | {lm} | {cell} |" in r
                   for r in rows), (cell, rows)
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert second.returncode == 0
    assert second.stdout.count("done already") == len(stages)


@pytest.mark.slow
def test_ablation_trains_each_variant_with_its_switches(tmp_path):
    """Two table-4 variants at the ``ci`` budget: each pre-trains with its own config switches,
    is fine-tuned and evaluated, and gets a row of numbers in ablation.md."""
    from train_utils import write_corpus

    entries = read_manifest(write_corpus(tmp_path / "c", n=12, texts=["TURN ON THE LIGHT", "HELLO WORLD", "GOOD NIGHT"]))
    for name, part in {"unlabeled": entries[:6], "labeled": entries[:6], "dev": entries[6:9],
                       "test": entries[9:]}.items():
        write_manifest(tmp_path / f"{name}.tsv", part)
    variants = ["continuous-inputs-quantized-targets-paper", "quantized-inputs-continuous-targets"]
    run = subprocess.run(W2V2 + ["experiment", "ablation", "--scale", "ci", "--out", str(tmp_path / "abl"),
                                 "--variants", *variants] + [a for n in ("unlabeled", "labeled", "dev", "test")
                                                             for a in (f"--{n}", str(tmp_path / f"{n}.tsv"))],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    switched = json.loads((tmp_path / "abl" / variants[1] / "pretrain" / "best" / "config.json").read_text())
    paper = json.loads((tmp_path / "abl" / variants[0] / "pretrain" / "best" / "config.json").read_text())
    assert (switched["quantize_input"], switched["quantize_targets"]) == (True, False)
    assert (paper["quantize_input"], paper["quantize_targets"]) == (False, True)
    rows = [r for r in (tmp_path / "abl" / "ablation.md").read_text().splitlines() if r.startswith("| ")][1:]
    assert len(rows) == 2 and all(len(re.findall(r"\| \d+\.\d+ ", r)) >= 4 for r in rows), rows


def test_budget_reinitialises_top_blocks_of_pretrained_models_only():
    from w2v2.experiment.budget import SCALES
    demo = SCALES["demo"]
    pre = demo.finetune_args("train.tsv", 15.0, "dev.tsv", Path("out"), "pre/best", seed=1)
    scratch = demo.finetune_args("train.tsv", 15.0, "dev.tsv", Path("out"), "none", seed=1)
    i = pre.index("--reinit-blocks")
    assert pre[i + 1] == str(demo.reinit_blocks) == "1"
    assert "--reinit-blocks" not in scratch  # the finetune command refuses it with --init none
    assert "--reinit-blocks" not in SCALES["real"].finetune_args("t", 10.0, "d", Path("o"), "pre/best", seed=1)


@pytest.mark.parametrize("scale,pace", [("demo", "time"), ("short", "time"), ("real", "time"), ("ci", "updates")])
def test_time_limited_budgets_pace_their_fine_tuning_schedule_by_the_clock(scale, pace):
    """docs/small_compute.md, row FT-time: the fine-tuning schedules of the minute-bound budgets
    decay by the end of their minutes; ci keeps the update count (a deterministic smoke test)."""
    from w2v2.cli import build_parser
    from w2v2.experiment.budget import SCALES
    args = SCALES[scale].finetune_args("t.tsv", 10.0, "d.tsv", Path("o"), "pre/best", seed=1)
    assert build_parser().parse_args(args).schedule_pace == pace


@pytest.mark.parametrize("minutes,expected", [(10.0, 0.3), (30.0, 0.3), (30.01, 0.0), (60.0, 0.0)])
@pytest.mark.parametrize("init", ["pre/best", "none"])
def test_real_budget_masks_only_the_small_labeled_sets(minutes, expected, init):
    """Time masks at 0.3 and channel masks at half of it for labeled sets up to 30 minutes, for
    pre-trained and scratch models alike; none for an hour (docs/small_compute.md, row R2-masks)."""
    from w2v2.experiment.budget import SCALES
    args = SCALES["real"].finetune_args("t.tsv", minutes, "d.tsv", Path("o"), init, seed=1)
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert sets == [f"mask_prob={expected}", f"mask_channel_prob={expected / 2}"]


@pytest.mark.parametrize("scale,speed", [("real", 0.1), ("demo", 0.0), ("short", 0.0), ("ci", 0.0)])
@pytest.mark.parametrize("minutes", [10.0, 60.0])
@pytest.mark.parametrize("init", ["pre/best", "none"])
def test_real_budget_perturbs_the_speed_of_pretrained_models_fine_tuning(scale, speed, minutes, init):
    """The `real` budget's fine-tunings of a pre-trained model (every labeled size) train on clips
    played at a speed factor drawn from [0.9, 1.1] (docs/small_compute.md, rows AUGS10 / AUGS1h),
    which also turns the feature cache off; scratch models (row SCR-AUGS10: far fewer updates, still on the
    blank plateau) and the other budgets leave the audio as it is."""
    from w2v2.cli import build_parser
    from w2v2.data.augment import Augmentation
    from w2v2.experiment.budget import SCALES
    from w2v2.train.finetune import RECIPES, finetune_defaults
    from w2v2.train.options import train_config_from_args
    args = build_parser().parse_args(SCALES[scale].finetune_args("t.tsv", minutes, "d.tsv", Path("o"), init, seed=1))
    tcfg = train_config_from_args(args, finetune_defaults(RECIPES[args.recipe], args.max_updates))
    assert tcfg.augmentation() == Augmentation(speed=speed if init != "none" else 0.0)


def test_the_demo_holds_out_a_fixed_number_of_clips_however_large_its_pool(tmp_path, monkeypatch):
    """The demo budget's pre-training command, parsed and run up to the trainer: a pool of 2,000
    clips (3 %: 60) holds out 24, one of 300 (3 %: 9) holds out 9."""
    from train_utils import write_corpus
    from w2v2.cli import main
    from w2v2.data.manifest import read_manifest, write_manifest
    from w2v2.experiment.budget import SCALES
    from w2v2.train import pretrain

    held = []

    class Recorder:
        def __init__(self, task, *args, **kwargs):
            held.append(len(task.valid))
            raise SystemExit(0)

    monkeypatch.setattr(pretrain, "Trainer", Recorder)
    clips = read_manifest(write_corpus(tmp_path / "audio", n=2))
    for n in (2000, 300):
        pool = tmp_path / f"pool{n}.tsv"
        write_manifest(pool, [dataclasses.replace(clips[i % 2], uid=f"u{i}") for i in range(n)])
        with pytest.raises(SystemExit):
            main(SCALES["demo"].pretrain_args(str(pool), tmp_path / f"run{n}", seed=1))
    assert held == [24, 9]


def parse_pretrain(args: list[str]):
    """A budget's ``w2v2 pretrain`` command line, parsed by the CLI's parser: (its arguments, its model config)."""
    from w2v2.cli import build_parser
    from w2v2.train.pretrain import model_config
    parsed = build_parser().parse_args(args)
    return parsed, model_config(parsed)[0]


@pytest.mark.parametrize("scale,pace,quantized,units,crop", [
    ("demo", "time", False, 0, 0), ("real", "time", False, 100, 8000), ("short", "updates", True, 0, 0),
    ("ci", "updates", False, 0, 0)])
def test_budgets_pretrain_with_their_pace_and_targets(scale, pace, quantized, units, crop):
    """docs/small_compute.md, rows T1: the demo budget pre-trains with continuous targets, the real one
    (rows U100, R8) with 100 MFCC units, both on a clock-paced schedule; short (the ablations) keeps the
    paper's quantized targets and the update pace. The real one rounds its crops to 0.5 s (rows CROP)."""
    from w2v2.experiment.budget import SCALES
    parsed, cfg = parse_pretrain(SCALES[scale].pretrain_args("u.tsv", Path("o"), seed=1))
    assert parsed.schedule_pace == pace and parsed.crop_multiple == crop
    assert cfg.quantize_targets is quantized and cfg.quantize_input is False and cfg.target_units == units


@pytest.mark.parametrize("scale", ["demo", "short", "real"])
def test_ablation_variants_set_both_table4_switches_whatever_the_budget(scale):
    """A variant's settings come after the budget's own, so the paper row pre-trains with quantized
    targets even on a budget whose default is continuous targets."""
    from w2v2.experiment.ablation import VARIANTS
    from w2v2.experiment.budget import SCALES
    expected = {"continuous inputs, quantized targets (paper)": (False, True),
                "quantized inputs, quantized targets": (True, True),
                "quantized inputs, continuous targets": (True, False),
                "continuous inputs, continuous targets": (False, False)}
    for name, switches in expected.items():
        _, cfg = parse_pretrain(SCALES[scale].pretrain_args("u.tsv", Path("o"), seed=1, sets=VARIANTS[name]))
        assert (cfg.quantize_input, cfg.quantize_targets, cfg.target_units) == (*switches, 0), name


def test_run_chains_keeps_each_chain_in_order_runs_two_at_once_and_raises_a_failure(tmp_path):
    """Two chains meet at a barrier in their first stages, which only two concurrent workers can pass;
    within a chain the stages run in order; a failing stage is raised after the others finished."""
    import threading

    from w2v2.experiment.stages import StageFailed

    barrier, order = threading.Barrier(2, timeout=10), []

    class Chained(StageRunner):
        def run(self, name, args, marker_dir, resumable=False):
            if name.endswith("first"):
                barrier.wait()
            if name == "b fails":
                raise StageFailed("stage b fails failed")
            order.append(name)
            return {}

    chains = [[(f"{c} first", [], tmp_path), (f"{c} second", [], tmp_path)] for c in "ab"]
    Chained(tmp_path).run_chains(chains, workers=2)
    assert order.index("a first") < order.index("a second") and order.index("b first") < order.index("b second")
    order.clear()
    barrier.reset()
    with pytest.raises(StageFailed, match="b fails"):
        Chained(tmp_path).run_chains([chains[0], [("b first", [], tmp_path), ("b fails", [], tmp_path)]], workers=2)
    assert sorted(order) == ["a first", "a second", "b first"]  # chain a finished; b stopped at its failure
