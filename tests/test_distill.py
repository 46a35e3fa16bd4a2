"""Distillation: KD losses against hand computations, schedules, feature losses, cached teacher logits,
and end-to-end runs (cross-architecture, transfer data, multi-label, multi-teacher, layer-reduced
students, intermediate matches) whose results are checked."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from conftest import make_texts, write_jsonl
from hf_tiny import make_tiny_model

BASE_TRAIN = {"epochs": 3, "batch_size": 16, "progress": False, "max_length": 24, "precision": "fp32"}


# ---------------------------------------------------------------- loss functions
@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
def test_kl_kd_loss_equals_kl_div_times_t_squared(t):
    from textsift.losses.kd import kd_loss

    g = torch.Generator().manual_seed(0)
    s, teacher = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    expected = F.kl_div(F.log_softmax(s / t, -1), F.softmax(teacher / t, -1), reduction="batchmean") * t * t
    got = kd_loss("kl", s, teacher, torch.full((8, 1), t))
    torch.testing.assert_close(got, expected)


def test_bce_kd_loss_uses_per_label_sigmoid_targets():
    from textsift.losses.kd import kd_loss

    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    p = torch.sigmoid(t / 2)
    manual = -(p * F.logsigmoid(s / 2) + (1 - p) * F.logsigmoid(-s / 2)).mean() * 4
    torch.testing.assert_close(kd_loss("bce", s, t, torch.full((6, 1), 2.0)), manual)
    # labels do not compete: raising one teacher logit leaves the other labels' targets unchanged
    t2 = t.clone()
    t2[:, 0] += 5
    assert torch.allclose(torch.sigmoid(t2[:, 1:] / 2), p[:, 1:])
    assert kd_loss("mse", s, t, torch.ones(6, 1)) == pytest.approx(F.mse_loss(s, t).item())


def test_temperature_schedules():
    from textsift.losses.kd import temperature

    s = torch.tensor([[4.0, 0.0, 0.0], [0.2, 0.1, 0.0]])  # confident, then unsure student
    t = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 3.0]])  # teacher agrees with the first only
    assert temperature("constant", 3.0, s, t).squeeze(-1).tolist() == [3.0, 3.0]
    flsw = temperature("flsw", 3.0, s, t, beta=1.0, gamma=1.0).squeeze(-1)
    w = 1 - F.cosine_similarity(s, t, dim=-1, eps=1e-4)
    torch.testing.assert_close(flsw, 3.0 + (w.mean() - w))
    assert flsw[0] > 3.0 > flsw[1]  # disagreement → sharper (lower) temperature
    cwsm = temperature("cwsm", 3.0, s, t, beta=0.5).squeeze(-1)
    w = 1 / (s.softmax(-1).max(-1).values + 1e-3)
    torch.testing.assert_close(cwsm, 3.0 + 0.5 * (w.mean() - w))
    assert cwsm[0] > cwsm[1]


def test_weight_schedules():
    from textsift.losses.kd import schedule_weight

    assert [schedule_weight("constant", 2.0, x) for x in (0, 0.5, 1)] == [2.0, 2.0, 2.0]
    assert [schedule_weight("linear_decay", 2.0, x) for x in (0, 0.25, 1)] == [2.0, 1.5, 0.0]
    assert [schedule_weight("linear_growth", 2.0, x) for x in (0, 0.25, 1)] == [0.0, 0.5, 2.0]


def test_feature_losses_ignore_padding_and_vanish_on_equal_features():
    from textsift.losses.kd import Projections, feature_loss

    g = torch.Generator().manual_seed(2)
    h = torch.randn(2, 5, 8, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    for kind in ("hidden_mse", "cos", "nst_mmd"):
        assert feature_loss(kind, h, h, mask).item() == pytest.approx(0.0, abs=1e-5)
        other = torch.randn(2, 5, 8, generator=g)
        changed = other.clone()
        changed[0, 3:] += 100  # padded positions of the first text
        assert feature_loss(kind, changed, h, mask).item() == pytest.approx(feature_loss(kind, other, h, mask).item(),
                                                                             rel=1e-5)
    a = torch.softmax(torch.randn(2, 2, 5, 5, generator=g), -1)
    b = torch.softmax(torch.randn(2, 2, 5, 5, generator=g), -1)
    assert feature_loss("attention_mse", a, a, mask).item() == pytest.approx(0.0)
    full = torch.ones(2, 5, dtype=torch.bool)
    manual = -(b * torch.log(a)).sum(-1).mean()
    torch.testing.assert_close(feature_loss("attention_ce", a, b, full), manual)
    p = Projections([(16, 32), (32, 32)])
    assert p(0, torch.zeros(2, 5, 16)).shape == (2, 5, 32) and isinstance(p.maps[1], torch.nn.Identity)


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A teacher TextCNN trained on 240 labelled texts; 24 labelled texts and 300 unlabelled ones for students."""
    from textsift.api import TextClassifier

    root = tmp_path_factory.mktemp("distill")
    files = {s: str(write_jsonl(root / f"{s}.jsonl", make_texts(n, seed))) for s, n, seed in
             (("train", 240, 1), ("dev", 60, 2), ("test", 90, 3), ("few", 24, 4))}
    (root / "transfer.txt").write_text("\n".join(r["text"] for r in make_texts(300, 9)) + "\n")
    TextClassifier.train({"data": {k: files[k] for k in ("train", "dev", "test")},
                          "model": {"name": "textcnn", "embedding_dim": 32}, "tokenizer": {"name": "word"},
                          "train": {**BASE_TRAIN, "epochs": 6, "lr": 0.01}}, root / "teacher")
    return root, files


