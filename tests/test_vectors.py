"""Pretrained vectors: format detection, reading (all / wanted words), copying into an embedding, errors."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from textsift.errors import DataError, TextsiftError
from textsift.models.vectors import FORMATS, apply_vectors, detect_format, read_vectors, vectors_dim
from textsift.tokenizers.vocab import Vocab

TENCENT = Path(__file__).resolve().parents[1] / "../shared/pretrained/tencent-zh-char-200d/vectors.txt"


# ------------------------------------------------------------------------------------------ file writers

def write_text(path: Path, words, matrix, header: bool = True, bom: bool = False) -> Path:
    lines = [f"{len(words)} {matrix.shape[1]}"] if header else []
    lines += [w + " " + " ".join(repr(float(v)) for v in row) for w, row in zip(words, matrix)]
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def write_binary(path: Path, words, matrix, newline: bool = True, count: int | None = None) -> Path:
    out = [f"{len(words) if count is None else count} {matrix.shape[1]}\n".encode()]
    for w, row in zip(words, matrix):
        word = w if isinstance(w, bytes) else w.encode("utf-8")
        out.append(word + b" " + np.asarray(row, dtype="<f4").tobytes() + (b"\n" if newline else b""))
    path.write_bytes(b"".join(out))
    return path


def sample(n: int = 6, dim: int = 4, seed: int = 0):
    words = [f"w{i}" for i in range(n)]
    return words, np.random.default_rng(seed).normal(0, 0.5, (n, dim)).astype(np.float32)


WRITERS = {
    "word2vec_text": lambda p, w, m: write_text(p / "v.txt", w, m),
    "glove": lambda p, w, m: write_text(p / "v.txt", w, m, header=False),
    "word2vec_binary": lambda p, w, m: write_binary(p / "v.bin", w, m),
}


# ------------------------------------------------------------------------------------- reading

@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_detects_format_and_dim_and_round_trips(tmp_path, fmt):
    words, matrix = sample()
    path = WRITERS[fmt](tmp_path, words, matrix)
    assert detect_format(path) == fmt
    assert vectors_dim(path) == 4 and vectors_dim(path, fmt) == 4
    for asked in ("auto", fmt):
        vectors = read_vectors(path, asked)
        assert (vectors.words, vectors.dim, vectors.file_words, vectors.format) == (words, 4, 6, fmt)
        assert vectors.matrix.dtype == np.float32 and vectors.matrix.shape == (6, 4)
        if fmt == "word2vec_binary":
            assert np.array_equal(vectors.matrix, matrix)  # bit-exact
        else:
            np.testing.assert_allclose(vectors.matrix, matrix, rtol=1e-6)


def test_binary_without_newlines_and_text_with_bom_crlf_and_trailing_spaces(tmp_path):
    words, matrix = sample()
    binary = read_vectors(write_binary(tmp_path / "gensim.bin", words, matrix, newline=False))
    assert binary.words == words and np.array_equal(binary.matrix, matrix)
    for header in (True, False):
        path = write_text(tmp_path / f"bom{header}.txt", words, matrix, header=header, bom=True)
        path.write_bytes(path.read_bytes().replace(b"\n", b" \r\n"))
        vectors = read_vectors(path)
        assert vectors.words == words and vectors.dim == 4
        np.testing.assert_allclose(vectors.matrix, matrix, rtol=1e-6)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_wanted_keeps_only_those_words_in_file_order(tmp_path, fmt):
    words, matrix = sample(50)
    path = WRITERS[fmt](tmp_path, words, matrix)
    vectors = read_vectors(path, wanted={"w30", "w3", "absent", "w49"})
    assert vectors.words == ["w3", "w30", "w49"]
    assert vectors.file_words == 50
    np.testing.assert_allclose(vectors.matrix, matrix[[3, 30, 49]], rtol=1e-6)
    assert read_vectors(path, wanted=set()).matrix.shape == (0, 4)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("wanted", [None, {"a", "b"}])
def test_duplicated_word_keeps_first_vector(tmp_path, fmt, wanted):
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    vectors = read_vectors(WRITERS[fmt](tmp_path, ["a", "b", "a"], matrix), wanted=wanted)
    assert vectors.words == ["a", "b"] and vectors.file_words == 3
    assert np.array_equal(vectors.matrix, matrix[:2])


def test_glove_words_with_spaces(tmp_path):
    # GloVe 840B has words such as ". . ." and "at name@domain.com": the last D fields are the vector.
    path = tmp_path / "840b.txt"
    path.write_text(". . . 1 2 3\n, 4 5 6\nthe 7 8 9\nat name@domain.com 10 11 12\n", encoding="utf-8")
    assert vectors_dim(path) == 3  # from the most common field count, not from line 1
    vectors = read_vectors(path)
    assert vectors.words == [". . .", ",", "the", "at name@domain.com"]
    assert vectors.matrix[3].tolist() == [10, 11, 12]
    assert read_vectors(path, wanted={"at name@domain.com"}).matrix.tolist() == [[10, 11, 12]]


def test_binary_word_with_invalid_utf8_is_replaced_not_fatal(tmp_path):
    words, matrix = sample(3)
    path = write_binary(tmp_path / "v.bin", [b"ok", b"bad\xe6\x9c", "月"], matrix)
    assert read_vectors(path).words == ["ok", "bad\ufffd", "月"]
    assert read_vectors(path, wanted={"月"}).words == ["月"]


# ------------------------------------------------------------------------------------ apply_vectors

def test_apply_copies_found_rows_with_lowercase_fallback_and_reports_coverage(tmp_path):
    file_words = ["the", "cat", "paris", "sat", "<unk>"]
    matrix = np.arange(20, dtype=np.float32).reshape(5, 4) / 10
    path = write_text(tmp_path / "v.txt", file_words, matrix, header=False)
    vocab = Vocab(["<pad>", "<unk>", "the", "Paris", "dog", "cat", "Zebra"])
    weight = nn.Embedding(len(vocab) + 3, 4, padding_idx=0).weight  # 3 n-gram bucket rows
    pad_before = weight[0].detach().clone()
    counts = {"the": 10, "Paris": 3, "dog": 5, "cat": 2, "Zebra": 5, "rare": 1}

    report = apply_vectors(weight, vocab, path, token_counts=counts)

    w = weight.detach()
    assert torch.equal(w[0], pad_before)  # pad row untouched
    assert torch.equal(w[2], torch.from_numpy(matrix[0]))  # the
    assert torch.equal(w[3], torch.from_numpy(matrix[2]))  # Paris -> paris
    assert torch.equal(w[5], torch.from_numpy(matrix[1]))  # cat
    assert w.shape == (10, 4)
    assert report == {
        "path": str(path), "format": "glove", "dim": 4, "file_words": 5,
        "vocab_size": 5, "vocab_found": 3, "vocab_found_lowercase": 1, "vocab_coverage": 3 / 5,
        "init_std": pytest.approx(float(matrix[[0, 2, 1]].std())),
        "tokens": 26, "tokens_found": 15, "token_coverage": 15 / 26,
        "top_missing": [["dog", 5], ["Zebra", 5]],  # "rare" is not in the vocab; ties keep vocab order
    }

    weight2 = nn.Embedding(len(vocab), 4).weight
    report2 = apply_vectors(weight2, vocab, path, lowercase_fallback=False)
    assert report2["vocab_found"] == 2 and "tokens" not in report2
    assert not torch.equal(weight2.detach()[3], torch.from_numpy(matrix[2]))


def test_rows_without_vectors_are_redrawn_at_the_scale_of_the_found_ones(tmp_path):
    words = [f"t{i}" for i in range(2000)]
    found = np.random.default_rng(0).normal(0.0, 0.3, (1000, 16)).astype(np.float32)
    path = write_binary(tmp_path / "v.bin", words[:1000], found)
    vocab = Vocab(["<pad>", "<unk>"] + words)
    emb = nn.EmbeddingBag(len(vocab) + 500, 16, padding_idx=0, sparse=True)
    nn.init.normal_(emb.weight, 0.0, 5.0)  # far from the pretrained scale
    with torch.no_grad():
        emb.weight[0] = 0

    torch.manual_seed(1)
    report = apply_vectors(emb.weight, vocab, path)
    w = emb.weight.detach()
    assert report["vocab_found"] == 1000 and report["vocab_coverage"] == 0.5
    assert torch.equal(w[2:1002], torch.from_numpy(found))
    assert torch.all(w[0] == 0)
    std = report["init_std"]
    assert std == pytest.approx(0.3, rel=0.05)
    assert float(w[1002:2002].std()) == pytest.approx(std, rel=0.05)  # tokens not found
    assert float(w[2002:].std()) == pytest.approx(std, rel=0.05)  # n-gram buckets
    assert float(w[1].abs().max()) < 5 * std  # <unk> redrawn too

    again = nn.Embedding(len(vocab) + 500, 16).weight
    torch.manual_seed(1)
    apply_vectors(again, vocab, path)
    assert torch.equal(again.detach()[1:], w[1:])  # the run's seed controls the redraw


# ------------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("header", [True, False])
def test_line_with_wrong_number_of_fields_names_its_line(tmp_path, header):
    words, matrix = sample(5)
    path = write_text(tmp_path / "v.txt", words, matrix, header=header)
    lines = path.read_text().splitlines()
    lines[3] = "w2 0.5 0.25"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"v\.txt:4: expected a word and 4 numbers .* found 3 fields"):
        read_vectors(path, wanted={"w0"})


def test_non_number_in_a_kept_line_names_its_line(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("a 1 2\nb 3 x4\n")
    with pytest.raises(DataError, match=r"v\.txt:2: expected 2 numbers after the word 'b', found 'x4'"):
        read_vectors(path)


def test_truncated_binary_says_how_many_vectors_were_read(tmp_path):
    words, matrix = sample(3)
    path = write_binary(tmp_path / "v.bin", words, matrix)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"truncated: the header announces 3 vectors .* \(read 2 of 3\)"):
        read_vectors(path)


def test_header_count_that_does_not_match_the_text_file(tmp_path):
    words, matrix = sample(3)
    path = write_text(tmp_path / "v.txt", words, matrix)
    path.write_text(path.read_text().replace("3 4\n", "5 4\n", 1))
    with pytest.raises(DataError, match=r"announces 5 vectors but the file has 3.*'3 4'"):
        read_vectors(path)


def test_dimension_mismatch_says_how_to_fix_it(tmp_path):
    words, matrix = sample(3)
    path = write_text(tmp_path / "v.txt", words, matrix)
    vocab = Vocab(["<pad>", "<unk>"] + words)
    with pytest.raises(TextsiftError, match=r"dimension 4 but the model's embedding has 8; set "
                                            r"model.embedding_dim to 4, or omit it"):
        apply_vectors(nn.Embedding(len(vocab), 8).weight, vocab, path)


def test_missing_empty_and_unusable_files(tmp_path):
    with pytest.raises(TextsiftError, match="pretrained vectors file not found: .*nope.txt"):
        read_vectors(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(TextsiftError, match="empty.txt is empty"):
        detect_format(tmp_path / "empty.txt")
    with pytest.raises(TextsiftError, match="is a directory"):
        vectors_dim(tmp_path)
    with pytest.raises(TextsiftError, match=r"unknown vectors format 'fasttext'; expected one of"):
        read_vectors(tmp_path / "nope.txt", fmt="fasttext")
    (tmp_path / "gbk.txt").write_bytes("的 0.1 0.2\n".encode("gbk"))
    with pytest.raises(DataError, match=r"gbk.txt:1: not valid UTF-8.*iconv"):
        read_vectors(tmp_path / "gbk.txt")
    (tmp_path / "csv.txt").write_text("text,label\nhello,1\n")
    with pytest.raises(DataError, match=r"csv.txt:1: expected 'word v1 ... vD'"):
        read_vectors(tmp_path / "csv.txt")


def test_asked_format_must_match_the_file(tmp_path):
    words, matrix = sample(3)
    binary = write_binary(tmp_path / "v.bin", words, matrix)
    with pytest.raises(TextsiftError, match="'word2vec_text' was asked for but the file looks like 'word2vec_binary'"):
        read_vectors(binary, fmt="word2vec_text")
    with pytest.raises(DataError, match="'glove' was asked for but line 1 is a word2vec header"):
        read_vectors(binary, fmt="glove")
    glove = write_text(tmp_path / "g.txt", words, matrix, header=False)
    with pytest.raises(DataError, match="g.txt:1: format 'word2vec_binary': expected a header 'count dim'"):
        read_vectors(glove, fmt="word2vec_binary")
    assert set(FORMATS) == {"auto", "word2vec_text", "word2vec_binary", "glove", "hf"}


def test_no_vocab_token_in_the_file_is_an_error(tmp_path):
    words, matrix = sample(3)
    path = write_text(tmp_path / "v.txt", words, matrix)
    vocab = Vocab(["<pad>", "<unk>", "x", "y"])
    with pytest.raises(TextsiftError, match=r"none of the 2 vocab tokens .* \(3 words, e.g. \['w0', 'w1', 'w2'\]\)"):
        apply_vectors(nn.Embedding(4, 4).weight, vocab, path)


# -------------------------------------------------------------------------------------- real file

def test_real_tencent_char_vectors():
    if not TENCENT.is_file():
        pytest.skip(f"real vectors not found at {TENCENT.resolve()} (the shared pretrained folder is absent)")
    assert detect_format(TENCENT) == "word2vec_text" and vectors_dim(TENCENT) == 200
    vectors = read_vectors(TENCENT, wanted={"的", "中", "国", "not-a-char"})
    assert sorted(vectors.words) == sorted(["的", "中", "国"])
    assert vectors.matrix.shape == (3, 200) and vectors.file_words == 4759
    assert np.isfinite(vectors.matrix).all() and float(np.abs(vectors.matrix).max()) > 0


# ---------------------------------------------------------------- in training (model.vectors)
def _glove_for_topics(path, dim=6):
    from conftest import TOPICS

    rng = np.random.default_rng(0)
    words = [w for ws in TOPICS.values() for w in ws] + ["the", "unused"]
    lines = [w + " " + " ".join(f"{x:.4f}" for x in rng.normal(size=dim)) for w in words]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {w: np.array(line.split()[1:], dtype=np.float32) for w, line in zip(words, lines)}


def _vector_config(tmp_path, data, **model):
    import yaml
    from conftest import write_config

    cfg = write_config(tmp_path / "v.yaml", data, model_name="textcnn",
                       model={"kernel_sizes": [2, 3], "num_filters": 4, **model}, train={"epochs": 2})
    raw = yaml.safe_load(cfg.read_text())
    if "embedding_dim" not in model:
        raw["model"].pop("embedding_dim")  # taken from the vectors
    cfg.write_text(yaml.safe_dump(raw))
    return cfg


def test_frozen_vectors_are_the_trained_embedding(tmp_path, tiny_data):
    import json

    from safetensors.torch import load_file

    from textsift.config.load import load_config
    from textsift.engines.train_run import train_run
    from textsift.tokenizers import load_encoder

    vecs = _glove_for_topics(tmp_path / "g.txt")
    cfg = _vector_config(tmp_path, tiny_data, vectors=str(tmp_path / "g.txt"), freeze_embeddings=True)
    run = tmp_path / "run"
    train_run(load_config(str(cfg)), run)
    meta = json.loads((run / "model.json").read_text())
    assert meta["params"]["embedding_dim"] == 6
    cov = meta["vectors_coverage"]
    assert cov["format"] == "glove" and cov["vocab_found"] >= 24 and 0 < cov["token_coverage"] <= 1
    weight = load_file(str(run / "model.safetensors"))["embedding.weight"].numpy()
    vocab = load_encoder(run / "tokenizer.json").vocab
    for word in ("football", "stock", "robot"):
        np.testing.assert_allclose(weight[vocab.id(word)], vecs[word], rtol=0, atol=1e-6)  # frozen: unchanged


def test_vectors_errors(tmp_path, tiny_data):
    from textsift.config.load import load_config
    from textsift.engines.train_run import train_run

    _glove_for_topics(tmp_path / "g.txt")
    cfg = _vector_config(tmp_path, tiny_data, vectors=str(tmp_path / "g.txt"), embedding_dim=8)
    with pytest.raises(TextsiftError, match="does not match the 6-dimensional vectors"):
        train_run(load_config(str(cfg)), tmp_path / "r1")
    cfg = _vector_config(tmp_path, tiny_data, vectors=str(tmp_path / "g.txt"))
    with pytest.raises(TextsiftError, match="no token embedding layer"):
        train_run(load_config(str(cfg), ["model.name=tfidf_linear"]), tmp_path / "r2")


# ------------------------------------------------------------------ a pretrained encoder's input embeddings

@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A tiny BERT folder whose WordPiece vocab has whole words plus characters (unseen words split)."""
    from tests.hf_tiny import make_tiny_model

    return make_tiny_model("bert", tmp_path_factory.mktemp("bert"), ["good movie", "bad plot", "good acting"])


