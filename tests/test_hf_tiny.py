"""Tests for the offline tiny Hugging Face fixtures in tests/hf_tiny.py."""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from hf_tiny import FAMILIES, make_tiny_model, make_tiny_tokenizer  # noqa: E402

from transformers import AutoModel, AutoTokenizer  # noqa: E402

TEXTS = [
    "The movie was great and I loved it.",
    "Terrible plot, awful acting.",
    "I loved the soundtrack and the acting.",
    "The plot was great but the ending was awful.",
    "A charming little film with a big heart.",
    "Boring, slow and far too long.",
    "The actors did a wonderful job.",
    "I would not watch it again.",
    "What a fantastic surprise this was!",
    "The dialogue felt wooden and fake.",
    "Beautiful photography and a moving story.",
    "It was fine, nothing special.",
    "The jokes were funny and the cast was great.",
    "Worst film I have seen this year.",
    "A smart script and sharp direction.",
    "The sequel is better than the original.",
    "I fell asleep halfway through.",
    "Great music, weak story.",
    "My kids loved every minute of it.",
    "The ending made no sense at all.",
    "An honest and touching drama.",
    "Too many scenes felt unnecessary.",
    "The special effects were stunning.",
    "I want my money back.",
    "A perfect movie for a rainy day.",
    "The book was better than the film.",
    "Nobody in the theater was laughing.",
    "The lead actress gave a great performance.",
    "It started well but fell apart.",
    "I recommend it to everyone.",
    "我喜欢这部电影。",
    "这本书很无聊。",
    "演员的表演非常好。",
    "故事太长了，我不喜欢。",
]

# Per family: model class, pad id, and the special tokens around a single sequence.
EXPECTED = {
    "bert": ("BertModel", 0, ("[CLS]",), ("[SEP]",)),
    "roberta": ("RobertaModel", 1, ("<s>",), ("</s>",)),
    "albert": ("AlbertModel", 0, ("[CLS]",), ("[SEP]",)),
    "electra": ("ElectraModel", 0, ("[CLS]",), ("[SEP]",)),
    "xlnet": ("XLNetModel", 5, (), ("<sep>", "<cls>")),  # CLS at the END
    "deberta-v2": ("DebertaV2Model", 0, ("[CLS]",), ("[SEP]",)),
    "xlm-roberta": ("XLMRobertaModel", 1, ("<s>",), ("</s>",)),
    "distilbert": ("DistilBertModel", 0, ("[CLS]",), ("[SEP]",)),
    "ernie": ("ErnieModel", 0, ("[CLS]",), ("[SEP]",)),
}
# Real checkpoints' ids for the special tokens we reproduce.
EXPECTED_IDS = {
    "roberta": {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3},
    "xlm-roberta": {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3},
    "xlnet": {"<unk>": 0, "<s>": 1, "</s>": 2, "<cls>": 3, "<sep>": 4, "<pad>": 5, "<mask>": 6},
    "albert": {"<pad>": 0, "<unk>": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4},
    "deberta-v2": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3},
}

PAIR_SPECIALS = {f: 4 if f in ("roberta", "xlm-roberta") else 3 for f in FAMILIES}

SHORT, LONG = "I loved it.", "The plot was great but the ending was awful and far too long."
UNSEEN_CJK = "龘"  # not in TEXTS


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """family -> (folder, tokenizer, model), each built and reloaded once per module."""
    cache: dict = {}

    def get(family: str):
        if family not in cache:
            folder = make_tiny_model(family, tmp_path_factory.mktemp(family.replace("-", "_")), TEXTS)
            tok = AutoTokenizer.from_pretrained(folder)
            model = AutoModel.from_pretrained(folder).eval()
            cache[family] = (folder, tok, model)
        return cache[family]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_reload_offline(family, built):
    folder, tok, model = built(family)
    model_cls, pad_id, _, _ = EXPECTED[family]
    assert (folder / "tokenizer.json").is_file() and (folder / "config.json").is_file()
    assert tok.is_fast
    assert type(model).__name__ == model_cls
    assert tok.pad_token_id == model.config.pad_token_id == pad_id
    assert model.config.vocab_size == len(tok)
    assert model.config.hidden_size == 32
    assert model.config.num_hidden_layers == 2
    vocab = tok.get_vocab()
    for token, idx in EXPECTED_IDS.get(family, {}).items():
        assert vocab[token] == idx, (token, vocab[token])
    assert tok.unk_token_id is not None and tok.cls_token_id is not None and tok.sep_token_id is not None


