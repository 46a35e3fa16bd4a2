"""Pretrained word vectors: read word2vec (text or binary) and GloVe files, copy them into an embedding.

The three formats are simple enough that a hand-written parser (plain Python + numpy) is shorter than an
optional dependency on gensim, and it can do what gensim cannot: parse the numbers of only the words the
vocabulary wants, so reading a 400k-word GloVe file for a 20k-token vocab takes about a second.

Formats:
    ``word2vec_text``   first line ``"N D"``, then ``"word v1 ... vD"`` lines.
    ``glove``           no header, ``"word v1 ... vD"`` lines. The last D fields are the vector and the
                        rest is the word, so words containing spaces (GloVe 840B) work.
    ``word2vec_binary`` ASCII header ``"N D\\n"``, then per word: UTF-8 bytes up to a space, D
                        little-endian float32, optionally a ``"\\n"``.
    ``hf``              a folder, not a file: a pretrained encoder's input (word-piece) embeddings, e.g. a
                        distillation teacher's. A word's vector is the mean of the embedding rows of the pieces
                        the folder's own tokenizer cuts it into. The folder is a Hugging Face model folder
                        (config.json, model.safetensors, tokenizer files) or a textsift run directory of an
                        ``hf`` model (model.safetensors + hf/ with the tokenizer), whose fine-tuned embeddings
                        are then used.
"""
from __future__ import annotations

import mmap
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping, Optional, Union

import numpy as np
import torch

from textsift.errors import DataError, TextsiftError

__all__ = ["FORMATS", "Vectors", "apply_vectors", "detect_format", "nearest_words", "read_vectors", "vector_words",
           "vectors_dim"]

FORMATS = ("auto", "word2vec_text", "word2vec_binary", "glove", "hf")
PathLike = Union[str, "os.PathLike[str]"]

_BOM = b"\xef\xbb\xbf"
_HEAD_BYTES = 1 << 18  # enough for ~20 lines of 300-d text vectors
_SNIFF_LINES = 20
_MAX_WORD_BYTES = 4096
_BLOCK_ROWS = 4096  # a binary "word" longer than this means the header dimension is wrong


@dataclass
class Vectors:
    """Word vectors read from a file (possibly only the wanted words)."""

    words: list[str]
    matrix: np.ndarray  # (len(words), dim) float32; row i is the vector of words[i]
    dim: int
    file_words: int  # number of vectors in the whole file, duplicates included
    format: str


@dataclass
class _Layout:
    """Where the vectors start in a file and how they are stored."""

    format: str
    dim: int
    count: Optional[int]  # from the word2vec header; None for GloVe
    body_offset: int  # byte offset of the first vector (after BOM and header)
    first_line: int  # line number of the first vector (text formats)


def detect_format(path: PathLike) -> str:
    """The format of a vectors file, from its first bytes.

    A first line of two integers is a word2vec header; the file is ``word2vec_text`` when the next line
    decodes as ``"word v1 ... vD"`` text and ``word2vec_binary`` otherwise. Without a header it is ``glove``.

    Raises:
        TextsiftError: the file is missing, a directory or empty; DataError when it is not a vectors file.
    """
    return _sniff(path, "auto").format


def vectors_dim(path: PathLike, fmt: str = "auto") -> int:
    """The vector dimension D, reading only the start of the file.

    Raises:
        TextsiftError / DataError: as ``detect_format``.
    """
    return _sniff(path, fmt).dim


