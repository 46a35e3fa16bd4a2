"""The HTTP service, over real HTTP on loopback: `textsift serve` in a subprocess, answers equal to direct
prediction, clear 4xx errors, concurrent clients, micro-batching, metrics, graceful shutdown, and the
page in a real headless browser. Plus the micro-batcher on its own."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import make_texts, write_config, write_jsonl


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, path, body=None, raw: bytes | None = None, timeout=30):
    """(status, parsed JSON or text) of a GET (no body) or POST."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


class Server:
    def __init__(self, target, *args):
        self.port = _free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "textsift", "serve", str(target), "--port", str(self.port),
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read()}")
            try:
                if http(self.port, "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("server did not start in 60 s")

    def stop(self) -> bool:
        """SIGTERM; True when the server exited by it (uvicorn re-raises the signal after its graceful
        shutdown, so the exit status is -SIGTERM, or 0 on older uvicorn)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30) in (0, -signal.SIGTERM)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from textsift.config.load import load_config
    from textsift.engines.train_run import train_run

    root = tmp_path_factory.mktemp("serve")
    data = {s: str(write_jsonl(root / f"{s}.jsonl", make_texts(n, seed))) for s, n, seed in (("train", 150, 1), ("dev", 45, 2))}
    cfg = write_config(root / "c.yaml", data, model_name="textcnn", train={"epochs": 3, "max_length": 24})
    train_run(load_config(str(cfg)), root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def server(run):
    # a small token bound, so that collected batches are cut into several model calls in every test below
    s = Server(run, "--max-texts", "8", "--max-text-chars", "200", "--max-body-bytes", "4000",
               "--max-wait-ms", "20", "--max-batch-size", "16", "--max-batch-tokens", "30")
    yield s
    assert s.stop()


TEXTS = [" ".join(t["text"].split()) for t in make_texts(40, seed=7)]


def _expected(run, texts, top_k=3):
    from textsift.api import TextClassifier

    clf = TextClassifier.load(run)
    return [{k: v for k, v in rec.items() if k not in ("text", "probabilities")} | {"top_k": rec["top_k"][:top_k]}
            for rec in clf.predict_details(texts, top_k=len(clf.labels))]


def _close(got, expected):
    assert got["label"] == expected["label"]
    assert got["probability"] == pytest.approx(expected["probability"], abs=1e-5)
    assert [x["label"] for x in got["top_k"]] == [x["label"] for x in expected["top_k"]]


def test_single_and_batch_answers_equal_direct_prediction(server, run):
    expected = _expected(run, TEXTS[:5])
    status, single = http(server.port, "/predict", {"text": TEXTS[0]})
    assert status == 200
    _close(single, expected[0])
    status, batch = http(server.port, "/predict", {"texts": TEXTS[:5]})
    assert status == 200 and len(batch["predictions"]) == 5
    for got, exp in zip(batch["predictions"], expected):
        _close(got, exp)
    status, one = http(server.port, "/predict", {"text": TEXTS[0], "top_k": 1, "probabilities": True})
    assert len(one["top_k"]) == 1 and set(one["probabilities"]) == {"finance", "sports", "tech"}
    assert sum(one["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_health_labels_and_metrics(server):
    assert http(server.port, "/health")[1]["status"] == "ok"
    assert http(server.port, "/labels")[1] == {"task": "single_label", "labels": ["finance", "sports", "tech"]}
    http(server.port, "/predict", {"text": "stock"})
    http(server.port, "/predict", raw=b"{")
    status, text = http(server.port, "/metrics")
    assert status == 200
    assert 'textsift_requests_total{path="/predict",status="200"}' in text
    assert 'textsift_requests_total{path="/predict",status="400"}' in text
    assert 'textsift_request_seconds_bucket{le="0.005",path="/predict"}' in text
    assert "textsift_batch_texts_count" in text


@pytest.mark.parametrize("raw,status,code,message", [
    (b'{"text": "unterminated', 400, "malformed_json", "not valid JSON"),
    (b'["a", "b"]', 422, "invalid_body", "expected a JSON object, got list"),
    (b'{"txt": "a"}', 422, "invalid_body", r"unknown field\(s\) \['txt'\]"),
    (b'{"text": "a", "texts": ["b"]}', 422, "invalid_body", "exactly one of"),
    (b'{"texts": ["a", 3]}', 422, "invalid_body", "must be a list of strings"),
    (b'{"texts": []}', 422, "invalid_body", "is empty"),
    (b'{"text": "a", "top_k": 0}', 422, "invalid_body", "positive integer"),
    (json.dumps({"texts": ["a"] * 9}).encode(), 413, "too_many_texts", "9 texts .* limit is 8"),
    (json.dumps({"text": "a" * 201}).encode(), 413, "text_too_long", "text 0 has 201 characters; the limit is 200"),
    (json.dumps({"text": "a " * 2500}).encode(), 413, "body_too_large", "the limit is 4000"),
])
def test_bad_requests_get_clear_json_errors(server, raw, status, code, message):
    import re

    got_status, body = http(server.port, "/predict", raw=raw)
    assert got_status == status
    assert body["error"]["code"] == code and re.search(message, body["error"]["message"])
    assert http(server.port, "/predict", {"text": "still serving"})[0] == 200


def test_concurrent_clients_get_their_own_answers_batched_together(server, run):
    expected = {t: e for t, e in zip(TEXTS, _expected(run, TEXTS))}
    before = _batch_count(server.port)

    def client(i):
        texts = TEXTS[i::8]
        answers = [http(server.port, "/predict", {"text": t})[1] for t in texts[:3]]
        answers.append(http(server.port, "/predict", {"texts": texts[3:5]})[1]["predictions"])
        return texts, answers

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(client, range(8)))
    requests = 0
    for texts, answers in results:
        for text, answer in zip(texts[:3], answers[:3]):
            _close(answer, expected[text])
        for text, answer in zip(texts[3:5], answers[3]):
            _close(answer, expected[text])
        requests += 4
    batches = _batch_count(server.port) - before
    assert 0 < batches < requests  # concurrent requests shared model calls


def _batch_count(port) -> float:
    text = http(port, "/metrics")[1]
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith("textsift_batch_texts_count")))


def test_graceful_shutdown_finishes_in_flight_requests(run):
    s = Server(run, "--max-wait-ms", "1500")  # a lone request waits 1.5 s in the batcher
    result = {}
    t = threading.Thread(target=lambda: result.update(answer=http(s.port, "/predict", {"text": "stock market"})))
    t.start()
    time.sleep(0.5)
    assert s.stop()
    t.join(10)
    assert result["answer"][0] == 200 and result["answer"][1]["label"] in ("finance", "sports", "tech")


@pytest.mark.parametrize("spin", [[], ["--no-spin"]], ids=["spinning", "no-spin"])
def test_onnx_backend_serves_the_same_answers(run, tmp_path, spin):
    from textsift.engines.export import export_run

    export_run(run, tmp_path / "onnx", int8=True)
    s = Server(tmp_path / "onnx", "--backend", "onnx", "--threads", "1", *spin)
    try:
        assert http(s.port, "/health")[1]["backend"] == "onnx"
        expected = _expected(run, TEXTS[:4])
        for got, exp in zip(http(s.port, "/predict", {"texts": TEXTS[:4]})[1]["predictions"], expected):
            _close(got, exp)
    finally:
        assert s.stop()


def test_serve_binds_loopback_by_default_and_rejects_bad_settings(run):
    from textsift.cli.main import build_parser
    from textsift.errors import TextsiftError
    from textsift.serving.app import ServeSettings

    assert build_parser().parse_args(["serve", "x"]).host == "127.0.0.1"
    with pytest.raises(TextsiftError, match="--max-texts: expected a positive number, got 0"):
        ServeSettings(max_texts=0)
    with pytest.raises(TextsiftError, match="--max-batch-tokens: expected a positive number .*got -3"):
        ServeSettings(max_batch_tokens=-3)
    res = subprocess.run([sys.executable, "-m", "textsift", "serve", str(run) + "-missing"], capture_output=True, text=True)
    assert res.returncode == 2 and "run directory not found" in res.stderr


# ---------------------------------------------------------------- length-aware model calls
def test_length_sorted_batches_bound_texts_and_padded_tokens():
    import numpy as np

    from textsift.engines.batching import length_sorted_batches

    lengths = np.random.default_rng(0).integers(1, 60, size=200).tolist() + [500]  # one text over the bound
    batches = [b.tolist() for b in length_sorted_batches(lengths, 16, max_tokens=120)]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # every text once
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths)  # consecutive runs of the length order
    for b in batches:
        assert len(b) <= 16
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 120
    assert [500] in [[lengths[i] for i in b] for b in batches]  # too long for the bound: scored alone
    # the bound is the tightest greedy cut: the next text would have broken it
    for b, nxt in zip(batches, batches[1:]):
        assert len(b) == 16 or (len(b) + 1) * lengths[nxt[0]] > 120
    assert [len(b) for b in length_sorted_batches([5] * 10, 4)] == [4, 4, 2]  # no bound: fixed counts


def test_token_bounded_sub_batches_give_the_unsplit_results_in_order(run, monkeypatch):
    import numpy as np

    from textsift.api import TextClassifier
    from textsift.engines import batching

    clf = TextClassifier.load(run)
    texts = [" ".join(t["text"].split()[:n]) for t, n in zip(make_texts(40, seed=3), [1, 2, 3, 5, 8, 13, 21] * 6)]
    shapes = []
    pad = batching.pad_batch
    monkeypatch.setattr(batching, "pad_batch", lambda ids, *a: (shapes.append((len(ids), max(map(len, ids)))), pad(ids, *a))[1])
    clf.batch_size, clf.max_tokens = len(texts), None
    whole_probs, whole_dec = clf.scores(texts)
    assert len(shapes) == 1  # one padded call for all texts
    shapes.clear()
    clf.batch_size, clf.max_tokens = 8, 40
    probs, dec = clf.scores(texts)
    assert len(shapes) > 3 and all(n <= 8 and (n == 1 or n * width <= 40) for n, width in shapes)
    np.testing.assert_allclose(probs, whole_probs, atol=1e-5)  # same answers, each in its text's place
    assert (dec == whole_dec).all()
    one_by_one = np.concatenate([clf.scores([t])[0] for t in texts])
    np.testing.assert_allclose(probs, one_by_one, atol=1e-5)


# ---------------------------------------------------------------- the micro-batcher alone
def test_batcher_groups_concurrent_requests_up_to_the_limit():
    from textsift.serving.batcher import MicroBatcher

    calls = []

    def predict(texts):
        calls.append(list(texts))
        return [t.upper() for t in texts]

    async def main():
        b = MicroBatcher(predict, max_batch_size=5, max_wait_ms=50)
        await b.start()
        jobs = [["a", "b"], ["c"], ["d", "e"], ["f", "g", "h"], ["i"]]
        out = await asyncio.gather(*(b.submit(j) for j in jobs))
        await b.stop()
        return jobs, out

    jobs, out = asyncio.run(main())
    assert out == [[t.upper() for t in j] for j in jobs]  # each caller gets its own slice, in order
    assert all(len(c) <= 5 for c in calls) and len(calls) < len(jobs)
    assert [t for c in calls for t in c] == list("abcdefghi")  # FIFO: an overflowing request opens the next batch


def test_batcher_hands_a_failure_to_every_caller_and_keeps_running():
    from textsift.serving.batcher import MicroBatcher

    def predict(texts):
        if "boom" in texts:
            raise ValueError("boom")
        return texts

    async def main():
        b = MicroBatcher(predict, max_batch_size=8, max_wait_ms=20)
        await b.start()
        results = await asyncio.gather(b.submit(["x"]), b.submit(["boom"]), return_exceptions=True)
        after = await b.submit(["ok"])
        await b.stop()
        return results, after

    results, after = asyncio.run(main())
    assert all(isinstance(r, ValueError) for r in results) and after == ["ok"]


# ---------------------------------------------------------------- the page, in a real browser
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.skipif((not CHROMIUM or not CHROMEDRIVER) and not os.environ.get("TEXTSIFT_REQUIRE_BROWSER"),
                    reason="Debian chromium + chromium-driver not installed (.ci/run installs them)")
def test_page_shows_a_prediction_in_headless_chromium(server, run):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(f"http://127.0.0.1:{server.port}/")
        WebDriverWait(driver, 20).until(lambda d: "3 labels" in d.find_element(By.ID, "info").text)
        driver.find_element(By.ID, "text").send_keys(TEXTS[0])
        driver.find_element(By.ID, "submit").click()
        rows = WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .row"))
        expected = _expected(run, [TEXTS[0]], top_k=3)[0]
        assert [r.get_attribute("data-label") for r in rows] == [x["label"] for x in expected["top_k"]]
        assert float(rows[0].get_attribute("data-probability")) == pytest.approx(expected["top_k"][0]["probability"], abs=1e-4)
        width = rows[0].find_element(By.CSS_SELECTOR, ".fill").value_of_css_property("width")
        assert float(width.rstrip("px")) > 0  # the bar is drawn
        assert expected["label"] in driver.find_element(By.ID, "decision").text
    finally:
        driver.quit()
