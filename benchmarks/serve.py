"""Serving benchmark: textsift's HTTP service under load, against in-process references.

For a fine-tuned MiniLM-L6 and a TextCNN (both on sst2_sentence): texts/s and p50/p95/p99 latency of
``textsift serve`` (FastAPI + micro-batching) with the torch, onnx and onnx-int8 backends at 1, 8 and
64 concurrent clients, each request one real sst2 test sentence; and, in the same run on the same
sentences, in-process references: the Hugging Face ``pipeline`` on the same-size MiniLM at batch 1
and 32, and textsift's ``predict_details`` with ONNX Runtime int8 at batch 1, 32, 64 and all at once.

    .venv/bin/python benchmarks/serve.py      # everything: ~10 min, +3 min the first time (training)
    .venv/bin/python benchmarks/serve.py --models textcnn --clients 1,8 --seconds 2 --out /tmp/smoke.md

The load generator is wrk (``apt-get install wrk``; ``benchmarks/serve_post.lua``): closed loop, one
request in flight per client, bounded by ``--seconds`` and ``--max-requests``. Trained runs and their
exports are cached in ``benchmarks/.cache/serve/`` (``--retrain`` redoes them). Prints a markdown
table and the verdicts on the targets and writes both to ``--out`` (raw rows in the ``.json`` beside).
Not a unit test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import REPO_ROOT, default_data_dir, find_splits, read_jsonl  # noqa: E402
from pretrained import (GET_ASSETS, OFFLINE_ENV, cpu_model, default_assets_dir, logged_precision,  # noqa: E402
                        missing_assets)
from serve_load import Server, free_port, run_wrk  # noqa: E402
from textsift_run import find_cli  # noqa: E402

# model key -> (preset, overrides): MiniLM gets one epoch (this measures speed, and sst2 is near its
# best after one), TextCNN its preset as shipped (GloVe 50d init, early stopping).
MODELS = {"minilm": ("sst2_sentence_minilm", ["train.epochs=1"]),
          "textcnn": ("sst2_sentence_textcnn_glove", [])}
BACKENDS = ("torch", "onnx", "onnx-int8")
CACHE = REPO_ROOT / "benchmarks" / ".cache" / "serve"
THROUGHPUT_X, LATENCY_X, HTTP_SHARE = 4.0, 0.5, 0.8


def log(msg: str) -> None:
    print(f"[serve] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- models: train + export, cached

def prepare_model(key: str, env: dict, limit: int | None, retrain: bool) -> tuple[Path, Path, dict]:
    """(run dir, export dir, recipe) of ``key``, trained and exported (with int8) unless cached."""
    preset, overrides = MODELS[key]
    overrides = overrides + ["train.progress=false"] + ([f"data.limit={limit}"] if limit else [])
    folder = CACHE / f"{key}-{limit or 'full'}"
    run, export = folder / "run", folder / "export"
    rel = lambda path: str(path.relative_to(REPO_ROOT))  # noqa: E731 (the commands run in the repo root)
    recipe = {"train": ["textsift", "train", "-c", preset, "--run-dir", rel(run), *overrides],
              "export": ["textsift", "export", rel(run), "--out", rel(export), "--int8", "--overwrite"]}
    stamp = folder / "recipe.json"
    cached = stamp.is_file() and json.loads(stamp.read_text()) == recipe and (export / "model.int8.onnx").is_file()
    if cached and not retrain:
        log(f"{key}: cached run and export in {folder}")
        return run, export, recipe
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cli = str(find_cli())
    for step in ("train", "export"):
        log(f"{key}: {shlex.join(recipe[step])}")
        done = subprocess.run([cli, *recipe[step][1:]], env=env, capture_output=True, text=True, cwd=REPO_ROOT)
        (folder / f"{step}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"{key}: textsift {step} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    shutil.rmtree(run / "checkpoints", ignore_errors=True)  # resume state (optimizer moments): 4x the model, unused
    stamp.write_text(json.dumps(recipe, indent=1))
    return run, export, recipe


def test_accuracy(run: Path) -> float | None:
    try:
        return json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    except (OSError, KeyError, ValueError):
        return None


# ---------------------------------------------------------------- the service rows

def service_rows(key: str, run: Path, export: Path, backend: str, args, env: dict, bodies: Path) -> list[dict]:
    """Start ``textsift serve`` for one backend, load it at each client count, stop it."""
    port, target = free_port(), run if backend == "torch" else export
    cmd = [str(find_cli()), "serve", str(target), "--backend", backend, "--port", str(port),
           "--threads", str(args.threads), "--max-batch-size", str(args.max_batch_size),
           "--max-wait-ms", str(args.max_wait_ms), "--model-batch-size", str(args.model_batch_size),
           "--max-batch-tokens", str(args.max_batch_tokens),
           "--graceful-timeout", "5"]
    base = {"model": key, "system": "service", "backend": backend, "command": shlex.join(["textsift", *cmd[1:]]),
            **({"precision": logged_precision(run)} if backend == "torch" else {})}
    log(f"{key} {backend}: starting the server on port {port}")
    server = Server(cmd, env, CACHE / f"server-{key}-{backend}.log", args.start_timeout)
    rows = []
    try:
        if server.error:
            return [{**base, "clients": c, "na": server.error} for c in args.clients]
        for clients in args.clients:
            rows.append({**base, "clients": clients, **load_once(server, clients, args, bodies)})
            log(f"{key} {backend} {clients} client(s): {summary(rows[-1])}")
    finally:
        server.stop()
    return rows


def load_once(server: Server, clients: int, args, bodies: Path) -> dict:
    try:
        run_wrk(server.base, clients, args.warmup, bodies, args.max_requests)  # JIT paths, ORT arenas, pools
        texts0, batches0 = server.batch_counters()
        cpu0, wall0 = server.cpu_seconds(), time.perf_counter()
        r = run_wrk(server.base, clients, args.seconds, bodies, args.max_requests)
        cpu1, wall = server.cpu_seconds(), time.perf_counter() - wall0
        texts1, batches1 = server.batch_counters()
    except Exception as e:  # a dead server or wrk failure is a row, not the end of the benchmark
        return {"na": f"{type(e).__name__}: {str(e)[:300]} (server: {server.tail()})"}
    secs = r["seconds"] or float("nan")  # first request to last answer; CPU % is over wrk's whole run
    return {"texts_s": r["responses"] / secs, "p50_ms": r["p50_us"] / 1000, "p95_ms": r["p95_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000, "errors": r["non_200"] + r["socket_errors"] + r["timeouts"],
            "requests": r["responses"], "seconds": r["seconds"],
            "mean_batch": (texts1 - texts0) / max(batches1 - batches0, 1),
            "server_cpu_pct": 100 * (cpu1 - cpu0) / wall, "wrk_cpu_pct": 100 * r["wrk_cpu_s"] / wall, "wrk": r}


# ---------------------------------------------------------------- in-process references

def reference_rows(key: str, kind: str, folder: Path, batches: list[int], args, env: dict, texts: Path,
                   max_length: int) -> list[dict]:
    system = {"pipeline": "HF pipeline", "textsift": "in-process textsift", "ort-raw": "in-process ORT session"}[kind]
    cmd = [sys.executable, str(Path(__file__).with_name("serve_load.py")), kind, str(folder), "--texts", str(texts),
           "--batches", ",".join(map(str, batches)), "--threads", str(args.threads), "--seconds", str(args.seconds),
           "--max-calls", str(args.max_requests), "--max-length", str(max_length), "--backend", "onnx-int8"]
    base = {"model": key, "system": system, "backend": "torch fp32" if kind == "pipeline" else "onnx-int8"}
    log(f"{key}: {system} at batch {', '.join(map(str, batches))}")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=len(batches) * (args.seconds + 60) + 300)
    found = [json.loads(ln) for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not found:
        tail = " | ".join(done.stderr.strip().splitlines()[-2:]) or f"exit code {done.returncode}"
        return [{**base, "batch": b, "na": tail} for b in batches]
    rows = [{**base, **r, "errors": 0, "requests": r["calls"]} for r in found]
    for r in rows:
        log(f"{key} {system} batch {r['batch']}: {summary(r)}")
    return rows


# ---------------------------------------------------------------- report

def summary(r: dict) -> str:
    if r.get("na"):
        return f"n/a: {r['na']}"
    return f"{r['texts_s']:.0f} texts/s, p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, errors {r['errors']}"


def table(rows: list[dict]) -> str:
    head = ["| model | system | backend | load | texts/s | p50 ms | p95 ms | p99 ms | errors | requests "
            "| mean batch | CPU % server / wrk |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    out = []
    for r in rows:
        load = f"{r['clients']} client{'s' * (r['clients'] > 1)}" if "clients" in r else f"batch {r['batch']}"
        load = f"all {r['batch']} texts in one call" if r.get("bulk") else load
        backend = f"{r['backend']} ({r['precision']})" if r.get("precision") else r["backend"]
        cells = [r["model"], r["system"], backend, load]
        if r.get("na"):
            out.append("| " + " | ".join(cells + [f"n/a: {r['na']}"] + [""] * 7) + " |")
            continue
        cpu = f"{r['server_cpu_pct']:.0f} / {r['wrk_cpu_pct']:.0f}" if "server_cpu_pct" in r else ""
        batch = f"{r['mean_batch']:.1f}" if "mean_batch" in r else ""
        cells += [f"{r['texts_s']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}", f"{r['p99_ms']:.2f}",
                  str(r["errors"]), str(r["requests"]), batch, cpu]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(head + out)


def ok(flag: bool) -> str:
    return "**PASS**" if flag else "**FAIL**"


def verdicts(rows: list[dict]) -> list[str]:
    good = [r for r in rows if not r.get("na")]
    lines = target_pipeline(good)
    for key in dict.fromkeys(r["model"] for r in rows):
        lines.append(target_overhead(good, key))
    return lines


def target_pipeline(rows: list[dict]) -> list[str]:
    """Target 1 (MiniLM): service ≥ 4x the pipeline's batch-1 texts/s with p95 ≤ half the pipeline's."""
    pipe = next((r for r in rows if r["system"] == "HF pipeline" and r["batch"] == 1), None)
    service = [r for r in rows if r["model"] == "minilm" and r["system"] == "service"]
    if pipe is None or not service:
        return ["- target 1 (MiniLM service vs HF pipeline): n/a (needs the minilm service rows and the pipeline rows)"]
    best = max(service, key=lambda r: r["texts_s"])
    x = best["texts_s"] / pipe["texts_s"]
    lines = [f"- target 1a, throughput: best service row {best['backend']} at {best['clients']} clients, "
             f"{best['texts_s']:.0f} texts/s = {x:.2f}x the pipeline's {pipe['texts_s']:.0f} texts/s at batch 1 "
             f"(target ≥ {THROUGHPUT_X:g}x): {ok(x >= THROUGHPUT_X)}"]
    pipe32 = next((r for r in rows if r["system"] == "HF pipeline" and r["batch"] > 1), None)
    if pipe32:
        lines[-1] += f" ({best['texts_s'] / pipe32['texts_s']:.2f}x the pipeline at batch {pipe32['batch']})"
    single = [r for r in service if r["clients"] == 1]
    if single:
        fast = min(single, key=lambda r: r["p95_ms"])
        y = fast["p95_ms"] / pipe["p95_ms"]
        lines.append(f"- target 1b, latency at one client (the pipeline's own setting): best service p95 "
                     f"{fast['p95_ms']:.2f} ms ({fast['backend']}) = {y:.2f}x the pipeline's {pipe['p95_ms']:.2f} ms "
                     f"(target ≤ {LATENCY_X:g}x): {ok(y <= LATENCY_X)}")
    both = [r for r in service if r["texts_s"] >= THROUGHPUT_X * pipe["texts_s"] and r["p95_ms"] <= LATENCY_X * pipe["p95_ms"]]
    lines.append("- target 1, strict reading (one service row meets both at once): "
                 + (ok(True) + ": " + ", ".join(f"{r['backend']} at {r['clients']} clients ({r['texts_s']:.0f} texts/s, "
                                                f"p95 {r['p95_ms']:.2f} ms)" for r in both) if both else ok(False)))
    return lines


def target_overhead(rows: list[dict], key: str) -> str:
    """Target 2: the service (onnx-int8, most clients) ≥ 80% of the best in-process ORT int8 texts/s (any
    batch size: batching does not pay for every model, e.g. int8 convolutions)."""
    service = [r for r in rows if r["model"] == key and r["system"] == "service" and r["backend"] == "onnx-int8"]
    inproc = [r for r in rows if r["model"] == key and r["system"] == "in-process textsift" and not r.get("bulk")]
    bulk = next((r for r in rows if r["model"] == key and r["system"] == "in-process textsift" and r.get("bulk")), None)
    if not service or not inproc:
        return f"- target 2 ({key}): n/a (needs its onnx-int8 service rows and in-process textsift rows)"
    s, ref = max(service, key=lambda r: r["clients"]), max(inproc, key=lambda r: r["texts_s"])
    x = s["texts_s"] / ref["texts_s"]
    note = "" if s["clients"] == 64 else f" (64 clients not measured; {s['clients']} is the most here)"
    return (f"- target 2 ({key}): service onnx-int8 at {s['clients']} clients {s['texts_s']:.0f} texts/s = {x:.2f} "
            f"of in-process ONNX Runtime int8 at batch {ref['batch']}, {ref['texts_s']:.0f} texts/s "
            f"(target ≥ {HTTP_SHARE:g}){note}: {ok(x >= HTTP_SHARE)}"
            + (f" (and {s['texts_s'] / bulk['texts_s']:.2f} of in-process bulk scoring, {bulk['texts_s']:.0f} texts/s "
               "in length-sorted batches, which a server cannot do with requests that arrive one by one)" if bulk else ""))


def machine_line() -> str:
    versions = []
    for pkg in ("textsift", "torch", "onnxruntime", "transformers", "fastapi", "uvicorn", "uvloop", "httptools"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{pkg} not installed")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split(" [")[0].strip()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.node()}: {cpu_model()}, {os.cpu_count()} CPUs, load average {load} (1/5/15 min) at the end; "
            f"Python {platform.python_version()}; {'; '.join(versions)}; {wrk}")


def method_notes(args, recipes: dict) -> list[str]:
    lines = [
        f"Threads: {args.threads} for every system (the machine's {os.cpu_count()} cores): ONNX Runtime intra-op "
        f"threads (`--threads`), torch threads (`OMP_NUM_THREADS`, `torch.set_num_threads`); HF tokenizers single-"
        f"threaded (`TOKENIZERS_PARALLELISM=false`, textsift's default). The service shares the cores with wrk "
        f"(one thread); the in-process rows have the cores to themselves.",
        f"Service: `textsift serve EXPORT_OR_RUN --backend B --threads {args.threads} --max-batch-size "
        f"{args.max_batch_size} --max-wait-ms {args.max_wait_ms:g} --model-batch-size {args.model_batch_size} "
        f"--max-batch-tokens {args.max_batch_tokens}`, one server per model and backend (torch serves "
        f"the run, the ONNX backends its export), loaded at each client count in turn: {args.warmup:g} s of warm-up "
        f"load, then {args.seconds:g} s measured (at most {args.max_requests} requests). wrk: closed loop, one "
        f"request in flight per client, each `POST /predict` `{{\"text\": ...}}` with the next sst2 test sentence; "
        f"texts/s = answers / (first request → last answer); latency = wrk's per-request histogram; errors = "
        f"non-200 answers + socket errors + timeouts (30 s); mean batch = texts per model call from the "
        f"service's /metrics; CPU % = CPU seconds / wall seconds (200% = both cores).",
        "HF pipeline: `pipeline(\"text-classification\")` around `BertForSequenceClassification` built from the "
        "run's MiniLM config, holding the run's fine-tuned encoder and linear head weights (fp32). The BERT "
        "pipeline pools the [CLS] token through BERT's pooler (the encoder's unused copy from the run) while "
        "textsift mean-pools, so its labels differ: this row measures the speed of the same-size model, not its "
        "accuracy. Truncation to the run's max_length, `batch_size` = the batch. Latency per call (per batch).",
        "In-process textsift: `TextClassifier.load(EXPORT, backend=\"onnx-int8\").predict_details(batch, top_k=all)`, "
        "the call the service's batcher makes (tokenize, ONNX Runtime, records), on consecutive batches of "
        "the sentences (mixed lengths, padded to the longest, as in the service's batches); \"all N texts in one "
        "call\": every sentence in one `predict_details` call, which sorts them by length into batches of 64 "
        "(offline bulk scoring; not the target's denominator). In-process ORT session: ONNX Runtime alone on "
        "ids tokenized beforehand. Latency per call.",
        "torch backend: the run's `train.precision` (auto) resolved as in training: bf16 autocast for MiniLM on a "
        "CPU with AMX / AVX-512 BF16, fp32 for TextCNN; shown next to the backend.",
    ]
    for key, (run, recipe) in recipes.items():
        acc = test_accuracy(run)
        lines.append(f"{key}: `{shlex.join(recipe['train'])}` then `{shlex.join(recipe['export'])}`; test "
                     f"accuracy {f'{100 * acc:.2f}%' if acc is not None else 'n/a'} (run's metrics.json, torch)")
    if args.train_limit:
        lines.append(f"--train-limit {args.train_limit}: models trained on the first {args.train_limit} examples "
                     "(a smoke run; the speed is that of the same models)")
    return [ln for ln in lines if ln]


def write_outputs(out: Path, rows: list[dict], verdict_lines: list[str], notes: list[str], started, args) -> str:
    command = shlex.join([".venv/bin/python", "benchmarks/serve.py", *sys.argv[1:]])
    took = (dt.datetime.now() - started).total_seconds() / 60
    tables = ["## Results", "", table(rows), "", "## Targets", "",
              f"1. MiniLM service ≥ {THROUGHPUT_X:g}x the HF pipeline's throughput, with p95 ≤ {LATENCY_X:g}x its p95.",
              f"2. At 64 clients the service (onnx-int8) ≥ {HTTP_SHARE:.0%} of the same model's in-process ONNX "
              "Runtime int8 throughput (the best in-process textsift row, whatever its batch size).", "", *verdict_lines]
    text = "\n".join(["# Serving benchmark", "", f"- date: {started:%Y-%m-%d %H:%M} (local), took {took:.1f} min",
                      f"- command: `{command}`", f"- machine: {machine_line()}", "", *tables, "",
                      "## How it was measured", "", *[f"- {n}" for n in notes], ""])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    meta = {"date": f"{started:%Y-%m-%d %H:%M}", "command": command, "machine": machine_line(),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "notes": notes}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows, "verdicts": verdict_lines},
                                                   indent=1, default=str), encoding="utf-8")
    return "\n".join(tables)


# ---------------------------------------------------------------- main

def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="minilm,textcnn", help="comma-separated: minilm, textcnn")
    p.add_argument("--backends", default=",".join(BACKENDS), help="service backends: torch, onnx, onnx-int8")
    p.add_argument("--clients", default="1,8,64", help="concurrent clients (wrk connections), comma-separated")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="measured seconds per row (default 10; whole seconds for the service rows, as wrk takes)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measured row")
    p.add_argument("--max-requests", type=int, default=100_000, help="bound on requests/calls per row")
    p.add_argument("--threads", type=int, default=2, help="inference threads for every system (default 2)")
    p.add_argument("--max-batch-size", type=int, default=64, help="textsift serve --max-batch-size")
    p.add_argument("--max-wait-ms", type=float, default=0.0, help="textsift serve --max-wait-ms")
    p.add_argument("--model-batch-size", type=int, default=64, help="textsift serve --model-batch-size")
    p.add_argument("--max-batch-tokens", type=int, default=256,
                   help="textsift serve --max-batch-tokens (0: no token bound)")
    p.add_argument("--no-reference", action="store_true", help="service rows only (no pipeline / in-process rows)")
    p.add_argument("--train-limit", type=int, default=None, help="train on the first N examples (smoke runs)")
    p.add_argument("--retrain", action="store_true", help="train and export again even when cached")
    p.add_argument("--start-timeout", type=float, default=180.0, help="seconds a server may take to answer /health")
    p.add_argument("--data-dir", type=Path, default=None, help="default: $TEXTSIFT_DATA, else ../shared/datasets")
    p.add_argument("--assets-dir", type=Path, default=None,
                   help="default: $TEXTSIFT_ASSETS, else ~/.cache/textsift-assets (minilm-l6/, glove-6b-50d/)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "serve.md",
                   help="markdown report; raw rows in the same name with .json")
    a = p.parse_args(argv)
    a.models, a.backends, a.clients = a.models.split(","), a.backends.split(","), _ints(a.clients)
    bad = [m for m in a.models if m not in MODELS] + [b for b in a.backends if b not in BACKENDS]
    if bad or not a.clients or min(a.clients) < 1 or a.seconds <= 0 or a.max_requests < 1:
        p.error(f"unknown {', '.join(bad)}" if bad else "--clients, --seconds and --max-requests must be positive")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now()
    if shutil.which("wrk") is None:
        print("error: wrk not found; install it with `apt-get install wrk`", file=sys.stderr)
        return 2
    data_dir = (args.data_dir or default_data_dir()).resolve()
    assets = (args.assets_dir or default_assets_dir()).expanduser().resolve()
    problems = missing_assets(assets / "minilm-l6" if "minilm" in args.models else None,
                              [assets / "glove-6b-50d" / "vectors.txt"] if "textcnn" in args.models else [])
    if problems:
        print("error: pretrained assets missing:\n  " + "\n  ".join(problems) + f"\nfetch them with "
              f"`{GET_ASSETS} {assets}`, or point --assets-dir / $TEXTSIFT_ASSETS at them", file=sys.stderr)
        return 2
    # Children: offline (never the hub), the benchmark's thread count, single-threaded tokenizers.
    env = {**os.environ, **OFFLINE_ENV, "TEXTSIFT_DATA": str(data_dir), "TEXTSIFT_ASSETS": str(assets),
           "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    texts, _ = read_jsonl(find_splits(data_dir, "sst2_sentence").test)
    work = Path(tempfile.mkdtemp(prefix="textsift-serve-"))
    bodies = work / "bodies.jsonl"  # one request body per line, for wrk and the in-process children alike
    bodies.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    rows, recipes = [], {}
    try:
        for key in args.models:
            run, export, recipe = prepare_model(key, env, args.train_limit, args.retrain)
            recipes[key] = (run, recipe)
            for backend in args.backends:
                rows += service_rows(key, run, export, backend, args, env, bodies)
            if not args.no_reference:
                max_length = int(json.loads((export / "export.json").read_text())["max_length"])
                if key == "minilm":
                    rows += reference_rows(key, "pipeline", run, [1, 32], args, env, bodies, max_length)
                rows += reference_rows(key, "textsift", export, [1, 32, 64, 0], args, env, bodies, max_length)
                rows += reference_rows(key, "ort-raw", export, [1, 32], args, env, bodies, max_length)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = write_outputs(args.out, rows, verdicts(rows), method_notes(args, recipes), started, args)
    print(report)
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