def read_vectors(path: PathLike, fmt: str = "auto", wanted: Optional[Collection[str]] = None) -> Vectors:
    """Read vectors; when ``wanted`` is given keep only those words.

    Numbers are parsed only for kept words, so reading 400k GloVe lines for a 20k vocab is fast. Every
    line's field count is still checked; with ``wanted``, a non-numeric value on a line that is not kept
    goes unnoticed. A word listed twice keeps its first vector.

    Args:
        path: a word2vec text/binary or GloVe file.
        fmt: one of ``FORMATS``; ``"auto"`` detects it.
        wanted: words to keep, or ``None`` for all.

    Returns:
        ``Vectors`` with the kept words in file order.

    Raises:
        TextsiftError: missing or empty file, unknown ``fmt``.
        DataError: a line with the wrong number of fields or a non-number (with its line), a truncated
            binary file, a header count that does not match the file, non-finite values.
    """
    layout = _sniff(path, fmt)
    if layout.format == "hf":
        return _read_hf(Path(path), wanted)
    wanted_b = None if wanted is None else {w.encode("utf-8") for w in wanted}
    read = _read_binary if layout.format == "word2vec_binary" else _read_text
    words, matrix, where, n = read(str(path), layout, wanted_b)
    if layout.count is not None and n != layout.count:
        raise DataError(f"the header on line 1 announces {layout.count} vectors but the file has {n}; the file "
                        f"is truncated or the header is wrong (it should read '{n} {layout.dim}')", str(path))
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        k = int(bad[0])
        raise DataError(f"the vector of {words[k]!r} contains nan or inf; fix or remove it",
                        str(path), where[k] if layout.format != "word2vec_binary" else None)
    return Vectors(words=words, matrix=matrix, dim=layout.dim, file_words=n, format=layout.format)


def apply_vectors(weight: torch.Tensor, vocab, path: PathLike, fmt: str = "auto",
                  token_counts: Optional[Mapping[str, int]] = None, lowercase_fallback: bool = True) -> dict:
    """Copy pretrained vectors into the rows of ``weight`` of the vocab tokens found in the file.

    Matching is exact first, then (``lowercase_fallback``) on the lowercased token. The ``<pad>`` row is
    left as it is. Every other row without a vector (``<unk>``, tokens not found, n-gram bucket rows past
    ``len(vocab)``) is re-drawn from normal(0, std), std being that of the found vectors, so all rows
    share one scale; the draw uses the global torch RNG, so the run's seed controls it.

    Args:
        weight: embedding weight, shape ``(rows >= len(vocab), dim)``; modified in place under no_grad.
        vocab: a ``Vocab`` (``tokens``, ``pad_id``, ``unk_id``).
        path: the vectors file; ``fmt`` as in ``read_vectors``.
        token_counts: running counts of tokens in the training data, for token coverage.
        lowercase_fallback: also look up the lowercased token when the token itself is missing.

    Returns:
        A JSON-ready coverage report: path, format, dim, file_words, vocab_size (without pad/unk),
        vocab_found, vocab_found_lowercase, vocab_coverage, init_std, and with ``token_counts``:
        tokens, tokens_found, token_coverage, top_missing (``[token, count]`` of the 10 most frequent
        vocab tokens without a vector). Tokens outside the vocab count as not found in ``tokens_found``.

    Raises:
        TextsiftError: ``weight`` has the wrong shape or dimension, or no vocab token is in the file.
    """
    if weight.dim() != 2 or weight.shape[0] < len(vocab):
        raise TextsiftError(f"pretrained vectors: expected an embedding weight of shape (>= {len(vocab)}, dim), "
                            f"found {tuple(weight.shape)}")
    dim = weight.shape[1]
    file_dim = vectors_dim(path, fmt)  # checked before reading the whole file
    if file_dim != dim:
        raise TextsiftError(f"pretrained vectors {path} have dimension {file_dim} but the model's embedding has "
                            f"{dim}; set model.embedding_dim to {file_dim}, or omit it to take it from the file")
    specials = {vocab.pad_id, vocab.unk_id}
    tokens = [(i, t) for i, t in enumerate(vocab.tokens) if i not in specials]
    wanted = {t for _, t in tokens} | ({t.lower() for _, t in tokens} if lowercase_fallback else set())
    vectors = read_vectors(path, fmt, wanted)

    index = {w: k for k, w in enumerate(vectors.words)}
    rows, sources, missing, n_lower = [], [], [], 0
    for i, token in tokens:
        k = index.get(token)
        if k is None and lowercase_fallback:
            k = index.get(token.lower())
            n_lower += k is not None
        if k is None:
            missing.append(i)
        else:
            rows.append(i)
            sources.append(k)
    if not rows:
        raise TextsiftError(f"pretrained vectors: none of the {len(tokens)} vocab tokens (e.g. "
                            f"{[t for _, t in tokens[:5]]}) is in {path} ({vectors.file_words} words, e.g. "
                            f"{_first_words(path, fmt)}); use vectors that match the tokenizer's language, "
                            f"case and segmentation")

    found = vectors.matrix[sources]  # (found, dim)
    std = float(found.std())
    redraw = [vocab.unk_id] + missing + list(range(len(vocab), weight.shape[0]))
    with torch.no_grad():
        weight[torch.tensor(rows)] = torch.from_numpy(found).to(weight.dtype).to(weight.device)
        # Drawn on the CPU from the global RNG, so the values do not depend on the device.
        weight[torch.tensor(redraw)] = (torch.randn(len(redraw), dim) * std).to(weight.dtype).to(weight.device)

    report = {"path": str(path), "format": vectors.format, "dim": dim, "file_words": vectors.file_words,
              "vocab_size": len(tokens), "vocab_found": len(rows), "vocab_found_lowercase": n_lower,
              "vocab_coverage": len(rows) / len(tokens), "init_std": std}
    if token_counts is not None:
        report.update(_token_coverage(token_counts, set(vocab.tokens[i] for i in rows),
                                      [vocab.tokens[i] for i in missing]))
    return report