def _student(root, files, name, distill=None, model=None, **train):
    from textsift.api import TextClassifier

    cfg = {"data": {"train": files["few"], "dev": files["dev"], "test": files["test"]},
           "model": model or {"name": "fasttext", "embedding_dim": 16}, "tokenizer": {"name": "word"},
           "train": {**BASE_TRAIN, "epochs": 8, "lr": 0.05, **train}}
    if distill is not None:
        cfg["distill"] = distill
    TextClassifier.train(cfg, root / name)
    return json.loads((root / name / "metrics.json").read_text())


def test_student_distilled_with_transfer_data_beats_hard_labels_alone(task):
    root, files = task
    alone = _student(root, files, "alone")
    distilled = _student(root, files, "kd", {"teacher": str(root / "teacher"), "hard_weight": 0.5,
                                             "transfer_data": str(root / "transfer.txt"), "cache_dir": str(root / "c")})
    teacher = distilled["distill"]["teacher_test"]["accuracy"]
    assert distilled["test"]["accuracy"] > alone["test"]["accuracy"] + 0.05
    assert distilled["test"]["accuracy"] >= teacher - 0.1
    history = json.loads((root / "kd" / "history.json").read_text())
    assert {"train_kd_loss", "train_hard_loss"} <= set(history[0])  # the parts are logged separately
    assert distilled["distill"]["extra_texts"] == 300


def test_cached_teacher_logits_equal_live_ones(task, monkeypatch):
    from textsift.config.schema import DistillConfig
    from textsift.engines.distill import Teachers, cached_teacher_logits

    root, _ = task
    teachers = Teachers([str(root / "teacher")])
    texts = [r["text"] for r in make_texts(20, 5)]
    d = DistillConfig(teacher=str(root / "teacher"), cache_dir=str(root / "cache2"))
    first = cached_teacher_logits(teachers, texts, d)
    np.testing.assert_allclose(first, teachers.logits(texts, d.teacher_batch_size), atol=1e-6)
    monkeypatch.setattr(Teachers, "logits", lambda *a: pytest.fail("the cache was not used"))
    np.testing.assert_array_equal(cached_teacher_logits(teachers, texts, d), first)
    monkeypatch.undo()
    assert len(list((root / "cache2").iterdir())) == 1
    cached_teacher_logits(teachers, texts[:-1], d)  # other texts, another entry
    assert len(list((root / "cache2").iterdir())) == 2


def test_a_new_augmentation_labels_only_its_copies(task, tmp_path, caplog):
    root, files = task
    d = {"teacher": str(root / "teacher"), "transfer_data": str(root / "transfer.txt"), "cache_dir": str(tmp_path),
         "augment": {"copies": 1}}
    _student(root, files, "aug-seed1", d, seed=1)
    caplog.clear()
    with caplog.at_level("INFO", logger="textsift"):
        _student(root, files, "aug-seed2", d, seed=2)  # other copies of the same 24 gold texts
    assert "teacher logits for 24 texts read from the cache" in caplog.text  # the gold rows
    assert "teacher logits for 300 texts read from the cache" in caplog.text  # the transfer texts
    assert "teacher logits for 24 texts computed" in caplog.text  # the new copies, and nothing else:
    assert caplog.text.count(" computed in ") == 1  # the dev and test scores of the teacher come from the cache


def test_multi_teacher_logits_are_the_weighted_mean_in_one_label_order(task):
    from textsift.engines.distill import Teachers

    root, files = task
    _student(root, files, "teacher2", model={"name": "textcnn", "embedding_dim": 16})
    texts = [r["text"] for r in make_texts(10, 6)]
    one, two = Teachers([str(root / "teacher")]), Teachers([str(root / "teacher2")])
    both = Teachers([str(root / "teacher"), str(root / "teacher2")], [3, 1])
    np.testing.assert_allclose(both.logits(texts, 8), 0.75 * one.logits(texts, 8) + 0.25 * two.logits(texts, 8),
                               atol=1e-5)


def test_multi_label_distillation_uses_sigmoid_soft_targets(tmp_path):
    from textsift.api import TextClassifier

    files = {s: str(write_jsonl(tmp_path / f"{s}.jsonl", make_texts(n, seed, multi=True)))
             for s, n, seed in (("train", 200, 1), ("dev", 60, 2))}
    base = {"data": files, "tokenizer": {"name": "word"}, "train": {**BASE_TRAIN, "epochs": 4, "lr": 0.01}}
    TextClassifier.train({**base, "model": {"name": "textcnn", "embedding_dim": 16}}, tmp_path / "t")
    student = TextClassifier.train({**base, "model": {"name": "fasttext", "embedding_dim": 16},
                                    "train": {**base["train"], "lr": 0.05},
                                    "distill": {"teacher": str(tmp_path / "t"), "cache": False}}, tmp_path / "s")
    assert student.multi_label and all(isinstance(x, list) for x in student.predict(["stock market", "goal"]))
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["dev"]["micro_f1"] > 0.6


@pytest.fixture(scope="module")
def hf_teacher(task):
    from textsift.api import TextClassifier

    root, files = task
    texts = [json.loads(line)["text"] for line in open(files["train"], encoding="utf-8")]
    folder = make_tiny_model("bert", root / "tiny-bert", texts)
    TextClassifier.train({"data": {k: files[k] for k in ("train", "dev", "test")},
                          "model": {"name": "hf", "pretrained": str(folder), "pooling": "mean"},
                          "train": {**BASE_TRAIN, "epochs": 3, "lr": 2e-3}}, root / "hf-teacher")
    return root / "hf-teacher"