def _embedding_table(folder: Path, normalized: bool = False) -> torch.Tensor:
    from safetensors.torch import load_file

    weights = load_file(str(folder / "model.safetensors"))
    table = next(v for k, v in weights.items() if k.endswith("word_embeddings.weight"))
    if normalized:  # as BERT's first layer sees a piece: through the embedding LayerNorm
        w, b = (next(v for k, v in weights.items() if k.endswith(f"embeddings.LayerNorm.{n}")) for n in ("weight", "bias"))
        table = torch.nn.functional.layer_norm(table, (table.shape[1],), w, b, eps=1e-12)
    return table


def test_hf_folder_vectors_are_the_mean_of_word_piece_rows(tiny_bert):
    from transformers import AutoTokenizer

    tok, table = AutoTokenizer.from_pretrained(str(tiny_bert)), _embedding_table(tiny_bert, normalized=True)
    assert detect_format(tiny_bert) == "hf" and vectors_dim(tiny_bert) == table.shape[1] == 32
    v = read_vectors(tiny_bert, "auto", {"good", "gob", "\ue000"})
    assert v.format == "hf" and v.words == ["gob", "good"]  # the private-use character is all [UNK]: no vector
    good = tok("good", add_special_tokens=False)["input_ids"]
    gob = tok("gob", add_special_tokens=False)["input_ids"]
    assert len(good) == 1 and len(gob) == 3  # a whole word, and an unseen word cut into g ##o ##b
    np.testing.assert_allclose(v.matrix[1], table[good[0]].numpy(), rtol=1e-6)
    np.testing.assert_allclose(v.matrix[0], table[gob].mean(0).numpy(), rtol=1e-6)


