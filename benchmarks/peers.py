"""The two classic peers, each run in its own child process by ``classic.py``.

    .venv/bin/python benchmarks/peers.py fasttext thucnews_title
    .venv/bin/python benchmarks/peers.py svm goemotions --data-dir /work/shared/datasets

Prints exactly one JSON line on stdout (metrics, train/tune/predict seconds, the recipe used);
progress goes to stderr. Train on train, tune lightly on dev when there is a test split to report
on, evaluate on test (or on dev when there is no test). Reading the JSONL files is not timed;
tokenising and vectorising are (they are part of what each system costs).

Timings:
    train_s    fitting the chosen configuration once (tokenise/vectorise + fit)
    tune_s     everything else spent choosing it (other C values, the multi-label threshold)
    predict_s  tokenise/vectorise + predict on the evaluation split
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import (Splits, all_classes, default_data_dir, detect_language, find_splits,  # noqa: E402
                        is_multi_label, read_jsonl, score, tokenize)

# fastText recipe per language, chosen on the dev splits of thucnews_title (zh) and clinc150/sst2 (en).
# wordNgrams=2 means character bigrams for Chinese and word bigrams for English.
FASTTEXT_RECIPE = {
    "zh": dict(lr=0.5, epoch=10, wordNgrams=2, dim=100, minCount=1),
    "en": dict(lr=1.0, epoch=25, wordNgrams=2, dim=100, minCount=1),
}
SVM_CS = (0.1, 0.3, 1.0, 3.0)
THRESHOLDS_PROB = [round(0.05 * i, 2) for i in range(1, 20)]    # fastText ova sigmoid outputs
THRESHOLDS_MARGIN = [round(0.1 * i, 1) for i in range(-8, 6)]   # LinearSVC decision values


class Data:
    """The splits of one dataset in memory; train is shuffled (seeded) because several files are
    sorted by label (20newsgroups, imdb, clinc150), which ruins fastText's single-pass SGD."""

    def __init__(self, splits: Splits, seed: int):
        self.splits = splits
        texts, labels = read_jsonl(splits.train)
        order = list(range(len(texts)))
        random.Random(seed).shuffle(order)
        self.train_x, self.train_y = [texts[i] for i in order], [labels[i] for i in order]
        self.tune_x, self.tune_y = read_jsonl(splits.tune) if splits.tune else (None, None)
        self.eval_x, self.eval_y = read_jsonl(splits.eval)
        self.lang = detect_language(self.train_x)
        self.multi = is_multi_label(self.train_y)
        self.classes = all_classes(self.train_y, self.eval_y, self.tune_y or [])

    def describe(self) -> dict:
        return {"dataset": self.splits.name, "lang": self.lang,
                "task": "multi_label" if self.multi else "single_label",
                "eval_split": self.splits.eval_split, "tuned_on_dev": self.splits.tune is not None,
                "n_train": len(self.train_x), "n_eval": len(self.eval_x)}


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- multi-label decoding

def decode_multi(scores, classes: list[str], threshold: float) -> list[list[str]]:
    """Labels whose score passes ``threshold``; the top-scoring label when none does (every
    GoEmotions example has at least one label, so an empty prediction is always wrong)."""
    import numpy as np

    out = []
    for row in np.asarray(scores):
        picked = [classes[j] for j in np.flatnonzero(row >= threshold)]
        out.append(picked or [classes[int(row.argmax())]])
    return out


def pick_threshold(scores, gold: list, classes: list[str], grid: list[float]) -> tuple[float, float]:
    """The threshold of ``grid`` with the best dev micro-F1 (the benchmark's primary multi-label metric)."""
    best = max(grid, key=lambda t: (score(gold, decode_multi(scores, classes, t), classes)["micro_f1"], -abs(t)))
    return best, score(gold, decode_multi(scores, classes, best), classes)["micro_f1"]


# ---------------------------------------------------------------- fastText

FT_PREFIX = "__label__"


def ft_line(text: str, lang: str) -> str:
    return " ".join(tokenize(text, lang))