def test_encoder_teacher_into_a_classic_student(task, hf_teacher):
    root, files = task
    metrics = _student(root, files, "cross", {"teacher": str(hf_teacher), "transfer_data": str(root / "transfer.txt"),
                                              "augment": {"copies": 1}, "cache": False},
                       model={"name": "textcnn", "embedding_dim": 16})
    assert metrics["distill"]["extra_texts"] == 300 + 24  # transfer texts + one augmented copy per labelled one
    assert metrics["test"]["accuracy"] > 0.6
    from textsift.engines.distill import MASK
    from textsift.rundir import load_bundle

    assert MASK not in load_bundle(root / "cross").encoder.vocab  # masked tokens stay unknown to the student


def test_layer_reduced_student_starts_from_the_chosen_teacher_layers(task, hf_teacher, tmp_path):
    from textsift.rundir import load_bundle

    root, files = task
    metrics = _student(root, files, "shallow", {"teacher": str(hf_teacher), "student_layers": [1], "cache": False,
                                                "intermediate": [
                                                    {"teacher_layer": 2, "student_layer": 1},
                                                    {"teacher_layer": 2, "student_layer": 1, "feature": "attention",
                                                     "loss": "attention_mse", "weight": 0.5}]},
                       model={"name": "hf"}, epochs=2, lr=1e-3)
    student, teacher = load_bundle(root / "shallow"), load_bundle(hf_teacher)
    assert student.model.num_layers == 1 and teacher.model.num_layers == 2
    assert student.model.params.pooling == "mean"  # the teacher's settings carry over
    history = json.loads((root / "shallow" / "history.json").read_text())
    assert {"train_hidden_2_1_hidden_mse", "train_attention_2_1_attention_mse"} <= set(history[0])
    assert metrics["test"]["accuracy"] > 0.5


@pytest.mark.parametrize("rows, seen", [("all", 24 + 300), ("labelled", 24)])
def test_intermediate_rows_labelled_runs_the_teacher_on_gold_rows_only(task, hf_teacher, monkeypatch, rows, seen):
    import textsift.engines.distill as engine

    counted, live = [], engine._live_teacher

    def counting(cfg, teachers):  # the live teacher, counting the rows of every forward pass
        model, extra = live(cfg, teachers)
        forward = model.forward
        model.forward = lambda ids, mask: (counted.append(len(ids)), forward(ids, mask))[1]
        return model, extra

    monkeypatch.setattr(engine, "_live_teacher", counting)
    root, files = task
    _student(root, files, f"rows-{rows}", {"teacher": str(hf_teacher), "student_layers": [1], "cache": False,
                                           "transfer_data": str(root / "transfer.txt"), "intermediate_rows": rows,
                                           "intermediate": [{"teacher_layer": 2, "student_layer": 1}]},
             model={"name": "hf"}, epochs=1, lr=1e-3)
    # one epoch: every labelled row (and, for all, every transfer row) once; then the teacher's own report
    # labels the 60 dev and 90 test texts (its soft targets were computed before the wrapping)
    assert sum(counted) == seen + 60 + 90
    history = json.loads((root / f"rows-{rows}" / "history.json").read_text())
    assert history[0]["train_hidden_2_1_hidden_mse"] > 0


def test_intermediate_rows_without_a_gold_row_still_give_the_projections_a_gradient():
    """So that under DDP every rank all-reduces the same list of gradients."""
    from types import SimpleNamespace

    from textsift.engines.distill import Distiller
    from textsift.losses.kd import Projections

    me = SimpleNamespace(projections=Projections([(8, 16)]), teacher=None)
    batch = {"input_ids": torch.ones(3, 5, dtype=torch.long), "mask": torch.ones(3, 5, dtype=torch.bool)}
    loss = Distiller._intermediate(me, batch, None, {}, rows=torch.zeros(3, dtype=torch.bool))
    loss.backward()  # the teacher (None here) is never called
    assert float(loss.detach()) == 0.0 and all(p.grad is not None for p in me.projections.parameters())


def test_student_layers_copy_the_teacher_weights(task, hf_teacher):
    from textsift.engines.distill import Teachers, _student_from_teacher
    from textsift.rundir import load_bundle

    t = load_bundle(hf_teacher)
    student = _student_from_teacher(Teachers([str(hf_teacher)]), [1], t.encoder, t.scheme, {"pretrained": "x"})
    teacher_layers = dict(t.model.named_parameters())
    for name, p in student.named_parameters():
        source = name.replace("layer.0.", "layer.1.") if ".layer.0." in name else name
        torch.testing.assert_close(p, teacher_layers[source], msg=name)