def test_hf_run_directory_vectors_use_the_runs_fine_tuned_table(tiny_bert, tmp_path):
    """A textsift `hf` run (model.safetensors with an `encoder.` prefix + hf/ tokenizer): its own table (here
    without a LayerNorm, so the rows are used as they are)."""
    import shutil

    from safetensors.torch import save_file

    run = tmp_path / "teacher"
    shutil.copytree(tiny_bert, run / "hf", ignore=shutil.ignore_patterns("model.safetensors"))
    tuned = torch.randn_like(_embedding_table(tiny_bert))
    save_file({"encoder.embeddings.word_embeddings.weight": tuned, "head.weight": torch.zeros(2, 32)},
              str(run / "model.safetensors"))
    vocab = Vocab.build([["good", "plot", "zzz"]])
    emb = nn.Embedding(len(vocab), 32, padding_idx=vocab.pad_id)
    report = apply_vectors(emb.weight, vocab, run)
    # "z" was never seen: WordPiece makes the whole word [UNK], which is no vector
    assert report["format"] == "hf" and report["vocab_found"] == 2
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(str(run / "hf"))("plot", add_special_tokens=False)["input_ids"]
    torch.testing.assert_close(emb.weight[vocab.tokens.index("plot")], tuned[ids].mean(0))


