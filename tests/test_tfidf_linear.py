"""tfidf_linear: torch features equal scikit-learn's TF-IDF, and liblinear fits transfer exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from conftest import make_texts
from textsift.engines.batching import pad_batch
from textsift.models import build_model


def _encode(texts):
    vocab = {"<pad>": 0}
    for t in texts:
        for w in t.split():
            vocab.setdefault(w, len(vocab))
    return [[vocab[w] for w in t.split()] for t in texts], vocab


def test_features_equal_sklearn_tfidf():
    texts = ["a b a c", "b b d", "c a", "d d d a e"]
    ids, vocab = _encode(texts)
    model = build_model("tfidf_linear", {}, len(vocab), 2)
    model.fit_data(ids, torch.tensor([0, 1, 0, 1]), multi_label=False)
    x, mask = pad_batch(ids, 0)
    sorted_ids, w = model.features(x, mask)
    ours = np.zeros((len(texts), len(vocab)))
    for row in range(len(texts)):
        for i, weight in zip(sorted_ids[row].tolist(), w[row].tolist()):
            ours[row, i] += weight
    vec = TfidfVectorizer(token_pattern=r"\S+", sublinear_tf=True, vocabulary={k: v - 1 for k, v in vocab.items() if k != "<pad>"})
    ref = vec.fit_transform(texts).toarray()
    assert np.all(ours[:, 0] == 0)  # the pad id carries no weight
    np.testing.assert_allclose(ours[:, 1:], ref, atol=1e-6)


@pytest.mark.parametrize("n_labels", [2, 3])
def test_liblinear_fit_transfers_to_torch_logits(n_labels):
    rows = [r for r in make_texts(150, seed=4) if n_labels == 3 or r["label"] != "tech"]
    texts = [r["text"] for r in rows]
    names = sorted({r["label"] for r in rows})
    y = torch.tensor([names.index(r["label"]) for r in rows])
    ids, vocab = _encode(texts)
    model = build_model("tfidf_linear", {"C": 1.0}, len(vocab), len(names))
    assert model.fit_data(ids, y, multi_label=False) is True
    x, mask = pad_batch(ids, 0)
    with torch.no_grad():
        pred = model(x, mask).logits.argmax(-1).numpy()
    vec = TfidfVectorizer(token_pattern=r"\S+", sublinear_tf=True,
                          vocabulary={k: v - 1 for k, v in vocab.items() if k != "<pad>"})
    ref = LinearSVC(C=1.0, random_state=0, max_iter=2000).fit(vec.fit_transform(texts), y.numpy())
    np.testing.assert_array_equal(pred, ref.predict(vec.transform(texts)))


def test_sgd_solver_leaves_training_to_the_trainer():
    ids = [[1, 2], [2, 3]]
    model = build_model("tfidf_linear", {"solver": "sgd"}, 4, 2)
    assert model.fit_data(ids, torch.tensor([0, 1]), multi_label=False) is False
    assert model.idf[1] > model.idf[2]  # id 2 occurs in both texts, id 1 in one


def _labelled(n: int, seed: int):
    """Encoded synthetic 3-topic texts: ids, vocab, label names, targets."""
    rows = make_texts(n, seed=seed)
    names = sorted({r["label"] for r in rows})
    ids, vocab = _encode([r["text"] for r in rows])
    return ids, vocab, names, torch.tensor([names.index(r["label"]) for r in rows])


def test_C_candidates_are_chosen_on_dev():
    ids, vocab, names, y = _labelled(120, seed=5)
    # Which C wins on dev is not knowable in advance: check the choice is the argmax of the dev score.
    model = build_model("tfidf_linear", {"C": [0.001, 10.0]}, len(vocab), len(names))
    model.fit_data(ids[:80], y[:80], multi_label=False, dev=(ids[80:], y[80:]))
    scores = {}
    for c in (0.001, 10.0):
        single = build_model("tfidf_linear", {"C": c}, len(vocab), len(names))
        single.fit_data(ids[:80], y[:80], multi_label=False)
        x, mask = pad_batch(ids[80:], 0)
        with torch.no_grad():
            scores[c] = (single(x, mask).logits.argmax(-1) == y[80:]).float().mean().item()
    assert model.chosen_C == max(scores, key=lambda c: (scores[c], -c))
    with pytest.raises(Exception, match="positive"):
        build_model("tfidf_linear", {"C": [1.0, -1.0]}, 10, 2)


def test_dev_calibration_improves_log_loss_without_changing_decisions():
    ids, vocab, names, y = _labelled(200, seed=6)
    model = build_model("tfidf_linear", {"C": 1.0}, len(vocab), len(names))
    model.fit_data(ids[:140], y[:140], multi_label=False, dev=(ids[140:], y[140:]))
    assert model.logit_scale.item() != 1.0
    x, mask = pad_batch(ids[140:], 0)
    with torch.no_grad():
        calibrated = model(x, mask).logits
        model.logit_scale.fill_(1.0)
        raw = model(x, mask).logits
    assert torch.equal(calibrated.argmax(-1), raw.argmax(-1))
    nll = torch.nn.functional.cross_entropy
    assert nll(calibrated, y[140:]) < nll(raw, y[140:])


def test_refit_on_train_plus_dev_keeps_dev_metrics_honest(tmp_path, tiny_data):
    import json

    from conftest import write_config
    from textsift.cli.main import main

    base = write_config(tmp_path / "c.yaml", {"train": tiny_data["train"], "test": tiny_data["test"]},
                        model_name="tfidf_linear", model={"C": [0.1, 1.0]}, report={"plots": False})
    for name, extra in (("plain", []), ("refit", ["train.refit=true"])):
        assert main(["train", "-c", str(base), "--run-dir", str(tmp_path / name), *extra]) == 0
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    refit = json.loads((tmp_path / "refit" / "metrics.json").read_text())
    assert plain["dev"] == refit["dev"]  # measured before the refit, on a model that never saw dev
    a = (tmp_path / "plain" / "model.safetensors").read_bytes()
    assert a != (tmp_path / "refit" / "model.safetensors").read_bytes()  # the saved model did change
    cnn = write_config(tmp_path / "d.yaml", tiny_data, model_name="textcnn")
    assert main(["train", "-c", str(cnn), "--run-dir", str(tmp_path / "cnn"), "train.refit=true"]) == 2


def _nbsvm_reference(x, y, C, alpha=1.0, loss="squared_hinge"):
    """Wang & Manning's NBSVM written out: per label, r from smoothed counts of texts containing each
    feature, SVM on x * r."""
    scores = []
    for j in range(y.shape[1]):
        pos = y[:, j] == 1
        p, q = alpha + (x[pos] > 0).sum(0), alpha + (x[~pos] > 0).sum(0)
        r = np.log(p / p.sum()) - np.log(q / q.sum())
        svm = LinearSVC(C=C, loss=loss, random_state=0, max_iter=2000).fit(x * r, pos.astype(int))
        scores.append(svm.decision_function(x * r))
    return np.stack(scores, 1)


@pytest.mark.parametrize("multi_label", [False, True])
def test_nb_scale_equals_nbsvm_and_is_folded_into_the_weights(multi_label):
    rows = make_texts(120, seed=8, multi=multi_label)
    names = sorted({lab for r in rows for lab in r.get("labels", [r.get("label")])})
    ids, vocab = _encode([r["text"] for r in rows])
    if multi_label:
        y = torch.tensor([[float(n in r["labels"]) for n in names] for r in rows])
    else:
        y = torch.tensor([names.index(r["label"]) for r in rows])
    model = build_model("tfidf_linear", {"C": 0.5, "nb_scale": True}, len(vocab), len(names))
    assert model.fit_data(ids, y, multi_label=multi_label) is True
    x, mask = pad_batch(ids, 0)
    with torch.no_grad():
        logits = model(x, mask).logits.numpy()
    tfidf = model._tfidf(model._count_matrix(ids)).toarray()
    onehot = y.numpy() if multi_label else np.eye(len(names))[y.numpy()]
    ref = _nbsvm_reference(tfidf, onehot, C=0.5)
    np.testing.assert_allclose(logits, ref, atol=1e-4)
    plain = build_model("tfidf_linear", {"C": 0.5}, len(vocab), len(names))
    plain.fit_data(ids, y, multi_label=multi_label)
    assert not torch.allclose(plain.weight.weight, model.weight.weight)  # the scaling did change the fit


def test_svm_loss_hinge_fits_the_hinge_loss_svm():
    rows = make_texts(120, seed=8)
    names = sorted({r["label"] for r in rows})
    ids, vocab = _encode([r["text"] for r in rows])
    y = torch.tensor([names.index(r["label"]) for r in rows])
    model = build_model("tfidf_linear", {"C": 0.5, "nb_scale": True, "svm_loss": "hinge"}, len(vocab), len(names))
    model.fit_data(ids, y, multi_label=False)
    x, mask = pad_batch(ids, 0)
    with torch.no_grad():
        logits = model(x, mask).logits.numpy()
    tfidf = model._tfidf(model._count_matrix(ids)).toarray()
    np.testing.assert_allclose(logits, _nbsvm_reference(tfidf, np.eye(len(names))[y.numpy()], C=0.5, loss="hinge"),
                               atol=1e-4)
    squared = build_model("tfidf_linear", {"C": 0.5, "nb_scale": True}, len(vocab), len(names))
    squared.fit_data(ids, y, multi_label=False)
    assert not torch.allclose(squared.weight.weight, model.weight.weight)  # the loss did change the fit
    with pytest.raises(Exception, match="svm_loss is the loss of solver 'svm', found solver 'logreg'"):
        build_model("tfidf_linear", {"solver": "logreg", "svm_loss": "hinge"}, 10, 2)


def test_nb_scale_binary_single_label_decides_like_one_nbsvm():
    rows = [r for r in make_texts(120, seed=9) if r["label"] != "tech"]
    names = sorted({r["label"] for r in rows})
    ids, vocab = _encode([r["text"] for r in rows])
    y = torch.tensor([names.index(r["label"]) for r in rows])
    model = build_model("tfidf_linear", {"nb_scale": True}, len(vocab), 2)
    model.fit_data(ids, y, multi_label=False)
    x, mask = pad_batch(ids, 0)
    with torch.no_grad():
        logits = model(x, mask).logits.numpy()
    tfidf = model._tfidf(model._count_matrix(ids)).toarray()
    ref = _nbsvm_reference(tfidf, np.eye(2)[y.numpy()][:, 1:], C=1.0)[:, 0]
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], ref, atol=1e-4)
    with pytest.raises(Exception, match="liblinear"):
        build_model("tfidf_linear", {"nb_scale": True, "solver": "sgd"}, 10, 2)


def test_best_global_threshold_of_raw_scores_is_the_best_one():
    from sklearn.metrics import f1_score

    from textsift.reporting.metrics import best_global_threshold

    rng = np.random.default_rng(0)
    y = rng.random((60, 5)) < 0.3
    scores = np.round(rng.normal(size=(60, 5)) + y, 1)  # rounded: ties between scores must be handled
    t, best = best_global_threshold(y, scores)
    grid = np.unique(np.r_[scores.ravel(), scores.min() - 1])
    brute = max(f1_score(y, scores > g, average="micro", zero_division=0) for g in grid)
    assert best == pytest.approx(brute)
    assert f1_score(y, scores >= t, average="micro") == pytest.approx(best)


ZH_TOPICS = {"体育": ["篮球比赛", "足球", "冠军", "球员", "教练", "联赛"],
             "财经": ["股票", "基金", "银行", "投资", "市场", "利率"],
             "科技": ["手机", "芯片", "电脑", "软件", "网络", "机器人"]}


@pytest.mark.parametrize("tokenizer, lang", [
    ({"name": "char", "ngrams": 2, "word_ngrams": 2, "ngram_buckets": 5003}, "zh"),
    ({"name": "word", "ngrams": 2, "token_pattern": r"(?u)\b\w\w+\b", "ngram_buckets": 5003}, "en"),
])
def test_run_with_word_features_or_token_pattern_reloads_with_identical_predictions(tmp_path, tokenizer, lang):
    """word_ngrams / token_pattern are saved with the run: a reloaded model predicts exactly what the
    trained one did (the test report written during training: accuracy and every misclassified text)."""
    import json
    import random

    from conftest import make_texts, write_config, write_jsonl
    from textsift.api import TextClassifier
    from textsift.cli.main import main
    from textsift.tokenizers import TextEncoder

    def rows(n, seed):
        rng = random.Random(seed)
        if lang == "en":  # with punctuation and one-letter words, which the token pattern drops
            out = [dict(r, text=r["text"] + ", i said (a) ...") for r in make_texts(n, seed)]
        else:
            out = [{"text": "".join(rng.sample(ZH_TOPICS[lab], 2) + ["，今天的新闻！"]), "label": lab}
                   for lab in (sorted(ZH_TOPICS)[i % 3] for i in range(n))]
        for r in out:  # 20% noisy labels, so that the test report has misclassified texts to compare
            if rng.random() < 0.2:
                r["label"] = rng.choice(sorted({x["label"] for x in out}))
        return out

    files = {s: str(write_jsonl(tmp_path / f"{s}.jsonl", rows(n, seed)))
             for s, n, seed in (("train", 150, 1), ("dev", 40, 2), ("test", 60, 3))}
    cfg = write_config(tmp_path / "c.yaml", files, model_name="tfidf_linear", model={"C": 1.0},
                       tokenizer=tokenizer, report={"plots": False})
    run = tmp_path / "run"
    assert main(["train", "-c", str(cfg), "--run-dir", str(run)]) == 0

    saved = json.loads((run / "tokenizer.json").read_text(encoding="utf-8"))["tokenizer"]
    assert {k: saved[k] for k in tokenizer} == tokenizer
    clf = TextClassifier.load(run)
    test = [json.loads(line) for line in open(files["test"], encoding="utf-8")]
    preds, probs = clf.predict([r["text"] for r in test]), clf.predict_proba([r["text"] for r in test])
    accuracy = np.mean([p == r["label"] for p, r in zip(preds, test)])
    assert accuracy == pytest.approx(json.loads((run / "metrics.json").read_text())["test"]["accuracy"], abs=1e-4)
    bad = [json.loads(line) for line in open(run / "reports" / "test_badcases.jsonl", encoding="utf-8")]
    assert bad and {b["index"] for b in bad} == {i for i, (p, r) in enumerate(zip(preds, test)) if p != r["label"]}
    for b in bad:
        assert preds[b["index"]] == b["pred"]
        assert probs[b["index"]][b["pred"]] == pytest.approx(b["pred_prob"], abs=1e-4)

    # the option matters: the same vocabulary without it encodes differently
    without = dict(saved, **({"word_ngrams": 0} if lang == "zh" else {"token_pattern": None}))
    plain = TextEncoder.from_dict({**json.loads((run / "tokenizer.json").read_text()), "tokenizer": without})
    assert plain.encode(test[0]["text"], 32) != clf.bundle.encoder.encode(test[0]["text"], 32)