def test_bad_distill_configs_are_reported(task, tmp_path):
    from textsift.config.load import ConfigError, validate
    from textsift.errors import TextsiftError

    root, files = task
    base = {"data": {"train": files["few"]}, "model": {"name": "fasttext"}}
    with pytest.raises(ConfigError, match=r"distill.teacher: .*nowhere: run directory not found"):
        validate({**base, "distill": {"teacher": str(tmp_path / "nowhere")}})
    with pytest.raises(ConfigError, match="teacher_weights has 1 values for 2 teacher"):
        validate({**base, "distill": {"teacher": [str(root / "teacher")] * 2, "teacher_weights": [1]}})
    with pytest.raises(ConfigError, match="feature 'attention' cannot use loss 'hidden_mse'"):
        validate({**base, "distill": {"teacher": str(root / "teacher"),
                                      "intermediate": [{"teacher_layer": 1, "student_layer": 1, "feature": "attention"}]}})
    with pytest.raises(ConfigError, match="train.kfold cannot be combined with distill"):
        validate({**base, "train": {"kfold": 3}, "distill": {"teacher": str(root / "teacher")}})
    with pytest.raises(ConfigError, match=r"distill.intermediate_rows: .*'all' or 'labelled'"):
        validate({**base, "distill": {"teacher": str(root / "teacher"), "intermediate_rows": "gold"}})
    with pytest.raises(TextsiftError, match="fitted in one pass on the gold labels"):
        _student(root, files, "bad0", {"teacher": str(root / "teacher")}, model={"name": "tfidf_linear"})
    with pytest.raises(TextsiftError, match="'fgm' computes its own loss or backward pass"):
        _student(root, files, "bad1", {"teacher": str(root / "teacher")}, tricks=[{"name": "fgm"}])
    with pytest.raises(TextsiftError, match="intermediate: the teacher must be a single `hf` encoder"):
        _student(root, files, "bad2", {"teacher": str(root / "teacher"),
                                       "intermediate": [{"teacher_layer": 1, "student_layer": 1}]})


def test_cli_distill(task, tmp_path):
    root, files = task
    cfg = tmp_path / "d.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"train": files["few"], "dev": files["dev"], "test": files["test"]},
                                   "model": {"name": "fasttext", "embedding_dim": 16}, "tokenizer": {"name": "word"},
                                   "train": {**BASE_TRAIN, "lr": 0.05},
                                   "distill": {"teacher": str(root / "teacher"), "cache": False}}))
    cli = [sys.executable, "-m", "textsift"]
    out = subprocess.run(cli + ["distill", "-c", str(cfg), "--run-dir", str(tmp_path / "s")], capture_output=True,
                         text=True, check=True).stdout
    summary = json.loads(out.splitlines()[-1])
    assert {"dev", "test", "teacher_dev", "teacher_test"} <= set(summary)
    plain = tmp_path / "p.yaml"
    plain.write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(cfg.read_text()).items() if k != "distill"}))
    res = subprocess.run(cli + ["distill", "-c", str(plain), "--run-dir", str(tmp_path / "x")], capture_output=True,
                         text=True)
    assert res.returncode == 2 and "has no `distill` section" in res.stderr


def test_augmentation_splits_words_and_cjk_and_masks_per_model():
    from textsift.config.schema import AugmentConfig
    from textsift.engines.distill import MASK, _masked, augment_texts, mask_form

    cfg = AugmentConfig(copies=20, mask=0.3, delete=0.1, ngram=0.0)
    out = augment_texts(["wonderful", "a wonderful film", "这部电影很好看"], cfg, seed=0)
    words = {t for t in out[0::3]}
    assert words <= {"wonderful", MASK}  # one English word stays a word, never split into letters
    assert all(set(t.split()) <= {"a", "wonderful", "film", MASK} for t in out[1::3])
    assert any(MASK in t for t in out[2::3]) and all(" " not in t for t in out[2::3])  # per character
    assert mask_form(None) == MASK  # classic vocabularies: an unknown token
    assert _masked([f"a {MASK} film"], "[MASK]") == ["a [MASK] film"]


def test_augmentation_replaces_words_by_their_neighbours_only_when_asked():
    from textsift.config.schema import AugmentConfig
    from textsift.engines.distill import augment_texts

    near = {"good": ["great", "fine"], "film": ["movie"]}
    out = augment_texts(["a good film ."], AugmentConfig(copies=40, mask=0, delete=0, ngram=0, replace=1.0), 0, near)
    assert {t.split()[1] for t in out} == {"great", "fine"}  # drawn from its neighbours, each of them
    assert {t.split()[2] for t in out} == {"movie"} and {t.split()[0] for t in out} == {"a"}  # "a": none
    half = augment_texts(["a good film ."], AugmentConfig(copies=40, ngram=0, replace=0.5), 0, near)
    assert 0 < sum(t.split()[-2:] == ["film", "."] for t in half) < 40
    # without replace the same draws as without neighbours: other options' copies do not change
    cfg = AugmentConfig(copies=5, mask=0.3, delete=0.1, ngram=0.3)
    assert augment_texts(["a good film about a good man"], cfg, 1, near) == \
        augment_texts(["a good film about a good man"], cfg, 1)
    with pytest.raises(ValueError, match="mask \\+ delete \\+ replace is 1.2"):
        AugmentConfig(mask=0.5, delete=0.3, replace=0.4)


def test_replacement_augmentation_takes_the_encoder_teachers_embeddings(task, hf_teacher, caplog):
    root, files = task
    with caplog.at_level("INFO", logger="textsift"):
        metrics = _student(root, files, "replace", {"teacher": str(hf_teacher), "cache": False,
                                                    "augment": {"copies": 2, "replace": 0.4, "neighbours": 3}})
    assert metrics["distill"]["extra_texts"] == 48
    assert "nearest words of" in caplog.text and str(hf_teacher) in caplog.text
    from textsift.errors import TextsiftError

    with pytest.raises(TextsiftError, match="augment.replace needs word vectors .*teacher's own input embeddings"):
        _student(root, files, "replace-bad", {"teacher": str(root / "teacher"), "cache": False,
                                              "augment": {"copies": 1, "replace": 0.4}})
    with pytest.raises(TextsiftError, match=r"augment.replace needs word vectors; reading .*nowhere.txt failed"):
        _student(root, files, "replace-bad2", {"teacher": str(hf_teacher), "cache": False, "augment": {
            "copies": 1, "replace": 0.4, "vectors": str(root / "nowhere.txt")}})


