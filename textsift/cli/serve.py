from __future__ import annotations

HELP = "Serve a trained run (or an ONNX export) over HTTP: /predict, /health, /labels, /metrics and a page at /."
EXAMPLES = """examples:
  textsift serve runs/thucnews                                   # http://127.0.0.1:8000/
  textsift serve exports/minilm --backend onnx-int8 --port 8080 --threads 2
  textsift serve runs/thucnews --host 0.0.0.0 --max-batch-size 64 --max-wait-ms 2
  curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"texts": ["国足客场两球不敌日本队"], "top_k": 2}'
"""


def add_backend_arguments(p) -> None:
    """``--backend``, ``--threads``, ``--no-spin`` and ``--precision``, shared by predict, evaluate and serve."""
    from textsift.engines.onnx_backend import BACKENDS
    from textsift.rundir import PRECISIONS

    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="torch: the run's PyTorch weights; onnx / onnx-int8: an export folder, with ONNX Runtime")
    p.add_argument("--threads", type=int, default=0,
                   help="ONNX Runtime intra-op threads (0: all cores); torch uses OMP_NUM_THREADS")
    p.add_argument("--no-spin", action="store_true",
                   help="ONNX Runtime threads sleep between model calls instead of spinning: less CPU burnt "
                        "on a shared machine, slower answers (MiniLM int8 here: one-client p95 4.8 vs 3.2 ms)")
    p.add_argument("--precision", default="run", choices=PRECISIONS,
                   help="torch backend: forward passes as the run trained (run, the default), or fp32 / bf16 "
                        "autocast whatever it trained in; bf16 pays off on CPUs with AVX-512 BF16 or AMX "
                        "(a 384-d BiLSTM here: ~1.9x the texts/s) at the cost of bf16 rounding in the scores")


def add_arguments(p) -> None:
    from textsift.serving.app import ServeSettings

    d = ServeSettings()
    p.add_argument("run_dir", help="a run directory (torch backend) or an export folder (onnx backends)")
    add_backend_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch-size", type=int, default=d.max_batch_size, help="most texts per model call")
    p.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms,
                   help="hold a batch open this long for more requests (default 0: batches still form "
                        "while the model is busy)")
    p.add_argument("--model-batch-size", type=int, default=d.model_batch_size,
                   help="most texts per model call: a batch is sorted by length and cut into model calls")
    p.add_argument("--max-batch-tokens", type=int, default=d.max_batch_tokens,
                   help=f"most padded token positions (texts x longest text) per model call (default "
                        f"{d.max_batch_tokens}; 0: no token bound, calls of --model-batch-size texts)")
    p.add_argument("--max-texts", type=int, default=d.max_texts, help="most texts per request (413 above)")
    p.add_argument("--max-text-chars", type=int, default=d.max_text_chars, help="longest text in characters (413)")
    p.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes, help="largest request body (413)")
    p.add_argument("--top-k", type=int, default=d.default_top_k, help="labels listed per text unless a request says")
    p.add_argument("--graceful-timeout", type=float, default=30.0,
                   help="seconds in-flight requests get to finish after SIGTERM/Ctrl-C")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])


def run(args) -> int:
    import sys

    import uvicorn

    from textsift.api import TextClassifier
    from textsift.serving.app import ServeSettings, create_app

    settings = ServeSettings(max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                             model_batch_size=args.model_batch_size, max_batch_tokens=args.max_batch_tokens or None,
                             max_texts=args.max_texts,
                             max_text_chars=args.max_text_chars, max_body_bytes=args.max_body_bytes,
                             default_top_k=args.top_k)
    # spinning ONNX Runtime threads answer sooner and, with the lean /predict path, did not starve the
    # event loop (2 cores, MiniLM int8: 64 clients 674 vs 603 texts/s, one-client p95 3.2 vs 4.8 ms), at
    # the price of CPU burnt while they wait: --no-spin for machines shared with other work
    clf = TextClassifier.load(args.run_dir, backend=args.backend, threads=args.threads, spinning=not args.no_spin,
                              precision=args.precision)
    if args.backend != "torch":
        # torch only computes the softmax of each batch here: its thread pool, woken for a (batch, labels)
        # tensor, competed with ONNX Runtime's threads for the cores (milliseconds per batch under load)
        import torch

        torch.set_num_threads(1)
    app = create_app(clf, settings, args.backend)
    runtime = args.backend
    if args.backend == "torch":   # the precision its forward passes run in (--precision)
        from textsift.precision import precision_name

        runtime += ", " + precision_name(getattr(clf._bundle.model, "amp_dtype", None))
    print(f"textsift serving {args.run_dir} ({runtime}, {clf.task}, {len(clf.labels)} labels) on "
          f"http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=args.graceful_timeout, access_log=False)
    return 0