def test_a_folder_that_is_no_encoder_is_a_clear_error(tmp_path):
    (tmp_path / "vectors.txt").write_text("a 1 2\n")
    with pytest.raises(TextsiftError, match=r"is a directory; expected a vectors file, e\.g\. .*vectors\.txt.*"
                                            r"pretrained encoder's folder"):
        vectors_dim(tmp_path)
    with pytest.raises(TextsiftError, match="'hf'.*not a folder"):
        vectors_dim(tmp_path / "vectors.txt", "hf")


def test_textcnn_trains_on_an_encoders_embeddings(tiny_bert, tiny_data, tmp_path):
    """model.vectors = an encoder folder: embedding_dim comes from it and the coverage is recorded."""
    import json

    from tests.conftest import write_config
    from textsift.cli.main import main

    cfg = write_config(tmp_path / "c.yaml", tiny_data, "textcnn", model={"vectors": str(tiny_bert), "num_filters": 8},
                       train={"epochs": 1})
    import yaml

    raw = yaml.safe_load(cfg.read_text())
    del raw["model"]["embedding_dim"]  # taken from the folder
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["vectors_coverage"]["format"] == "hf" and meta["vectors_coverage"]["dim"] == 32


# ------------------------------------------------------------------ vocabulary from the vectors (vectors_vocab)