def test_a_student_splitting_dev_unlike_its_teacher_is_warned(tmp_path, caplog):
    from types import SimpleNamespace

    from textsift.config.load import validate
    from textsift.engines.distill import _check_dev_split

    train = write_jsonl(tmp_path / "train.jsonl", make_texts(40, 1))
    teacher = SimpleNamespace(paths=[tmp_path / "t"], bundles=[SimpleNamespace(
        config=validate({"data": {"train": str(train)}, "model": {"name": "fasttext"}, "train": {"seed": 3}}))])

    def warned(data=None, **train_section):
        caplog.clear()
        _check_dev_split(validate({"data": {"train": str(train), **(data or {})}, "model": {"name": "fasttext"},
                                   "train": train_section}), teacher)
        return [r.getMessage() for r in caplog.records if "teacher trained on" in r.getMessage()]

    assert warned(seed=3) == [] and warned({"split_seed": 3}, seed=5) == []
    message = warned(seed=5)
    assert len(message) == 1 and "(5, 0.1, None)" in message[0] and "data.split_seed=3" in message[0] \
        and "data.limit=null" in message[0]
    assert warned({"dev_size": 0.2}, seed=3) and warned({"dev": str(train)}, seed=5) == []

    # a K-fold teacher trained on every text of the file: any held-out split overlaps it, even the same one
    teacher.bundles[0].config = validate({"data": {"train": str(train)}, "model": {"name": "fasttext"},
                                          "train": {"seed": 3, "kfold": 4}})
    message = warned(seed=3)
    assert len(message) == 1 and "4-fold run" in message[0] and "data.dev" in message[0]
    assert warned({"dev": str(write_jsonl(tmp_path / "dev.jsonl", make_texts(10, 2)))}, seed=3) == []


# ---------------------------------------------------------------- multi-task
COARSE = {"sports": "leisure", "finance": "work", "tech": "work"}  # task B's labels: a coarser view of the topics


def test_multi_task_scheme_scores_each_task_in_its_own_block():
    from textsift.data.labels import LabelScheme, MultiTaskScheme

    scheme = MultiTaskScheme.build({"topic": ["tech", "sports", "finance"], "coarse": ["work", "leisure"]})
    assert scheme.labels == ["topic/finance", "topic/sports", "topic/tech", "coarse/leisure", "coarse/work"]
    again = LabelScheme.from_dict(scheme.to_dict())
    assert again.multi_task and again.tasks == ["topic", "coarse"] and again.segments == [[0, 1, 2], [3, 4]]
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0, 3.0], [0.0, 5.0, 0.0, 4.0, 0.0]])
    probs = scheme.probabilities(logits)
    torch.testing.assert_close(probs[:, :3], torch.softmax(logits[:, :3], -1))
    torch.testing.assert_close(probs[:, 3:], torch.softmax(logits[:, 3:], -1))
    decisions = scheme.decide(probs.numpy())
    assert decisions.tolist() == [[0, 4], [1, 3]]
    assert scheme.names(decisions[1]) == ["topic/sports", "coarse/leisure"]
    # the gold-label loss: cross-entropy inside the gold task's block, the other blocks masked out
    targets = scheme.targets([["topic/tech"], ["coarse/leisure"]])
    masked = logits.masked_fill(~scheme.gold_mask(targets), float("-inf"))
    expected = (F.cross_entropy(logits[:1, :3], torch.tensor([2])) + F.cross_entropy(logits[1:, 3:], torch.tensor([0]))) / 2
    torch.testing.assert_close(F.cross_entropy(masked, targets), expected)
    # each example is judged on its own task, and the headline numbers are the tasks' mean
    from textsift.engines.evaluation import split_metrics

    gold = np.array([0, 2, 3, 4])
    pred = np.array([[0, 3], [1, 3], [2, 3], [2, 3]])  # topic: 1 of 2 right; coarse: 1 of 2 right
    m = split_metrics(scheme, gold, pred)
    assert m["topic/accuracy"] == 0.5 and m["coarse/accuracy"] == 0.5 and m["accuracy"] == 0.5 and m["n"] == 4


@pytest.fixture(scope="module")
def two_tasks(task):
    """task's topic teacher, a second teacher for a coarser label set, and files for both tasks."""
    from textsift.api import TextClassifier

    root, files = task

    def coarse(rows):
        return [{"text": r["text"], "label": COARSE[r["label"]]} for r in rows]

    cfiles = {s: str(write_jsonl(root / f"coarse-{s}.jsonl", coarse(make_texts(n, seed)))) for s, n, seed in
              (("train", 240, 11), ("dev", 60, 12), ("test", 90, 13), ("few", 24, 14))}
    TextClassifier.train({"data": {k: cfiles[k] for k in ("train", "dev", "test")},
                          "model": {"name": "textcnn", "embedding_dim": 32}, "tokenizer": {"name": "word"},
                          "train": {**BASE_TRAIN, "epochs": 6, "lr": 0.01}}, root / "teacher_coarse")
    tasks = [{"name": "topic", "teacher": str(root / "teacher"), "train": files["few"], "dev": files["dev"],
              "test": files["test"]},
             {"name": "coarse", "teacher": str(root / "teacher_coarse"), "train": cfiles["few"], "dev": cfiles["dev"],
              "test": cfiles["test"]}]
    return root, files, cfiles, tasks


