"""The word Transformer LM inside the beam search (flashlight custom LM), checked against the
LM's own sentence scores, and `--decoder transformer` end to end."""

import torch

from decode_testkit import LETTERS, peaked, tiny_ctc_model, write_lexicon, write_noise
from w2v2.cli import main
from w2v2.decode.beam import BeamSearchConfig, BeamSearchDecoder, transformer_search_model
from w2v2.decode.transformer_lm import TransformerLM, TransformerLMConfig, load_transformer_lm, save_transformer_lm

A, B, C, T, BAR = (LETTERS.index[u] for u in "ABCT|")
WORDS = ["CAT", "CAB", "AT", "A", "TAB"]


def tiny_lm(tmp_path, words=WORDS, seed=2):
    torch.manual_seed(seed)
    vocab = {w: i for i, w in enumerate(["</s>", "<unk>"] + words[:-1])}  # the last word is out of vocabulary
    model = TransformerLM(TransformerLMConfig(len(vocab), dim=16, layers=1, heads=2, ffn_dim=32, context=8), vocab)
    save_transformer_lm(model, tmp_path / "tlm")
    return tmp_path / "tlm"


def test_lm_part_of_the_score_is_the_sentence_log_probability(tmp_path):
    """On peaked frames the path is fixed, so score(lm_weight) - score(0) = lm_weight * log P(words </s>)
    as the LM's own score_sentences computes it (histories, </s> and <unk> handled alike)."""
    lm = load_transformer_lm(tiny_lm(tmp_path))
    search = transformer_search_model(LETTERS, lm, write_lexicon(tmp_path / "lexicon.txt", WORDS))
    emissions = peaked([C, A, T, BAR, A, T, BAR, T, A, B, BAR, C, A, B])  # CAT AT TAB(<unk>) CAB
    base = BeamSearchDecoder(search, BeamSearchConfig(lm_weight=0.0))(emissions)[0]
    weighted = BeamSearchDecoder(search, BeamSearchConfig(lm_weight=0.3))(emissions)[0]
    assert base.text == weighted.text == "CAT AT TAB CAB"
    expected = lm.score_sentences([["CAT", "AT", "TAB", "CAB"]])[0]
    assert abs((weighted.score - base.score) - 0.3 * expected) < 1e-3


def test_transformer_lm_flips_an_ambiguous_word(tmp_path):
    lm = load_transformer_lm(tiny_lm(tmp_path))
    search = transformer_search_model(LETTERS, lm, write_lexicon(tmp_path / "lexicon.txt", WORDS))
    first = lm.next_log_probs([[]])[0]
    preferred = "CAT" if first[lm.vocab["CAT"]] > first[lm.vocab["CAB"]] else "CAB"
    other = "CAB" if preferred == "CAT" else "CAT"
    # the acoustics lean (0.6 / 0.4) towards the word the LM likes less
    lean = {T: 0.6, B: 0.4} if other == "CAT" else {B: 0.6, T: 0.4}
    emissions = peaked([C, A, lean], floor=-30.0)  # only the last letter is in doubt
    assert BeamSearchDecoder(search, BeamSearchConfig(lm_weight=0.0))(emissions)[0].text == other
    gap = float(first[lm.vocab[preferred]] - first[lm.vocab[other]])
    assert gap > 0.05  # the random LM has a preference
    strong = BeamSearchConfig(lm_weight=1.5 * 0.41 / gap)  # log(0.6/0.4) = 0.41 < lm_weight * gap
    assert BeamSearchDecoder(search, strong)(emissions)[0].text == preferred


def test_transcribe_with_transformer_decoder(tmp_path, capsys):
    model = tiny_ctc_model(tmp_path)
    lexicon = write_lexicon(tmp_path / "lexicon.txt", ["THE", "A", "CAT", "SAT", "ON", "MAT", "IT", "IS", "TO", "I"])
    lm_dir = tiny_lm(tmp_path, ["THE", "A", "CAT", "SAT", "ON", "MAT", "IT", "IS", "TO", "I"])
    audio = write_noise(tmp_path / "a.wav", 1.2, seed=5)
    capsys.readouterr()
    assert main(["transcribe", str(model), str(audio), "--decoder", "transformer", "--lm", str(lm_dir),
                 "--lexicon", str(lexicon), "--beam-size", "8"]) == 0
    path, text = capsys.readouterr().out.rstrip("\n").split("\t")
    assert path == str(audio) and text and set(text.split()) <= {"THE", "A", "CAT", "SAT", "ON", "MAT", "IT", "IS",
                                                                 "TO", "I"}