@pytest.mark.parametrize("family", FAMILIES)
def test_special_token_layout(family, built):
    _, tok, _ = built(family)
    _, _, head, tail = EXPECTED[family]
    ids = tok(SHORT)["input_ids"]
    toks = tok.convert_ids_to_tokens(ids)
    assert tuple(toks[: len(head)]) == head, toks
    assert tuple(toks[len(toks) - len(tail):]) == tail, toks
    if family == "xlnet":
        assert ids[-1] == tok.cls_token_id and ids[-2] == tok.sep_token_id
    else:
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    # NB: transformers 5.x fast tokenizers no longer have build_inputs_with_special_tokens
    # (python tokenizers only); the layout lives in the backend's post-processor.
    plain = tok(SHORT, add_special_tokens=False)["input_ids"]
    assert ids[len(head): len(ids) - len(tail)] == plain
    assert tok.num_special_tokens_to_add() == len(head) + len(tail)
    assert sum(tok.get_special_tokens_mask(ids, already_has_special_tokens=True)) == len(head) + len(tail)
    # pairs: BERT-like "[CLS] A [SEP] B [SEP]", RoBERTa-like "<s> A </s></s> B </s>", XLNet "A <sep> B <sep> <cls>"
    pair = tok.convert_ids_to_tokens(tok(SHORT, "ok")["input_ids"])
    assert tok.num_special_tokens_to_add(pair=True) == PAIR_SPECIALS[family]
    assert len(pair) == len(plain) + len(tok("ok", add_special_tokens=False)["input_ids"]) + PAIR_SPECIALS[family]
    assert pair[-1] == (tok.cls_token if family == "xlnet" else tok.sep_token)


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer_roundtrip_and_chinese(family, built):
    _, tok, _ = built(family)
    fresh = make_tiny_tokenizer(family, TEXTS)  # before save_pretrained
    probes = TEXTS + [LONG, "Unseen words: zebra quantum " + UNSEEN_CJK]
    assert [fresh(t)["input_ids"] for t in probes] == [tok(t)["input_ids"] for t in probes]
    # a seen word is a single piece (not character soup); an unseen one still tokenizes
    pieces = [p.lstrip("▁Ġ#") for p in tok.tokenize("I loved it")]
    assert "loved" in pieces, pieces
    assert tok.unk_token_id not in tok("stable", add_special_tokens=False)["input_ids"]  # unseen word, seen chars
    # Chinese: every seen character is covered, no unk, short pieces
    zh = tok("我喜欢这本书", add_special_tokens=False)
    assert tok.unk_token_id not in zh["input_ids"]
    if family != "roberta":  # byte-level BPE splits CJK into byte pieces
        pieces = [p.lstrip("▁#") for p in tok.convert_ids_to_tokens(zh["input_ids"])]
        assert all(len(p) <= 2 for p in pieces), pieces
        # an unseen character is the unk token
        assert tok.unk_token_id in tok(UNSEEN_CJK, add_special_tokens=False)["input_ids"]
    else:
        assert UNSEEN_CJK in tok.decode(tok(UNSEEN_CJK)["input_ids"], skip_special_tokens=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_right_padded(family, built):
    _, tok, model = built(family)
    tok.padding_side = "right"  # xlnet's real default is "left"
    enc = tok([SHORT, LONG], padding=True, return_tensors="pt")
    n_short = int(enc["attention_mask"][0].sum())
    seq = enc["input_ids"].shape[1]
    assert n_short < seq and int(enc["attention_mask"][1].sum()) == seq
    assert (enc["input_ids"][0, n_short:] == tok.pad_token_id).all()
    with torch.no_grad():
        out = model(**enc).last_hidden_state
    assert out.shape == (2, seq, 32)
    assert torch.isfinite(out).all()


# Left padding only leaves the real tokens' outputs unchanged where position ids do not
# count the pads: RoBERTa/XLM-R (positions from non-pad tokens), DeBERTa-v3 (relative only),
# XLNet (relative).  BERT-style absolute positions (arange) shift under left padding.
_LEFT_PAD_OK = ("roberta", "xlm-roberta", "deberta-v2", "xlnet")


@pytest.mark.parametrize(
    "family,side", [(f, "right") for f in FAMILIES] + [(f, "left") for f in _LEFT_PAD_OK]
)
def test_padding_invariance(family, side, built):
    """The shorter text's hidden states on its real positions do not depend on padding."""
    _, tok, model = built(family)
    tok.padding_side = side
    alone = tok([SHORT], return_tensors="pt")
    batch = tok([SHORT, LONG], padding=True, return_tensors="pt")
    n = alone["input_ids"].shape[1]
    real = batch["attention_mask"][0].bool()
    assert int(real.sum()) == n
    assert torch.equal(batch["input_ids"][0][real], alone["input_ids"][0])
    with torch.no_grad():
        h_alone = model(**alone).last_hidden_state[0]
        h_batch = model(**batch).last_hidden_state[0][real]
    torch.testing.assert_close(h_batch, h_alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer_deterministic(family):
    a, b = make_tiny_tokenizer(family, TEXTS), make_tiny_tokenizer(family, TEXTS)
    assert a.get_vocab() == b.get_vocab()


def test_xlnet_keeps_real_left_padding_default(built):
    folder = built("xlnet")[0]
    assert AutoTokenizer.from_pretrained(folder).padding_side == "left"


def test_model_deterministic(tmp_path):
    sds = []
    for name in ("a", "b"):
        folder = make_tiny_model("xlm-roberta", tmp_path / name, TEXTS)
        sds.append(AutoModel.from_pretrained(folder).state_dict())
    assert sds[0].keys() == sds[1].keys()
    assert all(torch.equal(sds[0][k], sds[1][k]) for k in sds[0])


def test_unknown_family(tmp_path):
    with pytest.raises(ValueError, match="unknown family"):
        make_tiny_model("gpt2", tmp_path, TEXTS)