def test_multi_task_student_learns_every_task_from_its_teachers(two_tasks):
    from textsift.api import TextClassifier

    root, files, cfiles, tasks = two_tasks
    cfg = {"model": {"name": "fasttext", "embedding_dim": 16}, "tokenizer": {"name": "word"},
           "train": {**BASE_TRAIN, "epochs": 8, "lr": 0.05},
           "distill": {"tasks": tasks, "hard_weight": 0.5, "transfer_data": str(root / "transfer.txt"),
                       "cache_dir": str(root / "c-mt")}}
    clf = TextClassifier.train(cfg, root / "mt")
    m = json.loads((root / "mt" / "metrics.json").read_text())
    assert m["test"]["n"] == 180 and m["test"]["topic/n"] == 90
    assert m["test"]["accuracy"] == pytest.approx((m["test"]["topic/accuracy"] + m["test"]["coarse/accuracy"]) / 2)
    for name in ("topic", "coarse"):  # the student keeps most of each teacher's accuracy on 24 gold texts a task
        assert m["test"][f"{name}/accuracy"] >= m["distill"]["teacher_test"][f"{name}/accuracy"] - 0.1
    assert (root / "mt" / "reports" / "test_topic_report.json").is_file()
    assert (root / "mt" / "reports" / "dev_coarse_confusion.json").is_file()
    card = (root / "mt" / "README.md").read_text()
    assert "| test topic |" in card and "| dev coarse |" in card and "--task NAME" in card
    # one model predicts every task at once: on the topic test texts, its coarse answers follow their topics,
    # learned from the coarse teacher's soft targets on texts that have no coarse gold label
    rows = [json.loads(line) for line in open(files["test"])]
    predictions = clf.predict([r["text"] for r in rows])
    assert all(set(p) == {"topic", "coarse"} for p in predictions)
    agree = np.mean([p["coarse"] == COARSE[r["label"]] for p, r in zip(predictions, rows)])
    assert agree >= 0.8
    rec = clf.predict_details([rows[0]["text"]], top_k=2)[0]
    assert set(rec["tasks"]) == {"topic", "coarse"} and len(rec["tasks"]["topic"]["top_k"]) == 2
    assert rec["tasks"]["coarse"]["label"] == predictions[0]["coarse"]
    assert sum(rec["probabilities"][f"coarse/{c}"] for c in ("work", "leisure")) == pytest.approx(1, abs=1e-5)


def test_bad_multi_task_configs_are_reported(two_tasks):
    from textsift.config.load import ConfigError, validate
    from textsift.errors import TextsiftError

    root, files, cfiles, tasks = two_tasks
    base = {"model": {"name": "fasttext"}}
    with pytest.raises(ConfigError, match="either teacher .* or tasks .*found both"):
        validate({**base, "distill": {"teacher": str(root / "teacher"), "tasks": tasks}})
    with pytest.raises(ConfigError, match="remove data.train"):
        validate({**base, "data": {"train": files["few"]}, "distill": {"tasks": tasks}})
    with pytest.raises(ConfigError, match="at least two tasks with distinct names"):
        validate({**base, "distill": {"tasks": [tasks[0], {**tasks[1], "name": "topic"}]}})
    with pytest.raises(ConfigError, match="without '/'"):
        validate({**base, "distill": {"tasks": [tasks[0], {**tasks[1], "name": "a/b"}]}})
    swapped = [{**tasks[0], "teacher": tasks[1]["teacher"]}, tasks[1]]
    with pytest.raises(TextsiftError, match=r"tasks\[topic\]: 3 label\(s\) of .* are not labels of its teacher"):
        TextClassifier_train({**base, "train": BASE_TRAIN, "distill": {"tasks": swapped}}, root / "bad-mt1")
    with pytest.raises(TextsiftError, match="without label_smoothing"):
        TextClassifier_train({**base, "train": BASE_TRAIN, "loss": {"name": "ce", "label_smoothing": 0.1},
                              "distill": {"tasks": tasks}}, root / "bad-mt2")


def TextClassifier_train(cfg, run_dir):
    from textsift.api import TextClassifier

    return TextClassifier.train(cfg, run_dir)


def test_cached_multi_task_teacher_logits_equal_live_ones(two_tasks):
    from textsift.config.schema import DistillConfig
    from textsift.engines.distill import TaskTeachers, cached_teacher_logits

    root, _, _, tasks = two_tasks
    teachers = TaskTeachers([DistillConfig(tasks=tasks).tasks[i] for i in (1, 0)])  # label orders differ per task
    texts = [r["text"] for r in make_texts(30, 21)]
    d = DistillConfig(tasks=tasks, cache_dir=str(root / "cache-mt"))
    live = teachers.logits(texts, 8)
    # float32 rounding only: the cache scores in batches of teacher_batch_size, not 8, and on an AVX-512 CPU
    # oneDNN then sums in another order (logits ~9 differ by ~6e-6); a wrong task order or row is off by units
    close = dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cached_teacher_logits(teachers, texts, d), live, **close)  # computed, then saved
    np.testing.assert_allclose(cached_teacher_logits(teachers, texts, d), live, **close)  # read back
    coarse = teachers.per_task[0]
    np.testing.assert_allclose(live[:, :2], coarse.logits(texts, 8)[:, [coarse.labels.index(x) for x in
                                                                         sorted(coarse.labels)]], atol=1e-6)