def _token_coverage(token_counts: Mapping[str, int], found: set[str], missing: list[str]) -> dict:
    """Running-token coverage; ``missing`` in vocab order, so equal counts keep that order."""
    counts = {t: int(c) for t, c in token_counts.items() if t not in ("<pad>", "<unk>")}
    total = sum(counts.values())
    hit = sum(c for t, c in counts.items() if t in found)
    ranked = sorted(((t, counts.get(t, 0)) for t in missing), key=lambda tc: -tc[1])
    return {"tokens": total, "tokens_found": hit, "token_coverage": hit / total if total else 0.0,
            "top_missing": [[t, c] for t, c in ranked if c > 0][:10]}


# ---------------------------------------------------------------------------------------------- sniffing

def _sniff(path: PathLike, fmt: str) -> _Layout:
    """Format, dimension, header count and start of the vectors, from the first bytes of the file."""
    if fmt not in FORMATS:
        raise TextsiftError(f"unknown vectors format {fmt!r}; expected one of {list(FORMATS)}")
    if Path(path).is_dir() and fmt in ("auto", "hf"):
        _, weights, key = _hf_layout(Path(path))
        from safetensors import safe_open

        with safe_open(str(weights), "np") as f:
            shape = f.get_slice(key).get_shape()
        return _Layout("hf", int(shape[1]), int(shape[0]), 0, 0)
    if fmt == "hf":
        raise TextsiftError(f"vectors_format 'hf': {path} is not a folder; expected a Hugging Face model folder "
                            "or a textsift run directory of an `hf` model")
    head = _read_head(path)
    bom = len(_BOM) if head.startswith(_BOM) else 0
    lines = head[bom:].split(b"\n")
    if os.path.getsize(path) > len(head):
        lines = lines[:-1]  # the last piece may be cut in the middle of a line
    header = lines[0].split()
    is_header = len(header) == 2 and all(f.isdigit() for f in header)
    if fmt == "glove" or (fmt == "auto" and not is_header):
        return _sniff_glove(str(path), lines, bom, is_header)
    if not is_header:
        raise DataError(f"format {fmt!r}: expected a header 'count dim' on line 1, found "
                        f"{_show(lines[0])}; use fmt='glove' (no header) or fmt='auto'", str(path), 1)
    count, dim = int(header[0]), int(header[1])
    if dim < 1:
        raise DataError(f"the header announces dimension {dim}; expected 'count dim' with dim >= 1", str(path), 1)
    body_offset = bom + len(lines[0]) + 1
    text_dim = _text_dim(lines[1]) if len(lines) > 1 else None
    found = "word2vec_text" if text_dim is not None or count == 0 else "word2vec_binary"
    if fmt != "auto" and fmt != found:
        raise TextsiftError(f"{path}: format {fmt!r} was asked for but the file looks like {found!r}; "
                            f"use fmt='auto' or fmt={found!r}")
    if found == "word2vec_text" and text_dim not in (None, dim):
        raise DataError(f"the header on line 1 says dimension {dim} but this line has {text_dim} numbers; "
                        f"fix the header to '{count} {text_dim}'", str(path), 2)
    if found == "word2vec_text":
        _check_utf8(str(path), lines[1:_SNIFF_LINES], first_line=2)
    return _Layout(found, dim, count, body_offset, 2)