def ft_label(label: str) -> str:
    return FT_PREFIX + "_".join(label.split())   # fastText labels are whitespace-free tokens


def ft_scores(model, texts: list[str], lang: str, classes: list[str]):
    """(n, n_classes) probabilities for every class (k=-1), in ``classes`` order.

    Calls the single-line C++ ``predict`` on purpose: in fasttext-wheel 0.9.2 the list form
    ``model.predict([...], k)`` returns the right labels but repeats the top probability for all k
    of them, and the Python single-line wrapper fails under NumPy 2 (``np.array(copy=False)``).
    """
    import numpy as np

    col = {ft_label(c): j for j, c in enumerate(classes)}
    out = np.zeros((len(texts), len(classes)), dtype=np.float32)
    for i, text in enumerate(texts):
        for p, lab in model.f.predict(ft_line(text, lang) + "\n", -1, 0.0, "strict"):
            if lab in col:
                out[i, col[lab]] = p
    return out


def ft_train(data: Data, recipe: dict):
    """Write the shuffled train split in fastText's format and train; returns (model, seconds)."""
    import fasttext

    with tempfile.TemporaryDirectory(prefix="bench-fasttext-") as tmp:
        t0 = time.perf_counter()
        path = os.path.join(tmp, "train.txt")
        with open(path, "w", encoding="utf-8") as f:
            for text, y in zip(data.train_x, data.train_y):
                labels = " ".join(ft_label(lab) for lab in (y if data.multi else [y]))
                f.write(f"{labels} {ft_line(text, data.lang)}\n")
        model = fasttext.train_supervised(input=path, **recipe)
        return model, time.perf_counter() - t0


def run_fasttext(data: Data, threads: int, seed: int) -> dict:
    recipe = dict(FASTTEXT_RECIPE[data.lang], thread=threads, seed=seed, verbose=0)
    if data.multi:
        recipe["loss"] = "ova"
    model, train_s = ft_train(data, recipe)
    log(f"fasttext trained in {train_s:.1f}s")

    t0 = time.perf_counter()
    tune_scores = ft_scores(model, data.tune_x, data.lang, data.classes) if data.multi and data.tune_x else None
    tune_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if data.multi:
        eval_out = ft_scores(model, data.eval_x, data.lang, data.classes)
    else:   # the list form's labels are right (only its probabilities are not, see ft_scores)
        unmap = {ft_label(c): c for c in data.classes}
        labels, _ = model.predict([ft_line(t, data.lang) for t in data.eval_x], k=1)
        eval_out = [unmap.get(labs[0], labs[0][len(FT_PREFIX):]) for labs in labels]
    predict_s = time.perf_counter() - t0
    # Free the model (about 0.8 GB with the default 2M n-gram buckets) before scikit-learn is
    # imported for scoring, so the scorer never adds to fastText's peak memory.
    del model
    gc.collect()

    chosen, pred = {}, eval_out
    if data.multi:
        t0 = time.perf_counter()
        threshold = 0.5
        if tune_scores is not None:
            threshold, dev_f1 = pick_threshold(tune_scores, data.tune_y, data.classes, THRESHOLDS_PROB)
            chosen["dev_micro_f1"] = round(dev_f1, 4)
        chosen["threshold"] = threshold
        pred = decode_multi(eval_out, data.classes, threshold)
        tune_s += time.perf_counter() - t0
    recipe_s = ", ".join(f"{k}={v}" for k, v in recipe.items() if k not in ("verbose", "seed"))
    return {"system": "fasttext", "recipe": f"fasttext.train_supervised({recipe_s})", "chosen": chosen,
            "metrics": score(data.eval_y, pred, data.classes),
            "train_s": train_s, "tune_s": tune_s, "predict_s": predict_s}


# ---------------------------------------------------------------- TF-IDF + LinearSVC