def test_multi_task_student_through_evaluate_export_and_onnx(two_tasks, tmp_path):
    from textsift.api import TextClassifier
    from textsift.engines.export import export_run

    root, files, cfiles, tasks = two_tasks
    cfg = {"model": {"name": "textcnn", "embedding_dim": 16}, "tokenizer": {"name": "word"},
           "train": {**BASE_TRAIN, "epochs": 2, "lr": 0.02}, "distill": {"tasks": tasks, "cache": False}}
    torch_clf = TextClassifier.train(cfg, tmp_path / "run")
    cli = [sys.executable, "-m", "textsift", "evaluate", str(tmp_path / "run"), "--data", cfiles["test"], "--json"]
    out = json.loads(subprocess.run(cli + ["--task", "coarse"], capture_output=True, text=True, check=True).stdout)
    test = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert out["metrics"]["coarse/accuracy"] == pytest.approx(test["coarse/accuracy"])
    assert set(out["report"]) >= {"leisure", "work"}
    res = subprocess.run(cli, capture_output=True, text=True)
    assert res.returncode != 0 and "one of topic, coarse" in res.stderr
    info = subprocess.run([sys.executable, "-m", "textsift", "info", str(tmp_path / "run")], capture_output=True,
                          text=True, check=True).stdout
    assert "task: multi_task" in info and "  coarse: accuracy" in info and "temperature" not in info
    res = subprocess.run(cli + ["--task", "topic"], capture_output=True, text=True)  # coarse labels are no topics
    assert res.returncode != 0 and "leisure" in res.stderr
    export_run(tmp_path / "run", tmp_path / "onnx")
    onnx_clf = TextClassifier.load(tmp_path / "onnx", backend="onnx")
    texts = [json.loads(line)["text"] for line in open(files["test"])][:20]
    assert onnx_clf.predict(texts) == torch_clf.predict(texts)
    # static int8: calibrated on every task's training texts, judged on every task's dev and test files
    from textsift.engines.prune import prune_run
    from textsift.engines.quantize import quantize_run
    from textsift.errors import TextsiftError

    report = quantize_run(tmp_path / "run", tmp_path / "int8", method="onnx-static", calibration_size=40)
    after = report["rows"]["after"]
    assert after["test_accuracy"] == pytest.approx(test["accuracy"], abs=0.1) and after["dev_accuracy"] > 0.5
    with pytest.raises(TextsiftError, match="does not support multi-task students"):
        prune_run(tmp_path / "run", tmp_path / "pruned", vocab_from=files["few"])


def test_readme_multi_task_example_is_a_valid_config():
    from pathlib import Path

    from textsift.config.load import _expand, validate

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("# multi.yaml:", 1)[1].split("\n", 1)[1].split("```", 1)[0]
    cfg = validate(_expand(yaml.safe_load(block)), check_files=False)
    assert [t.name for t in cfg.distill.tasks] == ["sentiment", "question"] and cfg.data.train is None


def test_multi_task_dev_splits_follow_each_tasks_split_seed(two_tasks, caplog):
    from types import SimpleNamespace

    from textsift.config.load import validate
    from textsift.engines.distill import _multi_task_datasets

    root, files, cfiles, tasks = two_tasks

    def teacher(train, labels):  # a teacher that held out its dev from `train` with seed 42
        cfg = validate({"data": {"train": train}, "model": {"name": "fasttext"}, "train": {"seed": 42}})
        return SimpleNamespace(labels=labels, paths=[root / "t"], bundles=[SimpleNamespace(config=cfg)])

    teachers = SimpleNamespace(per_task=[teacher(files["train"], ["finance", "sports", "tech"]),
                                         teacher(cfiles["train"], ["leisure", "work"])])
    no_dev = [{**t, "train": f, "dev": None} for t, f in zip(tasks, (files["train"], cfiles["train"]))]

    def load(seed, **split_seeds):
        caplog.clear()
        cfg = validate({"model": {"name": "fasttext"}, "train": {"seed": seed},
                        "distill": {"tasks": [{**t, "split_seed": split_seeds.get(t["name"])} for t in no_dev]}})
        _, train, dev, _ = _multi_task_datasets(cfg, teachers)
        return {ex.text for ex in dev}, [r.getMessage() for r in caplog.records if "teacher trained on" in r.getMessage()]

    dev42, warned = load(42)
    assert warned == [] and len(dev42) > 0
    dev5, warned = load(5)
    assert dev5 != dev42 and len(warned) == 2 and "distill.tasks[coarse].split_seed=42" in warned[1]
    dev_fixed, warned = load(5, topic=42, coarse=42)
    assert dev_fixed == dev42 and warned == []


# ---------------------------------------------------------------- pooled_match (representation transfer)
def test_pooled_loss_equals_hand_computations():
    from textsift.losses.kd import pooled_loss

    s, t = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    # row 1: orthogonal (cos 0), row 2: parallel (cos 1) -> mean(1 - cos) = 0.5
    assert pooled_loss("cos", s, t).item() == pytest.approx(0.5)
    assert pooled_loss("mse", s, t).item() == pytest.approx((1 + 4 + 1 + 1) / 4)
    target = torch.ones(1, 2, requires_grad=True)
    pooled_loss("mse", torch.zeros(1, 2, requires_grad=True), target).backward()
    assert target.grad is None  # the teacher's vectors are targets, never trained


