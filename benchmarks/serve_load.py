"""Helpers of ``benchmarks/serve.py``: the server's life cycle, the wrk load, and the in-process
reference measurements (run as a child process: ``python benchmarks/serve_load.py KIND ...``).

In-process kinds, each printing one JSON line per measured batch size:

* ``pipeline``: Hugging Face ``pipeline("text-classification")`` around a ``BertForSequenceClassification``
  built from the run's MiniLM config and holding the run's fine-tuned encoder and head weights;
* ``textsift``: ``TextClassifier.load(EXPORT, backend=...).predict_details(batch)``, the very call the
  service's micro-batcher makes (tokenize, ONNX Runtime, records), so that service ÷ this is the cost
  of HTTP and batching alone; batch 0 = every sentence in one call (bulk scoring, length-sorted);
* ``ort-raw``: the ONNX Runtime session alone on texts tokenized and padded beforehand.

Each measurement calls the model on consecutive batches of the sentences (rotating) until
``--seconds`` have passed or ``--max-calls`` calls were made, after a few warm-up calls.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

LUA = Path(__file__).resolve().parent / "serve_post.lua"
WARMUP_CALLS = 5


# ---------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


class Server:
    """``textsift serve`` in a child process (its own session, output to ``log``), ready once /health answers."""

    def __init__(self, cmd: list[str], env: dict, log: Path, start_timeout: float):
        self.log = log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.error = self._wait_ready(cmd[cmd.index("--port") + 1], start_timeout)

    def _wait_ready(self, port: str, timeout: float) -> str | None:
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"server exited with code {self.proc.returncode}: {self.tail()}"
            try:
                http_get(self.base + "/health", 1.0)
                return None
            except OSError:
                time.sleep(0.2)
        return f"no answer on /health within {timeout:.0f} s: {self.tail()}"

    def tail(self, n: int = 2) -> str:
        lines = [ln.strip() for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        return " | ".join(lines[-n:]) or "no output"

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads), from /proc."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def batch_counters(self) -> tuple[float, float]:
        """(texts, batches) scored so far, from the service's Prometheus metrics."""
        text = http_get(self.base + "/metrics").decode()
        get = lambda name: float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))  # noqa: E731
        return get("textsift_batch_texts_sum"), get("textsift_batch_texts_count")

    def stop(self) -> None:
        """SIGTERM (graceful shutdown), SIGKILL after 30 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def run_wrk(url: str, clients: int, seconds: float, bodies: Path, max_requests: int) -> dict:
    """One closed-loop wrk run: ``clients`` connections, one request in flight on each, one wrk thread
    (an event loop that handles 64 connections easily, and leaves the other core to the server)."""
    import resource

    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(LUA),
           url + "/predict", "--", str(bodies), str(max_requests)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SERVE_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}")
    out = json.loads(line.split(" ", 1)[1])
    out["wrk_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return out


# ---------------------------------------------------------------- in-process references (child side)

def measure(call, items: list, batch: int, seconds: float, max_calls: int) -> dict:
    """texts/s and per-call latency of ``call(batch_of_items)`` over consecutive, rotating batches;
    ``batch`` 0 = all items in one call (textsift then scores them in length-sorted batches of 64)."""
    bulk, batch = batch == 0, batch or len(items)
    ring = items + items[:batch]

    def batch_at(i):
        start = (i * batch) % len(items)
        return ring[start:start + batch]

    warmup = max(1, min(WARMUP_CALLS, 64 // batch))
    for i in range(warmup):
        call(batch_at(i))
    latencies, start = [], time.perf_counter()
    while len(latencies) < max_calls and time.perf_counter() - start < seconds:
        chunk = batch_at(warmup + len(latencies))
        t0 = time.perf_counter()
        call(chunk)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    p50, p95, p99 = (1000 * np.percentile(latencies, [50, 95, 99])).tolist()
    return {"batch": batch, "bulk": bulk, "calls": len(latencies), "texts_s": len(latencies) * batch / elapsed,
            "seconds": elapsed, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def pipeline_call(run_dir: Path, max_length: int):
    """The HF pipeline on the run's fine-tuned MiniLM: encoder and head weights from ``model.safetensors``
    (keys ``encoder.*`` and ``classifier.*``), the BERT pooler from the same file (the encoder's copy,
    which textsift's mean pooling never uses, so the logits differ from textsift's: this measures speed)."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification, pipeline

    labels = json.loads((run_dir / "labels.json").read_text())["labels"]
    config = AutoConfig.from_pretrained(run_dir / "hf", num_labels=len(labels),
                                        id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)})
    model = BertForSequenceClassification(config).eval()
    state = load_file(str(run_dir / "model.safetensors"))
    encoder = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    model.bert.load_state_dict(encoder, strict=True)
    model.classifier.load_state_dict({"weight": state["classifier.weight"], "bias": state["classifier.bias"]})
    pipe = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(run_dir / "hf"),
                    device=torch.device("cpu"))

    def call(texts):
        with torch.inference_mode():
            return pipe(texts, batch_size=len(texts), truncation=True, max_length=max_length)
    return call


def textsift_call(export_dir: Path, backend: str, threads: int):
    from textsift.api import TextClassifier

    clf = TextClassifier.load(export_dir, backend=backend, threads=threads)
    return lambda texts: clf.predict_details(texts, top_k=len(clf.labels))


def ort_raw_call(export_dir: Path, backend: str, threads: int, texts: list[str]):
    """The ONNX Runtime session (and the padding of the batch) on ids tokenized before the clock starts."""
    from textsift.api import TextClassifier

    b = TextClassifier.load(export_dir, backend=backend, threads=threads).bundle
    encoded = b.encoder.encode_batch(texts, b.max_length)
    return lambda ids: b.model.batch_logits(*b.model.pad(ids)), encoded


def child_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="in-process reference measurements (one JSON line per batch size)")
    p.add_argument("kind", choices=["pipeline", "textsift", "ort-raw"])
    p.add_argument("model_dir", type=Path, help="run dir (pipeline) or export dir (textsift, ort-raw)")
    p.add_argument("--texts", type=Path, required=True, help="JSON lines with a 'text' field")
    p.add_argument("--backend", default="onnx-int8")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--max-calls", type=int, default=100_000)
    p.add_argument("--max-length", type=int, default=64)
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    texts = [json.loads(line)["text"] for line in a.texts.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = texts
    if a.kind == "pipeline":
        call = pipeline_call(a.model_dir, a.max_length)
    elif a.kind == "textsift":
        call = textsift_call(a.model_dir, a.backend, a.threads)
    else:
        call, items = ort_raw_call(a.model_dir, a.backend, a.threads, texts)
    for b in map(int, a.batches.split(",")):
        print(json.dumps(measure(call, items, b, a.seconds, a.max_calls)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
