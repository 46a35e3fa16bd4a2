"""Unlabelled movie-review sentences for distilling sst2_sentence's students (``distill.transfer_data``).

Writes one text per line: SST-2's GLUE training phrases (what ``benchmarks/distill.py`` already uses), then
``--n`` sentences cut from IMDB's training reviews. IMDB is another site than SST's Rotten Tomatoes, so the
two share no texts, and IMDB's labels are never read. Cutting: HTML line breaks dropped, a split after
``.``, ``!`` or ``?`` followed by a capital, a quote or a bracket, sentences of 4-50 words, case-insensitive
duplicates dropped, shuffled with ``--seed``. Regexes rather than a sentence splitter (nltk, spaCy):
for unlabelled transfer text a few badly cut sentences cost nothing, and the dependency would.

    .venv/bin/python benchmarks/transfer_sentences.py --n 50000 --out runs/glue+imdb50k.txt
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import default_data_dir  # noqa: E402

_BREAK = re.compile(r"<br\s*/?>")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def review_sentences(path: Path) -> list[str]:
    """Every distinct sentence of 4-50 words in a JSON Lines file of reviews, in file order."""
    seen: set[str] = set()
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            for sentence in _SPLIT.split(_BREAK.sub(" ", json.loads(line)["text"])):
                sentence = " ".join(sentence.split())
                if 4 <= len(sentence.split()) <= 50 and sentence.lower() not in seen:
                    seen.add(sentence.lower())
                    out.append(sentence)
    return out


def write_transfer(data: Path, out: Path, n: int, seed: int = 0, phrases: bool = True) -> str:
    """Write the transfer file (the GLUE phrases unless ``phrases`` is False, then ``n`` shuffled IMDB
    sentences) to ``out``; returns a one-line summary. Raises FileNotFoundError naming a missing dataset."""
    sources = [data / "imdb" / "train.jsonl"] + ([data / "sst2_glue" / "train.jsonl"] if phrases else [])
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not found; point --data-dir or $TEXTSIFT_DATA at the datasets")
    sentences = review_sentences(sources[0])
    random.Random(seed).shuffle(sentences)
    lines = [json.loads(line)["text"].replace("\n", " ") for line in sources[1].open(encoding="utf-8")] \
        if phrases else []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")   # never a half-written file under the final name
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in lines + sentences[:n])
    tmp.replace(out)
    return f"{len(lines)} phrases + {min(n, len(sentences))} of {len(sentences)} IMDB sentences"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=50000, help="IMDB sentences to add (default 50000)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    p.add_argument("--no-phrases", action="store_true", help="IMDB sentences only, without the GLUE phrases")
    p.add_argument("--data-dir", type=Path, default=None, help="default: $TEXTSIFT_DATA, else ../shared/datasets")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        summary = write_transfer(args.data_dir or default_data_dir(), args.out, args.n, args.seed, not args.no_phrases)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