def test_cached_pooled_teacher_outputs_equal_the_models_own_pooled_vectors(task, hf_teacher, monkeypatch):
    from textsift.config.schema import DistillConfig
    from textsift.engines.distill import Teachers, cached_teacher_logits
    from textsift.rundir import load_bundle

    root, _ = task
    texts = [r["text"] for r in make_texts(12, 7)]
    teachers = Teachers([str(hf_teacher)])
    d = DistillConfig(teacher=str(hf_teacher), cache_dir=str(root / "cache-pooled"))
    logits, pooled = cached_teacher_logits(teachers, texts, d, pooled=True)
    b = load_bundle(hf_teacher)
    b.model.eval()
    with torch.no_grad():
        for i in (0, 5, 11):  # one text at a time, no padding: the vector the head reads
            ids = torch.tensor([b.encoder.encode_batch([texts[i]], b.max_length)[0]])
            out = b.model(ids, torch.ones_like(ids, dtype=torch.bool))
            np.testing.assert_allclose(pooled[i], out.pooled[0].numpy(), atol=1e-5)
            np.testing.assert_allclose(logits[i], out.logits[0].numpy(), atol=1e-5)
    assert pooled.shape == (12, b.model.pooled_width())
    np.testing.assert_allclose(logits, cached_teacher_logits(teachers, texts, d), atol=1e-6)  # logits-only entry
    monkeypatch.setattr(Teachers, "logits", lambda *a, **k: pytest.fail("the cache was not used"))
    again = cached_teacher_logits(teachers, texts, d, pooled=True)
    np.testing.assert_array_equal(again[1], pooled)
    assert len(list((root / "cache-pooled").iterdir())) == 2  # the pooled entry and the logits-only one


def test_pooled_match_trains_a_classic_student_towards_the_teachers_vectors(task, hf_teacher):
    from safetensors.torch import load_file

    root, files = task
    distill = {"teacher": str(hf_teacher), "transfer_data": str(root / "transfer.txt"), "cache": False,
               "hard_weight": 0.5}
    model = {"name": "textrnn", "embedding_dim": 16, "hidden_size": 16}
    with_match = _student(root, files, "pooled", {**distill, "pooled_match": {"weight": 1.0, "loss": "cos"}},
                          model=model)
    history = json.loads((root / "pooled" / "history.json").read_text())
    losses = [row["train_pooled_loss"] for row in history]
    assert losses[-1] < 0.6 * losses[0]  # the student's vectors (projected) turn towards the teacher's
    assert {"train_kd_loss", "train_hard_loss"} <= set(history[0])
    assert with_match["test"]["accuracy"] > 0.6
    plain = _student(root, files, "pooled-off", distill, model=model)
    # the run directory holds the student alone: the projection is training machinery, not part of the model
    assert load_file(str(root / "pooled" / "model.safetensors")).keys() == \
        load_file(str(root / "pooled-off" / "model.safetensors")).keys()
    assert "train_pooled_loss" not in json.loads((root / "pooled-off" / "history.json").read_text())[0]
    assert plain["test"]["accuracy"] > 0.6


def test_pooled_match_resumes_from_a_mid_run_checkpoint_identically(task, hf_teacher, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from textsift.config.load import validate
    from textsift.engines.checkpoint import CheckpointDir
    from textsift.engines.distill import distill_run

    root, files = task
    cfg = validate({"data": {"train": files["few"], "dev": files["dev"]}, "tokenizer": {"name": "word"},
                    "model": {"name": "fasttext", "embedding_dim": 16},
                    "train": {**BASE_TRAIN, "epochs": 3, "lr": 0.05, "checkpoint_every": 4,
                              "early_stopping": {"patience": None}},
                    "report": {"plots": False, "tensorboard": False},
                    "distill": {"teacher": str(hf_teacher), "transfer_data": str(root / "transfer.txt"),
                                "cache_dir": str(tmp_path / "c"), "pooled_match": {"loss": "mse"}}})
    a = distill_run(cfg, tmp_path / "full")
    save = CheckpointDir.save

    class Killed(Exception):
        pass

    def save_then_die(self, state, step):
        path = save(self, state, step)
        if step == 24:  # mid epoch 2 (21 batches of 16 per epoch)
            assert "pooled_projection" in state
            raise Killed
        return path

    monkeypatch.setattr(CheckpointDir, "save", save_then_die)
    with pytest.raises(Killed):
        distill_run(cfg, tmp_path / "killed")
    monkeypatch.setattr(CheckpointDir, "save", save)
    b = distill_run(cfg, tmp_path / "killed", resume=True)
    assert a["dev"] == b["dev"]
    rows = lambda run: [{k: v for k, v in r.items() if k != "train_seconds"}  # noqa: E731
                        for r in json.loads((run / "history.json").read_text())]
    assert rows(tmp_path / "full") == rows(tmp_path / "killed")
    wa, wb = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("full", "killed"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_bad_pooled_match_configs_are_reported(task, two_tasks):
    from textsift.config.load import ConfigError, validate
    from textsift.engines.distill import Teachers
    from textsift.errors import TextsiftError

    root, files = task
    base = {"data": {"train": files["few"]}, "model": {"name": "fasttext"}}
    with pytest.raises(ConfigError, match="pooled_match and student_layers need exactly one teacher"):
        validate({**base, "distill": {"teacher": [str(root / "teacher")] * 2, "pooled_match": {}}})
    with pytest.raises(ConfigError, match=r"distill.pooled_match.loss: .*'cos' or 'mse'"):
        validate({**base, "distill": {"teacher": str(root / "teacher"), "pooled_match": {"loss": "kl"}}})
    with pytest.raises(ConfigError, match="intermediate matches, pooled_match and student_layers need one teacher"):
        validate({"model": {"name": "fasttext"}, "distill": {"tasks": two_tasks[3], "pooled_match": {}}})
    with pytest.raises(TextsiftError, match="pooled_match needs one teacher model"):
        Teachers([str(root / "teacher"), str(root / "teacher")]).logits(["a text"], 4, pooled=True)