def _sniff_glove(path: str, lines: list[bytes], bom: int, is_header: bool) -> _Layout:
    if is_header:
        raise DataError(f"format 'glove' was asked for but line 1 is a word2vec header {_show(lines[0])}; "
                        f"use fmt='auto'", path, 1)
    if lines[0].strip() == b"":
        raise DataError("expected 'word v1 ... vD' on line 1, found a blank line; remove it", path, 1)
    lines = lines[:_SNIFF_LINES]
    _check_utf8(path, lines, first_line=1)
    # The most common field count, so that a first word containing spaces does not set the dimension.
    dim = Counter(len(ln.split()) for ln in lines if ln.strip()).most_common(1)[0][0] - 1
    fields = lines[0].rsplit(None, dim)
    if dim < 1 or len(fields) != dim + 1 or not _all_floats(fields[1:]):
        raise DataError(f"expected 'word v1 ... vD' (GloVe) or a 'count dim' header (word2vec), found "
                        f"{_show(lines[0])}", path, 1)
    return _Layout("glove", dim, None, bom, 1)


def _check_utf8(path: str, lines: list[bytes], first_line: int) -> None:
    for lineno, line in enumerate(lines, first_line):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"not valid UTF-8 ({err.reason} at byte {err.start}); re-encode the file, e.g. "
                            f"'iconv -f GBK -t UTF-8 in.txt > out.txt'", path, lineno) from None


def _read_head(path: PathLike) -> bytes:
    p = Path(path)
    if p.is_dir():
        inside = sorted(q.name for q in p.iterdir() if q.suffix in (".txt", ".bin", ".vec"))
        raise TextsiftError(f"pretrained vectors: {path} is a directory; expected a vectors file"
                            + (f", e.g. {p / inside[0]}" if inside else ""))
    if not p.is_file():
        raise TextsiftError(f"pretrained vectors file not found: {path} (resolved from {Path.cwd()}); expected a "
                            f"word2vec (.txt/.bin) or GloVe file: check the path")
    with open(p, "rb") as f:
        head = f.read(_HEAD_BYTES)
    if not head.strip(b" \t\r\n" + _BOM):
        raise TextsiftError(f"pretrained vectors file {path} is empty; expected word2vec or GloVe vectors "
                            f"(was the download interrupted?)")
    return head


def _text_dim(line: bytes) -> Optional[int]:
    """How many numbers follow the word when ``line`` is a ``"word v1 ... vD"`` text line, else None.

    Not decoded on purpose: a GBK text file is still text (and gets a clear UTF-8 error), not binary.
    """
    fields = line.split()
    return len(fields) - 1 if len(fields) >= 2 and _all_floats(fields[1:]) else None


def _all_floats(fields) -> bool:
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True


def _show(line: bytes, limit: int = 60) -> str:
    text = line.decode("utf-8", "replace").rstrip()
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def _first_words(path: PathLike, fmt: str, n: int = 5) -> list[str]:
    layout = _sniff(path, fmt)
    if layout.format == "hf":
        return []
    read = _read_binary if layout.format == "word2vec_binary" else _read_text
    return read(str(path), layout, None, limit=n)[0]


# ----------------------------------------------------------------------------------------------- reading