@pytest.mark.parametrize("fmt", ["word2vec_text", "glove", "word2vec_binary"])
def test_vector_words_are_the_files_first_words(tmp_path, fmt):
    from textsift.models.vectors import vector_words

    words, matrix = sample(8)
    path = WRITERS[fmt](tmp_path, words, matrix)
    assert vector_words(path) == words
    assert vector_words(path, limit=3) == words[:3]


def test_vector_words_of_an_encoder_folder_are_its_word_start_entries(tiny_bert):
    from transformers import AutoTokenizer

    from textsift.models.vectors import vector_words

    words = vector_words(tiny_bert)
    vocab = AutoTokenizer.from_pretrained(str(tiny_bert)).get_vocab()
    assert {"good", "movie", "plot"} <= set(words)  # whole words of the WordPiece vocab
    assert not [w for w in words if w.startswith("##") or w.startswith("[")]  # no continuations, no specials
    assert all(w in vocab for w in words)
    assert [vocab[w] for w in words] == sorted(vocab[w] for w in words)  # id order
    assert vector_words(tiny_bert, limit=2) == words[:2]


def test_nearest_words_rank_by_cosine_among_frequent_and_own_words(tmp_path):
    from textsift.models.vectors import nearest_words

    words = ["good", "great", ",", "fine", "bad", "awful", "meh"]
    matrix = np.array([[1, 0, 0], [0.9, 0.1, 0], [1, 0, 0], [0.5, 0.5, 0], [-1, 0, 0], [-0.9, -0.1, 0],
                       [0.1, 0, 1]], dtype=np.float32)
    path = write_text(tmp_path / "v.txt", words, matrix, header=False)
    near = nearest_words(path, {"good", "Good", "bad", ",", "unseen"}, k=2, candidates=100)
    assert near["good"] == ["great", "fine"]  # ordered by cosine; "," shares good's vector but is no word
    assert near["Good"] == ["great", "fine"]  # looked up lowercased, never replaced by "good" itself
    assert near["bad"] == ["awful", "meh"]
    assert set(near) == {"good", "Good", "bad"}  # no vector, no punctuation
    # replacements come from the first `candidates` words of the file only
    near = nearest_words(path, {"bad", "meh"}, k=2, candidates=2)
    assert near["bad"] == ["great", "good"] and near["meh"] == ["good", "great"]