def svm_vectorizers(lang: str, tune: bool) -> dict:
    """Candidate TF-IDF settings: char 1-3-grams for Chinese; word 1-2-grams for English, plus
    char_wb 2-5-grams as a second candidate when there is a dev split to choose on."""
    if lang == "zh":
        return {"char 1-3": dict(analyzer="char", ngram_range=(1, 3))}
    cands = {"word 1-2": dict(analyzer="word", ngram_range=(1, 2))}
    if tune:
        cands["char_wb 2-5"] = dict(analyzer="char_wb", ngram_range=(2, 5))
    return cands


def svm_fit(X, y, C: float, multi: bool):
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    svc = LinearSVC(C=C, random_state=0)
    return (OneVsRestClassifier(svc) if multi else svc).fit(X, y)


def svm_dev_score(model, X_dev, data: Data) -> tuple[float, float]:
    """(threshold, dev score): accuracy, or micro-F1 at the best global decision threshold."""
    if data.multi:
        return pick_threshold(model.decision_function(X_dev), data.tune_y, data.classes, THRESHOLDS_MARGIN)
    return 0.0, score(data.tune_y, list(model.predict(X_dev)), data.classes)["accuracy"]


def svm_search(data: Data, y) -> dict:
    """Fit every candidate (analyzer x C, or the defaults without dev) and keep the best on dev."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    tune, best = data.tune_x is not None, None
    for name, params in svm_vectorizers(data.lang, tune).items():
        t0 = time.perf_counter()
        vec = TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **params)
        X = vec.fit_transform(data.train_x)
        vec_s = time.perf_counter() - t0
        X_dev = vec.transform(data.tune_x) if tune else None
        for C in (SVM_CS if tune else (1.0,)):
            t0 = time.perf_counter()
            model = svm_fit(X, y, C, data.multi)
            fit_s = time.perf_counter() - t0
            threshold, dev = svm_dev_score(model, X_dev, data) if tune else (0.0, None)
            log(f"svm {name} C={C}: {X.shape[1]} features, fit {fit_s:.1f}s, dev {dev}")
            if best is None or (dev is not None and dev > best["dev"]):
                best = dict(dev=dev, name=name, C=C, threshold=threshold, vec=vec, model=model,
                            train_s=vec_s + fit_s)
        del X, X_dev
        gc.collect()
    return best


def run_svm(data: Data) -> dict:
    from sklearn.preprocessing import MultiLabelBinarizer

    start = time.perf_counter()
    mlb = MultiLabelBinarizer(classes=data.classes) if data.multi else None
    best = svm_search(data, mlb.fit_transform(data.train_y) if data.multi else data.train_y)
    tune_s = time.perf_counter() - start - best["train_s"] if data.tune_x is not None else 0.0

    t0 = time.perf_counter()
    X_eval = best["vec"].transform(data.eval_x)
    if data.multi:
        pred = decode_multi(best["model"].decision_function(X_eval), data.classes, best["threshold"])
    else:
        pred = list(best["model"].predict(X_eval))
    predict_s = time.perf_counter() - t0

    chosen = {"features": best["name"], "C": best["C"], "n_features": len(best["vec"].vocabulary_)}
    if data.multi:
        chosen["threshold"] = best["threshold"]
    if best["dev"] is not None:
        chosen["dev_" + ("micro_f1" if data.multi else "accuracy")] = round(best["dev"], 4)
    head = "OneVsRestClassifier(LinearSVC)" if data.multi else "LinearSVC"
    return {"system": "tfidf_svm", "recipe": f"TfidfVectorizer({best['name']}, sublinear_tf) + {head}",
            "chosen": chosen, "metrics": score(data.eval_y, pred, data.classes),
            "train_s": best["train_s"], "tune_s": tune_s, "predict_s": predict_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("system", choices=["fasttext", "svm"])
    parser.add_argument("dataset")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $TEXTSIFT_DATA or ../shared/datasets")
    parser.add_argument("--threads", type=int, default=2, help="fastText threads (LinearSVC is single-threaded)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = Data(find_splits(args.data_dir or default_data_dir(), args.dataset), args.seed)
    log(f"{args.system} on {args.dataset}: {data.describe()}")
    result = run_fasttext(data, args.threads, args.seed) if args.system == "fasttext" else run_svm(data)
    print(json.dumps({**data.describe(), **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