def _first_time(word: bytes, wanted: Optional[set[bytes]], seen: set) -> Optional[str]:
    """The word as text when it is wanted and not seen before (duplicates keep the first vector), else None."""
    if wanted is not None:
        if word not in wanted or word in seen:
            return None
        seen.add(word)
        return word.decode("utf-8")
    key = word.decode("utf-8", "replace")
    if key in seen:
        return None
    seen.add(key)
    return key


def _read_text(path: str, layout: _Layout, wanted: Optional[set[bytes]], limit: Optional[int] = None):
    """word2vec text and GloVe lines. Returns (words, matrix, line numbers, vectors in file).

    ``limit`` stops after that many kept words (the count of vectors is then partial).
    """
    dim, source = layout.dim, ("given by the header on line 1" if layout.count is not None
                               else "found on the first lines")
    words, where, seen, n = [], [], set(), 0
    # Rows go to float32 blocks as they fill: 400k lists of Python floats would take ~20x the memory.
    blocks, rows = [], []
    with open(path, "rb") as f:
        f.seek(layout.body_offset)
        for lineno, raw in enumerate(f, layout.first_line):
            line = raw.rstrip()
            if not line:
                continue
            n += 1
            if line.count(b" ") == dim:  # fast path: single spaces, no space in the word
                sp = line.index(b" ")
                word, values = line[:sp], None
            else:
                fields = line.rsplit(None, dim)
                if len(fields) != dim + 1:
                    raise DataError(f"expected a word and {dim} numbers (the dimension {source}), found "
                                    f"{len(line.split())} fields; fix or remove this line", path, lineno)
                word, values = fields[0], fields[1:]
            key = _first_time(word, wanted, seen)
            if key is None:
                continue
            if values is None:
                values = line[sp + 1:].split(b" ")
            try:
                rows.append([float(v) for v in values])
            except ValueError:
                bad = next(v for v in values if not _all_floats([v]))
                raise DataError(f"expected {dim} numbers after the word {key!r}, found {_show(bad)}; fix or "
                                f"remove this line", path, lineno) from None
            words.append(key)
            where.append(lineno)
            if len(rows) == _BLOCK_ROWS:
                blocks.append(np.array(rows, dtype=np.float32))
                rows = []
            if limit is not None and len(words) >= limit:
                break
    blocks.append(np.array(rows, dtype=np.float32).reshape(len(rows), dim))
    return words, np.concatenate(blocks), where, n


def _read_binary(path: str, layout: _Layout, wanted: Optional[set[bytes]], limit: Optional[int] = None):
    """word2vec binary records. Returns (words, matrix, record numbers, vectors in file); ``limit`` as
    in ``_read_text``."""
    dim, count = layout.dim, layout.count
    nbytes = 4 * dim
    capacity = count if wanted is None else min(count, len(wanted))
    matrix = np.empty((capacity, dim), dtype=np.float32)
    words, where, seen = [], [], set()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        size, pos = len(mm), layout.body_offset
        for i in range(count):
            # The word2vec C tool ends each vector with "\n", gensim with nothing: skip line breaks.
            while pos < size and mm[pos] in (10, 13):
                pos += 1
            sp = mm.find(b" ", pos, pos + _MAX_WORD_BYTES)
            if sp < 0 and size - pos >= _MAX_WORD_BYTES:
                raise DataError(f"vector {i + 1}: no space ending a word within {_MAX_WORD_BYTES} bytes; the "
                                f"header's dimension {dim} is probably wrong, or this is not a word2vec binary "
                                f"file", path)
            if sp < 0 or sp + 1 + nbytes > size:
                raise DataError(f"truncated: the header announces {count} vectors but the file ends after {i} "
                                f"(read {i} of {count}); download or write the file again", path)
            word, pos = mm[pos:sp], sp + 1 + nbytes
            key = _first_time(word, wanted, seen)
            if key is None:
                continue
            matrix[len(words)] = np.frombuffer(mm, dtype="<f4", count=dim, offset=sp + 1)
            words.append(key)
            where.append(i + 1)
            if limit is not None and len(words) >= limit:
                break
    return words, matrix[:len(words)].copy(), where, count