def test_nearest_words_of_an_encoder_folder_use_its_embeddings(tiny_bert):
    from textsift.models.vectors import nearest_words, read_vectors

    near = nearest_words(tiny_bert, {"good", "movie", "goodmovie"}, k=3, candidates=50)
    assert "goodmovie" in read_vectors(tiny_bert, wanted={"goodmovie"}).words  # it has a vector (its pieces'
    assert "goodmovie" not in near  # mean), but a mean of pieces is no word's vector: no neighbours
    table = read_vectors(tiny_bert, wanted={"good", *near["good"]})
    vec = dict(zip(table.words, torch.nn.functional.normalize(torch.from_numpy(table.matrix), dim=1)))
    sims = [float(vec["good"] @ vec[w]) for w in near["good"]]
    assert len(near["good"]) == 3 and "good" not in near["good"] and sims == sorted(sims, reverse=True)


def test_extra_words_join_the_vocab_after_the_training_tokens():
    from textsift.config.schema import TokenizerConfig
    from textsift.tokenizers.encoder import TextEncoder

    cfg = TokenizerConfig(name="word", max_size=2)
    enc = TextEncoder.fit(cfg, ["b a a", "c b a"], ["Zebra", "a", "two words", "zebra", "yak"])
    # training tokens first (capped by max_size), then new one-token words, lowercased like the text, once each
    assert enc.vocab.tokens == ["<pad>", "<unk>", "a", "b", "zebra", "yak"]
    assert enc.encode("a zebra yak c", 10) == [2, 4, 5, enc.unk_id]


