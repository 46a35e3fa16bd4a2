"""Tokenizers, vocab and text encoder: behaviour that models, training and saved files rely on."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from textsift.config.schema import TokenizerConfig
from textsift.errors import TextsiftError
from textsift.registry import TOKENIZERS
from textsift.tokenizers import TextEncoder, Vocab, build_tokenizer, fnv1a_32


def tok(text, **cfg):
    return build_tokenizer(TokenizerConfig(**cfg)).tokenize(text)


# --- char tokenizer -------------------------------------------------------------------------------

def test_char_mixed_chinese_latin_digits_punctuation_emoji():
    assert tok("iPhone15发布了！👍 ok_go 3.5%") == [
        "iphone15", "发", "布", "了", "!", "👍", "ok", "_", "go", "3", ".", "5", "%"]


def test_char_every_cjk_script_is_one_token_per_character():
    # CJK ext A, ext B, compatibility ideograph (kept as is without NFKC), katakana, Hangul.
    text = "a㐀𠀀\uf900テスト한국b"
    assert tok(text, normalize="none") == ["a", "㐀", "𠀀", "\uf900", "テ", "ス", "ト", "한", "국", "b"]


def test_char_drops_whitespace_and_invisible_characters():
    # zero-width space splits a run; the variation selector of "❤️" is dropped so it equals "❤".
    assert tok("ab\u200bcd \t\n❤\ufe0f\u3000中") == ["ab", "cd", "❤", "中"]
    assert tok("") == [] and tok(" \n ") == []


def test_nfkc_folds_full_width_forms():
    assert tok("ＡＢＣ１２３，！") == ["abc123", ",", "!"]
    assert tok("ＡＢＣ１２３，！", normalize="none") == ["ａｂｃ１２３", "，", "！"]


def test_lowercase_option():
    assert tok("iPhone XS") == ["iphone", "xs"]
    assert tok("iPhone XS", lowercase=False) == ["iPhone", "XS"]


def test_non_string_text_is_a_clear_error():
    with pytest.raises(TextsiftError, match="expected a text string, got NoneType"):
        tok(None)


# --- word tokenizer -------------------------------------------------------------------------------

def test_word_english_contractions_hyphens_numbers_punctuation():
    assert tok("I don't like it's state-of-the-art, can’t you? 5.93 (155,221)", name="word") == [
        "i", "do", "n't", "like", "it", "'s", "state-of-the-art", ",", "ca", "n't", "you", "?",
        "5.93", "(", "155,221", ")"]


def test_word_raw_and_ptb_pretokenized_text_agree():
    # SST/MR ship "wo n't" and "it 's"; raw text must map to the same tokens.
    assert tok("won't it's you'll", name="word") == tok("wo n't it 's you 'll", name="word")
    assert tok("'hotel' o'clock", name="word") == ["'", "hotel", "'", "o'clock"]


def test_word_chinese_is_segmented_into_words_by_jieba():
    tokens = tok("我爱北京天安门", name="word")
    assert "北京" in tokens or "天安门" in tokens
    assert "".join(tokens) == "我爱北京天安门"
    assert tok("我爱Python编程！", name="word")[-2:] == ["编程", "!"]
    assert "python" in tok("我爱Python编程！", name="word")


# --- registry -------------------------------------------------------------------------------------

def test_registered_names():
    assert {"char", "word"} <= set(TOKENIZERS.names())


def test_unknown_tokenizer_name_suggests_the_closest():
    with pytest.raises(TextsiftError, match=r"tokenizer\.name: 'chr' is not a tokenizer; did you mean 'char'\?"):
        build_tokenizer(TokenizerConfig(name="chr"))


# --- vocab ----------------------------------------------------------------------------------------

def test_vocab_specials_order_and_lookup():
    v = Vocab.build([["b", "a", "b"], ["c", "a", "b"]])
    assert v.tokens == ["<pad>", "<unk>", "b", "a", "c"]
    assert (v.pad_id, v.unk_id) == (0, 1) and len(v) == 5
    assert v.id("a") == 3 and v.id("zzz") == v.unk_id and v.token(3) == "a"
    assert "a" in v and "zzz" not in v
    with pytest.raises(IndexError, match="out of range"):
        v.token(5)


def test_vocab_min_freq_and_max_size_exclude_specials():
    lists = [["x", "y", "y", "z", "z", "z"], ["w"]]
    assert Vocab.build(lists, min_freq=2).tokens[2:] == ["z", "y"]
    assert Vocab.build(lists, max_size=2).tokens == ["<pad>", "<unk>", "z", "y"]


def test_vocab_ties_break_by_first_appearance_and_specials_in_data_are_not_duplicated():
    a = Vocab.build([["q", "p", "<unk>", "r"], ["<pad>", "p", "q"]])
    b = Vocab.build([["q", "p", "<unk>", "r"], ["<pad>", "p", "q"]])
    assert a.tokens == ["<pad>", "<unk>", "q", "p", "r"] and a == b


def test_vocab_dict_round_trip_and_validation():
    v = Vocab.build([["中", "文", "中"]])
    assert Vocab.from_dict(json.loads(json.dumps(v.to_dict()))) == v
    with pytest.raises(TextsiftError, match=r"expected the first tokens to be \['<pad>', '<unk>'\]"):
        Vocab.from_dict({"tokens": ["a", "<pad>", "<unk>"]})
    with pytest.raises(TextsiftError, match="duplicates"):
        Vocab.from_dict({"tokens": ["<pad>", "<unk>", "a", "a"]})
    with pytest.raises(TextsiftError, match="expected"):
        Vocab.from_dict({"words": []})


# --- encoder --------------------------------------------------------------------------------------

TEXTS = ["北京天安门", "上海外滩很美", "北京欢迎你 hello world"]


def test_fit_uses_min_freq_and_max_size_from_config():
    enc = TextEncoder.fit(TokenizerConfig(min_freq=2), TEXTS)
    assert enc.vocab.tokens == ["<pad>", "<unk>", "北", "京"]
    assert len(TextEncoder.fit(TokenizerConfig(max_size=3), TEXTS).vocab) == 5


def test_encode_truncates_keeping_the_head_and_maps_unknowns_to_unk():
    enc = TextEncoder.fit(TokenizerConfig(), TEXTS)
    v = enc.vocab
    assert enc.encode("北京天安门", max_length=3) == [v.id("北"), v.id("京"), v.id("天")]
    assert enc.encode("北京😀 zzz", max_length=10) == [v.id("北"), v.id("京"), v.unk_id, v.unk_id]
    assert enc.encode("", 5) == [v.unk_id] and enc.encode(" \u200b ", 5) == [v.unk_id]
    assert enc.encode_batch(["北京", "门"], 5) == [[v.id("北"), v.id("京")], [v.id("门")]]
    assert enc.vocab_size == len(v) and enc.pad_id == 0


def test_ngram_ids_follow_unigrams_and_stay_in_range():
    cfg = TokenizerConfig(ngrams=3, ngram_buckets=50)
    enc = TextEncoder.fit(cfg, TEXTS)
    ids = enc.encode("上海外滩很美", max_length=4)  # 4 kept tokens → 4 unigrams + 3 bigrams + 2 trigrams
    assert len(ids) == 9
    assert ids[:4] == enc.vocab.ids(list("上海外滩"))
    assert all(len(enc.vocab) <= i < enc.vocab_size for i in ids[4:])
    assert enc.vocab_size == len(enc.vocab) + 50
    assert enc.encode("美", max_length=4) == [enc.vocab.id("美")]  # one token: no n-grams


def test_ngrams_of_unknown_tokens_are_still_distinguished():
    enc = TextEncoder.fit(TokenizerConfig(name="word", ngrams=2), ["hello world"])
    a, b = enc.encode("foo bar", 8), enc.encode("baz qux", 8)
    assert a[:2] == b[:2] == [enc.unk_id, enc.unk_id] and a[2] != b[2]


def test_hash_is_pinned():
    # Changing these silently invalidates every saved model trained with n-grams.
    assert fnv1a_32("") == 0x811C9DC5 and fnv1a_32("a") == 0xE40C292C  # FNV-1a reference vectors
    enc = TextEncoder.fit(TokenizerConfig(ngrams=3, ngram_buckets=1000), ["北京天安门"])
    assert enc.encode("北京天安门", 10) == [2, 3, 4, 5, 6, 111, 157, 389, 621, 670, 274, 92]


def test_ngram_ids_are_the_same_in_another_process_with_another_hash_seed():
    code = (
        "import json\n"
        "from textsift.config.schema import TokenizerConfig\n"
        "from textsift.tokenizers import TextEncoder\n"
        f"enc = TextEncoder.fit(TokenizerConfig(ngrams=2, ngram_buckets=997), {TEXTS!r})\n"
        f"print(json.dumps(enc.encode_batch({TEXTS!r}, 16)))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    enc = TextEncoder.fit(TokenizerConfig(ngrams=2, ngram_buckets=997), TEXTS)
    assert json.loads(out.stdout) == enc.encode_batch(TEXTS, 16)


def test_save_load_round_trip_gives_identical_encodings(tmp_path):
    cfg = TokenizerConfig(name="word", lowercase=False, ngrams=2, ngram_buckets=100)
    enc = TextEncoder.fit(cfg, TEXTS + ["Don't STOP"])
    path = tmp_path / "encoder.json"
    enc.save(path)
    raw = path.read_text(encoding="utf-8")
    assert "北京" in raw  # UTF-8, not \\u escapes
    loaded = TextEncoder.load(path)
    assert loaded.cfg == cfg and loaded.vocab == enc.vocab and loaded.vocab_size == enc.vocab_size
    probe = TEXTS + ["Don't stop 北京", "", "新词"]
    assert loaded.encode_batch(probe, 6) == enc.encode_batch(probe, 6)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(TextsiftError, match="encoder file not found"):
        TextEncoder.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"tokens": []}', encoding="utf-8")
    with pytest.raises(TextsiftError, match=r"bad\.json: expected a text encoder file"):
        TextEncoder.load(bad)
    enc = TextEncoder.fit(TokenizerConfig(), TEXTS)
    d = enc.to_dict()
    d["tokenizer"]["ngrams"] = 0
    bad.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(TextsiftError, match="invalid tokenizer config"):
        TextEncoder.load(bad)


def test_coverage():
    enc = TextEncoder.fit(TokenizerConfig(), ["北京 北京 上海"])
    cov = enc.coverage(["北京 广州", "广州"])  # tokens 北 京 广 州 广 州
    assert cov["tokens"] == 6 and cov["types"] == 4
    assert cov["token_coverage"] == pytest.approx(2 / 6) and cov["type_coverage"] == pytest.approx(2 / 4)
    assert cov["top_unknown"] == [("广", 2), ("州", 2)]
    assert enc.coverage([])["token_coverage"] == 1.0


def test_char_split_runs_and_keep_spaces():
    from textsift.config.schema import TokenizerConfig
    from textsift.tokenizers import build_tokenizer

    text = "iPhone15发布了  新款 ok"
    plain = build_tokenizer(TokenizerConfig(name="char")).tokenize(text)
    assert plain == ["iphone15", "发", "布", "了", "新", "款", "ok"]
    runs = build_tokenizer(TokenizerConfig(name="char", split_runs=True)).tokenize(text)
    assert runs[:8] == list("iphone15") and "ok" not in runs and runs[-2:] == ["o", "k"]
    spaced = build_tokenizer(TokenizerConfig(name="char", keep_spaces=True)).tokenize("  a b  c ")
    assert spaced == ["a", "\u2581", "b", "\u2581", "c"]  # one marker per run, none at the ends


# --- word features of the char tokenizer (word_ngrams) and the word token_pattern ----------------

def test_char_word_ngrams_add_jieba_words_and_word_bigrams_after_the_char_ngrams():
    from textsift.tokenizers.encoder import WORD_SALT

    text = "北京烤鸭很好吃"
    words = tok(text, name="word")
    assert words == ["北京烤鸭", "很", "好吃"]  # jieba's segmentation
    chars_only = TextEncoder.fit(TokenizerConfig(ngrams=2, ngram_buckets=10007), [text])
    both = TextEncoder.fit(TokenizerConfig(ngrams=2, word_ngrams=2, ngram_buckets=10007), [text])
    ids = both.encode(text, 64)
    # 7 characters + 6 character bigrams, unchanged, then 3 words + 2 word bigrams
    assert ids[:13] == chars_only.encode(text, 64) and len(ids) == 13 + 3 + 2
    mult, mask, offset = 116049371, (1 << 64) - 1, len(both.vocab)
    uni = [(WORD_SALT * mult + fnv1a_32(w)) & mask for w in words]
    bi = [(h * mult + fnv1a_32(w)) & mask for h, w in zip(uni, words[1:])]
    assert ids[13:] == [offset + h % 10007 for h in uni + bi]
    # a one-character word is not the character unigram, a two-word bigram not the character bigram
    assert both.encode("很好", 64)[-1] not in both.encode("很好", 64)[:3]
    assert both.vocab_size == len(both.vocab) + 10007  # word features use the buckets even when ngrams=1
    assert TextEncoder.fit(TokenizerConfig(word_ngrams=1, ngram_buckets=50), [text]).vocab_size == 7 + 2 + 50


def test_token_hash_cache_stays_bounded_for_word_features_alone(monkeypatch):
    import textsift.tokenizers.encoder as encoder

    monkeypatch.setattr(encoder, "_HASH_CACHE_LIMIT", 5)
    enc = TextEncoder.fit(TokenizerConfig(word_ngrams=1, ngram_buckets=1000), ["x"])   # ngrams=1: no char n-grams
    first = enc.encode("alpha beta gamma", 64)
    for i in range(20):
        enc.encode(f"word{i} other{i}", 64)
        assert len(enc._hashes) <= 5 + 2   # cleared once past the limit, then this text's words
    assert enc.encode("alpha beta gamma", 64) == first   # a refilled cache gives the same ids


def test_word_ngrams_follow_the_normalisation_and_truncation_of_the_text():
    enc = TextEncoder.fit(TokenizerConfig(word_ngrams=1, ngram_buckets=1000), ["ＡＢＣ 北京"])
    assert enc.encode("ＡＢＣ 北京", 64) == enc.encode("abc 北京", 64)  # NFKC + lowercase, as the characters
    assert len(enc.encode("abc 北京 上海", 2)) == 2 + 2  # 2 tokens kept, and at most 2 words


def test_word_token_pattern_matches_scikit_learn_and_drops_punctuation():
    from sklearn.feature_extraction.text import TfidfVectorizer

    text = "I don't like state-of-the-art C++ (v2.0), 5.93% & a_b... OK?!"
    sk = TfidfVectorizer().build_analyzer()
    assert tok(text, name="word", token_pattern=r"(?u)\b\w\w+\b") == sk(text)
    assert tok(text, name="word", token_pattern=r"(?u)\b\w\w+\b") == ["don", "like", "state", "of", "the", "art",
                                                                       "v2", "93", "a_b", "ok"]
    assert "(" in tok(text, name="word") and "i" in tok(text, name="word")  # the default keeps them
    assert tok("(ab)", name="word", token_pattern=r"\((\w+)\)") == ["(ab)"]  # the whole match, not the group
    assert tok("我爱北京天安门 ok", name="word", token_pattern=r"\w+") == ["我", "爱", "北京", "天安门", "ok"]


@pytest.mark.parametrize("settings, message", [
    ({"name": "word", "token_pattern": "(a"}, "expected a Python regular expression, found '(a'"),
    ({"name": "word", "token_pattern": "\\w*"}, "matches the empty string"),
    ({"name": "char", "token_pattern": "\\w+"}, "token_pattern is an option of the `word` tokenizer"),
    ({"name": "word", "word_ngrams": 2}, "word_ngrams adds word n-grams to the `char` tokenizer"),
    ({"name": "char", "word_ngrams": 6}, "less than or equal to 5"),
])
def test_bad_token_pattern_and_word_ngrams_are_clear_config_errors(settings, message):
    from textsift.config import validate
    from textsift.errors import ConfigError

    with pytest.raises(ConfigError, match="tokenizer") as err:
        validate({"data": {"train": "x.jsonl"}, "model": {"name": "tfidf_linear"}, "tokenizer": settings})
    assert message in str(err.value)


def test_new_tokenizer_settings_are_saved_and_reloaded(tmp_path):
    for cfg, texts in ((TokenizerConfig(ngrams=3, word_ngrams=2, ngram_buckets=997), TEXTS),
                       (TokenizerConfig(name="word", token_pattern=r"\b\w\w+\b"), ["Don't stop, a b cd!"])):
        enc = TextEncoder.fit(cfg, texts)
        enc.save(tmp_path / "enc.json")
        loaded = TextEncoder.load(tmp_path / "enc.json")
        assert loaded.cfg == cfg
        assert loaded.encode_batch(texts + ["新词 x yz"], 16) == enc.encode_batch(texts + ["新词 x yz"], 16)