# ----------------------------------------------------------------------- a pretrained encoder's embeddings

_EMBEDDING_KEYS = ("word_embeddings.weight", "embed_tokens.weight", "wte.weight", "shared.weight")


def _hf_layout(folder: Path) -> tuple[Path, Path, str]:
    """(tokenizer folder, safetensors file, input-embedding key) of an HF model folder or textsift hf run."""
    if (folder / "hf").is_dir() and (folder / "model.safetensors").is_file():
        tok_dir, weights = folder / "hf", folder / "model.safetensors"  # a textsift run of an `hf` model
    elif (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        tok_dir, weights = folder, folder / "model.safetensors"
    else:
        inside = sorted(q.name for q in folder.iterdir() if q.suffix in (".txt", ".bin", ".vec"))
        raise TextsiftError(f"pretrained vectors: {folder} is a directory; expected a vectors file"
                            + (f", e.g. {folder / inside[0]}" if inside else "")
                            + ", or a pretrained encoder's folder (config.json + model.safetensors + tokenizer) "
                              "or a textsift run directory of an `hf` model (model.safetensors + hf/)")
    from safetensors import safe_open

    with safe_open(str(weights), "np") as f:
        keys = [k for k in f.keys() if k.endswith(_EMBEDDING_KEYS) and len(f.get_slice(k).get_shape()) == 2]
    if not keys:
        raise TextsiftError(f"pretrained vectors: {weights} has no input-embedding matrix (a tensor named "
                            f"*{' / *'.join(_EMBEDDING_KEYS)}); expected the weights of a pretrained encoder")
    return tok_dir, weights, sorted(keys, key=len)[0]


def vector_words(path: PathLike, fmt: str = "auto", limit: Optional[int] = None) -> list[str]:
    """The words a vectors source has vectors for, in its own order, at most ``limit`` of them.

    word2vec and GloVe files list words most frequent first, so their first words are the common ones. For an
    ``hf`` folder: the tokenizer's word-start entries in id order (no continuation pieces, special tokens,
    ``[unused]`` slots or pure punctuation).
    """
    layout = _sniff(path, fmt)
    if layout.format == "hf":
        from textsift.tokenizers.hf import load_hf_tokenizer

        tok = load_hf_tokenizer(_hf_layout(Path(path))[0], "model.vectors")
        specials = set(getattr(tok, "all_special_tokens", []))
        pieces = [p for p, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1]) if p not in specials]
        # where a word starts: SentencePiece marks it with U+2581, byte-level BPE with U+0120; WordPiece marks
        # the continuations instead (##)
        start = next((m for m in ("\u2581", "\u0120") if sum(p.startswith(m) for p in pieces) > len(pieces) // 10),
                     None)
        words = []
        for piece in pieces:
            if start is not None:
                if not piece.startswith(start):
                    continue
                piece = piece[len(start):]
            elif piece.startswith("##"):
                continue
            if not any(c.isalnum() for c in piece) or (piece.startswith("[") and piece.endswith("]")):
                continue
            words.append(piece)
            if limit is not None and len(words) >= limit:
                break
        return words
    read = _read_binary if layout.format == "word2vec_binary" else _read_text
    return list(read(str(path), layout, None, limit=limit)[0])


def nearest_words(path: PathLike, words: Collection[str], k: int, candidates: int,
                  fmt: str = "auto") -> dict[str, list[str]]:
    """Each of ``words`` -> its ``k`` nearest other words by cosine similarity of their vectors (the
    replacement pool of TinyBERT-style augmentation).

    Replacements come from the first ``candidates`` words of the source alone (``vector_words``: a file's
    frequent words, an encoder's whole-word pieces; in an encoder's table a word cut into pieces is the mean
    of its pieces' rows, and such means sit next to anything sharing a piece: "good" beside "good-bad").
    For the same reason an encoder only gives neighbours to its whole words ("unfunny", cut by MiniLM's
    WordPiece into "un" + "##fu" + "##nn" + "##y", gets none). Only words with a letter or digit take part,
    a word never replaces itself or a case variant of itself, and a word without a vector (looked up as
    given, then lowercased) is left out of the result. Written here because the libraries that do this
    (gensim, faiss) would be a dependency for one matrix product and a top-k.

    Raises:
        TextsiftError / DataError: as ``read_vectors``.
    """
    words = sorted({w for w in words if any(c.isalnum() for c in w)})
    if _sniff(path, fmt).format == "hf":
        whole = vector_words(path, fmt)  # the whole-word pieces, read once: the pool and the words that ask
        pool, known = whole[:candidates], set(whole)
        words = [w for w in words if w in known or w.lower() in known]
    else:
        pool = vector_words(path, fmt, candidates)
    pool = [w for w in pool if any(c.isalnum() for c in w)]
    found = read_vectors(path, fmt, wanted={*pool, *words, *(w.lower() for w in words)})
    row = {w: i for i, w in enumerate(found.words)}
    pool_words = sorted({w for w in pool if w in row})
    if not pool_words:
        return {}
    queries = [(w, row.get(w, row.get(w.lower()))) for w in words]
    queries = [(w, i) for w, i in queries if i is not None]
    table = torch.nn.functional.normalize(torch.from_numpy(found.matrix), dim=1)
    keys = table[[row[w] for w in pool_words]]
    lowered = [w.lower() for w in pool_words]
    take = min(k + 4, len(pool_words))  # a few spare for the word's own case variants
    out: dict[str, list[str]] = {}
    for start in range(0, len(queries), 1024):  # chunks keep the similarity block to 1024 x pool floats
        chunk = queries[start:start + 1024]
        scores = table[[i for _, i in chunk]] @ keys.T
        for (word, _), top in zip(chunk, scores.topk(take, dim=1).indices.tolist()):
            near = [pool_words[j] for j in top if lowered[j] != word.lower()][:k]
            if near:
                out[word] = near
    return out


def _read_hf(folder: Path, wanted: Optional[Collection[str]]) -> Vectors:
    """Vectors of ``wanted`` words (all of the tokenizer's own vocabulary when None): the mean of the
    input-embedding rows of the word pieces the encoder's tokenizer cuts each word into. Words made only of
    unknown pieces have no vector."""
    from safetensors import safe_open

    from textsift.tokenizers.hf import load_hf_tokenizer

    tok_dir, weights, key = _hf_layout(folder)
    tok = load_hf_tokenizer(tok_dir, "model.vectors")
    with safe_open(str(weights), "pt") as f:
        table = f.get_tensor(key).float()  # (pieces, dim)
        norm = key.rsplit(".", 2)[0] + ".LayerNorm."  # BERT-style encoders normalise their embeddings
        if norm + "weight" in f.keys() and norm + "bias" in f.keys():
            # rows as the first layer sees them (position and segment embeddings left out): raw rows are
            # tiny (std ~0.05) next to what a classic model's learning rate moves them by each step
            table = torch.nn.functional.layer_norm(table, table.shape[-1:], f.get_tensor(norm + "weight").float(),
                                                   f.get_tensor(norm + "bias").float(), eps=1e-12)
    words = sorted(wanted) if wanted is not None else sorted(tok.get_vocab())
    unk = getattr(tok, "unk_token_id", None)
    kept, rows = [], []
    pieces = tok(words, add_special_tokens=False)["input_ids"] if words else []
    for word, ids in zip(words, pieces):
        ids = [i for i in ids if i != unk and i < table.shape[0]]
        if ids:
            kept.append(word)
            rows.append(table[ids].mean(0))
    matrix = torch.stack(rows).numpy() if rows else np.zeros((0, table.shape[1]), np.float32)
    return Vectors(words=kept, matrix=matrix.astype(np.float32), dim=int(table.shape[1]),
                   file_words=int(table.shape[0]), format="hf")
