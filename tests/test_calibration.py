"""Temperature scaling: fitting, ECE, the argmax guarantee, a tiny run that writes calibration.json, the
PNGs and the ECE metrics, every backend applying T, old runs without the file, and the config rules."""
from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
import torch

from conftest import make_texts, write_config, write_jsonl
from textsift.errors import TextsiftError
from textsift.reporting.calibration import expected_calibration_error, fit_temperature, nll, reliability_bins


def _synthetic(n: int, labels: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a perfectly calibrated model and labels drawn from its own softmax."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(n, labels))  # (n, labels)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    gold = np.array([rng.choice(labels, p=row) for row in p])
    return logits, gold


def test_fitted_temperature_recovers_an_overconfidence_factor_and_lowers_nll():
    logits, gold = _synthetic(4000)
    overconfident = logits * 5
    t = fit_temperature(overconfident, gold)
    assert t == pytest.approx(5.0, rel=0.1)
    assert nll(overconfident, gold, t) < nll(overconfident, gold) - 0.5
    assert expected_calibration_error(np.exp(overconfident / t) / np.exp(overconfident / t).sum(1, keepdims=True),
                                      gold) < 0.03
    assert fit_temperature(logits, gold) == pytest.approx(1.0, abs=0.1)  # already calibrated: T stays near 1
    assert fit_temperature(logits / 3, gold) == pytest.approx(1 / 3, rel=0.1)  # under-confident: T < 1


def test_separable_dev_set_keeps_t_1_instead_of_running_to_zero():
    logits = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    assert fit_temperature(logits, [0, 1, 0]) == 1.0  # every text right: NLL falls without limit as T -> 0


def test_ece_matches_a_hand_computed_example():
    probs = np.array([[0.85, 0.15], [0.85, 0.15], [0.35, 0.65], [0.55, 0.45]])
    gold = np.array([0, 1, 1, 1])
    # 10 bins: (0.8, 0.9] holds 2 texts, accuracy 0.5, confidence 0.85; (0.6, 0.7] 1 text right at 0.65;
    # (0.5, 0.6] 1 text wrong at 0.55.  ECE = (2 * 0.35 + 0.35 + 0.55) / 4 = 0.4
    assert expected_calibration_error(probs, gold, n_bins=10) == pytest.approx(0.4)
    bins = reliability_bins(probs, gold, n_bins=10)
    assert bins["count"] == [0, 0, 0, 0, 0, 1, 1, 0, 2, 0]
    assert bins["accuracy"][8] == 0.5 and bins["confidence"][8] == pytest.approx(0.85) and bins["accuracy"][0] is None
    # a confidence exactly on an edge goes to the lower bin: (0.4, 0.5]; 1.0 to the last bin
    edge = reliability_bins(np.array([[0.5, 0.5], [1.0, 0.0]]), [0, 0], n_bins=10)
    assert edge["count"][4] == 1 and edge["count"][9] == 1
    assert expected_calibration_error(np.array([[1.0, 0.0]] * 3), [0, 0, 0]) == 0.0


def test_temperature_never_changes_the_argmax():
    from textsift.data.labels import LabelScheme

    scheme = LabelScheme.create("single_label", ["a", "b", "c", "d"])
    logits = torch.randn(500, 4, generator=torch.Generator().manual_seed(0)) * 4  # (500, 4)
    base = scheme.decide(scheme.probabilities(logits).numpy())
    for t in (0.05, 0.5, 2.0, 37.0):
        scheme.temperature = t
        probs = scheme.probabilities(logits).numpy()
        np.testing.assert_array_equal(scheme.decide(probs), base)
        np.testing.assert_allclose(probs, torch.softmax(logits / t, -1).numpy(), atol=1e-6)


def _noisy(n: int, seed: int, noise: float = 0.2) -> list[dict]:
    """The tiny 3-topic texts with a fraction of labels flipped, so dev is not separated perfectly."""
    rng, rows = random.Random(seed), make_texts(n, seed)
    for row in rows:
        if rng.random() < noise:
            row["label"] = rng.choice([x for x in ("finance", "sports", "tech") if x != row["label"]])
    return rows


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from textsift.config.load import load_config
    from textsift.engines.train_run import train_run

    tmp = tmp_path_factory.mktemp("calib")
    data = {split: str(write_jsonl(tmp / f"{split}.jsonl", _noisy(n, seed)))
            for split, n, seed in (("train", 240, 1), ("dev", 90, 2), ("test", 60, 3))}
    cfg = write_config(tmp / "c.yaml", data, model_name="textcnn", model={"num_filters": 16},
                       train={"epochs": 6, "lr": 0.03, "precision": "fp32"})
    train_run(load_config(str(cfg)), tmp / "run")
    return tmp / "run"


def test_training_writes_calibration_json_diagrams_and_ece(run):
    cal = json.loads((run / "calibration.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert cal["method"] == "temperature" and cal["bins"] == 15 and cal["n_fit"] == 90
    assert cal["temperature"] > 0 and cal["temperature"] != 1.0
    assert cal["dev"]["nll"] < cal["dev"]["nll_uncalibrated"]  # the fit's objective, on its own data
    assert metrics["temperature"] == cal["temperature"]
    for split in ("dev", "test"):
        assert (run / f"reliability_{split}.png").stat().st_size > 10_000
        assert metrics[split]["ece"] == pytest.approx(cal[split]["ece"])
        assert metrics[split]["ece_uncalibrated"] == pytest.approx(cal[split]["ece_uncalibrated"])
        assert 0 <= metrics[split]["ece"] <= 1
    assert metrics["dev"]["ece"] < metrics["dev"]["ece_uncalibrated"]


def _raw_logits(bundle, texts):
    from textsift.engines.batching import predict_logits

    return predict_logits(bundle.model, bundle.encoder.encode_batch(texts, bundle.max_length), 16,
                          bundle.encoder.pad_id)


PROBE = ["stock market bank profit", "goal team the", "phone app cloud code stock", "football match"]


def test_torch_and_onnx_backends_both_apply_the_temperature(run, tmp_path):
    from textsift.api import TextClassifier
    from textsift.engines.export import export_run

    t = json.loads((run / "calibration.json").read_text())["temperature"]
    torch_clf = TextClassifier.load(run)
    expected = torch.softmax(torch.from_numpy(_raw_logits(torch_clf.bundle, PROBE)) / t, -1).numpy()
    got = np.array([[p[label] for label in torch_clf.labels] for p in torch_clf.predict_proba(PROBE)])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    export_run(run, tmp_path / "onnx")
    assert (tmp_path / "onnx" / "calibration.json").read_text() == (run / "calibration.json").read_text()
    onnx_clf = TextClassifier.load(tmp_path / "onnx", backend="onnx")
    onnx_probs = np.array([[p[label] for label in torch_clf.labels] for p in onnx_clf.predict_proba(PROBE)])
    np.testing.assert_allclose(onnx_probs, expected, atol=1e-5)
    assert onnx_clf.predict(PROBE) == torch_clf.predict(PROBE)
    # the HTTP service scores through TextClassifier.scores
    np.testing.assert_allclose(onnx_clf.scores(PROBE)[0], expected, atol=1e-5)


def test_evaluate_cli_uses_the_calibrated_probabilities(run, tmp_path, capsys):
    from textsift.cli.main import main

    assert main(["evaluate", str(run), "--data", str(run.parent / "test.jsonl"), "--report-dir",
                 str(tmp_path)]) == 0
    bad = [json.loads(line) for line in (tmp_path / "eval_badcases.jsonl").read_text().splitlines()]
    saved = [json.loads(line) for line in (run / "reports" / "test_badcases.jsonl").read_text().splitlines()]
    assert bad and bad == saved  # same calibrated probabilities as the training run's test report


def test_old_run_without_calibration_json_loads_with_t_1(run, tmp_path):
    from textsift.api import TextClassifier

    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / "calibration.json").unlink()
    clf = TextClassifier.load(old)
    assert clf.bundle.scheme.temperature == 1.0
    expected = torch.softmax(torch.from_numpy(_raw_logits(clf.bundle, PROBE)), -1).numpy()
    np.testing.assert_allclose(clf.scores(PROBE)[0], expected, atol=1e-6)
    assert clf.predict(PROBE) == TextClassifier.load(run).predict(PROBE)


def test_a_damaged_calibration_file_is_a_clear_error(run, tmp_path):
    from textsift.api import TextClassifier

    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    (bad / "calibration.json").write_text('{"temperature": -2}')
    with pytest.raises(TextsiftError, match=r"calibration.json: expected a positive number .* found -2"):
        TextClassifier.load(bad)


def test_method_none_and_multi_label_skip_calibration(tiny_data, tiny_multi, tmp_path, caplog):
    from textsift.config.load import load_config
    from textsift.engines.train_run import train_run

    cfg = write_config(tmp_path / "n.yaml", tiny_data, train={"epochs": 1}, calibration={"method": "none"})
    metrics = train_run(load_config(str(cfg)), tmp_path / "none")
    assert not (tmp_path / "none" / "calibration.json").exists() and "temperature" not in metrics
    cfg = write_config(tmp_path / "m.yaml", tiny_multi, train={"epochs": 1})
    with caplog.at_level("INFO", logger="textsift"):
        metrics = train_run(load_config(str(cfg)), tmp_path / "multi")
    assert "calibration: skipped for a multi_label task" in caplog.text
    assert not (tmp_path / "multi" / "calibration.json").exists() and "ece" not in metrics["dev"]


def test_explicit_temperature_for_multi_label_is_a_config_error(tiny_multi, tmp_path):
    from textsift.config.load import load_config
    from textsift.engines.train_run import train_run

    # task given in the config: validation refuses it
    cfg = write_config(tmp_path / "a.yaml", tiny_multi, task="multi_label", calibration={"method": "temperature"})
    with pytest.raises(TextsiftError, match="temperature scaling applies to single_label models"):
        load_config(str(cfg))
    # task inferred from the data: refused before any training
    cfg = write_config(tmp_path / "b.yaml", tiny_multi, calibration={"method": "temperature"})
    with pytest.raises(TextsiftError, match="but the task is multi_label"):
        train_run(load_config(str(cfg)), tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()
    cfg = write_config(tmp_path / "c.yaml", tiny_multi, calibration={"bins": 1})
    with pytest.raises(TextsiftError, match="calibration.bins"):
        load_config(str(cfg))


def test_kfold_ensemble_is_calibrated_on_dev_averaged_logits(tmp_path):
    from textsift.api import TextClassifier
    from textsift.config.load import load_config
    from textsift.engines.train_run import train_run

    data = {split: str(write_jsonl(tmp_path / f"{split}.jsonl", _noisy(n, seed)))
            for split, n, seed in (("train", 150, 1), ("dev", 60, 2))}
    cfg = write_config(tmp_path / "k.yaml", data, train={"epochs": 2, "kfold": 2, "lr": 0.05})
    metrics = train_run(load_config(str(cfg)), tmp_path / "run")
    run = tmp_path / "run"
    t = json.loads((run / "calibration.json").read_text())["temperature"]
    assert metrics["temperature"] == t != 1.0 and "ece_uncalibrated" in metrics["dev"]
    assert (run / "folds" / "fold-0" / "calibration.json").is_file()  # each fold on its held-out part
    clf = TextClassifier.load(run)
    assert clf.bundle.scheme.temperature == t
    expected = torch.softmax(torch.from_numpy(clf.bundle.model.logits(PROBE, 8)) / t, -1).numpy()
    np.testing.assert_allclose(clf.scores(PROBE)[0], expected, atol=1e-6)


def test_dynamic_quantization_keeps_the_temperature(run, tmp_path):
    from textsift.engines.quantize import quantize_run
    from textsift.rundir import load_bundle

    quantize_run(run, tmp_path / "int8", method="dynamic")
    assert load_bundle(tmp_path / "int8").scheme.temperature == load_bundle(run).scheme.temperature != 1.0


def test_http_service_serves_the_calibrated_probabilities(run):
    from test_serve import Server, http
    from textsift.api import TextClassifier

    t = json.loads((run / "calibration.json").read_text())["temperature"]
    bundle = TextClassifier.load(run).bundle
    expected = torch.softmax(torch.from_numpy(_raw_logits(bundle, PROBE)) / t, -1).numpy()
    server = Server(run, "--threads", "1")
    try:
        status, body = http(server.port, "/predict", {"texts": PROBE, "probabilities": True})
    finally:
        assert server.stop()
    assert status == 200
    got = np.array([[p["probabilities"][label] for label in bundle.scheme.labels] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)  # the service rounds to 6 decimals