def test_vectors_vocab_gives_unseen_words_their_pretrained_vectors(tmp_path, tiny_data):
    import json

    from safetensors.torch import load_file

    from textsift.config.load import ConfigError, load_config
    from textsift.engines.train_run import train_run
    from textsift.tokenizers import load_encoder

    vecs = _glove_for_topics(tmp_path / "g.txt")  # ends with "the", "unused": never in the training texts
    cfg = _vector_config(tmp_path, tiny_data, vectors=str(tmp_path / "g.txt"), freeze_embeddings=True)
    train_run(load_config(str(cfg)), tmp_path / "plain")
    assert "unused" not in load_encoder(tmp_path / "plain" / "tokenizer.json").vocab.tokens
    train_run(load_config(str(cfg), ["model.vectors_vocab=1000"]), tmp_path / "run")
    encoder = load_encoder(tmp_path / "run" / "tokenizer.json")
    unused = encoder.vocab.id("unused")
    assert unused != encoder.unk_id and encoder.encode("unused", 4) == [unused]
    weight = load_file(str(tmp_path / "run" / "model.safetensors"))["embedding.weight"].numpy()
    np.testing.assert_allclose(weight[unused], vecs["unused"], rtol=0, atol=1e-6)
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["vectors_coverage"]["vocab_found"] == len(vecs)  # every word of the file is in the vocab now
    with pytest.raises(ConfigError, match="vectors_vocab: 5 words of which vectors"):
        train_run(load_config(str(cfg), ["model.vectors=null", "model.vectors_vocab=5"]), tmp_path / "bad")
