"""The HTTP service: a FastAPI app around a loaded ``TextClassifier`` and a ``MicroBatcher``.

Endpoints: ``POST /predict``, ``GET /health``, ``GET /labels``, ``GET /metrics`` (Prometheus text
format) and ``GET /`` (a page to try the model). Every error is JSON ``{"error": {"code", "message"}}``
with a 4xx status that says what was wrong; the service never answers a bad request with a 500.
"""

import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from textsift.serving.batcher import MicroBatcher


@dataclass
class ServeSettings:
    """Limits and batching of ``textsift serve`` (each is a command-line option)."""

    # measured on MiniLM-L6 int8 at 64 clients (benchmarks/serve.py): batches of up to 64 texts scored in
    # length-sorted groups of 16 gave ~10% more throughput than 32 / 8, groups of 4 about 15% less
    max_batch_size: int = 64
    max_wait_ms: float = 0.0
    model_batch_size: int = 16
    max_texts: int = 64
    max_text_chars: int = 10_000
    max_body_bytes: int = 1_000_000
    default_top_k: int = 3

    def __post_init__(self):
        for name in ("max_batch_size", "max_texts", "max_text_chars", "max_body_bytes", "default_top_k",
                     "model_batch_size"):
            if getattr(self, name) < 1:
                from textsift.errors import TextsiftError
                raise TextsiftError(f"--{name.replace('_', '-')}: expected a positive number, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            from textsift.errors import TextsiftError
            raise TextsiftError(f"--max-wait-ms: expected 0 or more, got {self.max_wait_ms}")


class RequestError(Exception):
    """A client error: HTTP ``status``, a short machine-readable ``code`` and a human ``message``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_predict_body(raw: bytes, settings: ServeSettings, num_labels: int) -> tuple[list[str], bool, int, bool]:
    """``(texts, single, top_k, all_probabilities)`` from a ``/predict`` body, or a ``RequestError``."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(400, "malformed_json", f"the body is not valid JSON ({e}); send e.g. "
                                                  '{"text": "..."} or {"texts": ["...", "..."]}') from None
    if not isinstance(body, dict):
        raise RequestError(422, "invalid_body", f"expected a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - {"text", "texts", "top_k", "probabilities"})
    if unknown:
        raise RequestError(422, "invalid_body", f"unknown field(s) {unknown}; expected text or texts, "
                                                "and optionally top_k and probabilities")
    if ("text" in body) == ("texts" in body):
        raise RequestError(422, "invalid_body", 'expected exactly one of "text" (a string) or "texts" (a list of strings)')
    single = "text" in body
    texts = [body["text"]] if single else body["texts"]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        where = '"text" must be a string' if single else '"texts" must be a list of strings'
        raise RequestError(422, "invalid_body", where)
    if not texts:
        raise RequestError(422, "invalid_body", '"texts" is empty; send at least one text')
    if len(texts) > settings.max_texts:
        raise RequestError(413, "too_many_texts", f"{len(texts)} texts in one request; the limit is "
                                                  f"{settings.max_texts} (split the request, or raise --max-texts)")
    for i, t in enumerate(texts):
        if len(t) > settings.max_text_chars:
            raise RequestError(413, "text_too_long", f"text {i} has {len(t)} characters; the limit is "
                                                     f"{settings.max_text_chars} (raise --max-text-chars)")
    top_k = body.get("top_k", settings.default_top_k)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise RequestError(422, "invalid_body", f'"top_k" must be a positive integer, got {top_k!r}')
    top_k = min(top_k, num_labels)  # asking for more labels than there are lists them all
    probabilities = body.get("probabilities", False)
    if not isinstance(probabilities, bool):
        raise RequestError(422, "invalid_body", f'"probabilities" must be true or false, got {probabilities!r}')
    return texts, single, top_k, probabilities


def create_app(clf, settings: ServeSettings | None = None, backend: str = "torch"):
    """The FastAPI app serving ``clf`` (a loaded ``TextClassifier``)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from textsift.serving.metrics import ServiceMetrics

    settings = settings or ServeSettings()
    metrics = ServiceMetrics()
    labels = clf.labels
    # The model scores a collected batch in length-sorted sub-batches of model_batch_size: random texts
    # padded to the longest of 32 waste about half the work; sorted groups waste little.
    clf.batch_size = settings.model_batch_size
    batcher = MicroBatcher(lambda texts: list(zip(*clf.scores(texts))), settings.max_batch_size,
                           settings.max_wait_ms, metrics.observe_batch)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()  # uvicorn lets in-flight requests finish before this runs

    app = FastAPI(title="textsift", version=_version(), lifespan=lifespan,
                  description=f"{clf.task} text classifier with {len(labels)} labels ({backend} backend)")

    app.add_middleware(RequestMetrics, metrics=metrics)

    def error(status: int, code: str, message: str):
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

    @app.post("/predict")
    async def predict(request: Request):
        """Body: ``{"text": "..."}`` or ``{"texts": [...]}``, optional ``top_k``, ``probabilities``."""
        try:
            raw = await _read_body(request, settings.max_body_bytes)
            texts, single, top_k, want_all = parse_predict_body(raw, settings, len(labels))
        except RequestError as e:
            return error(e.status, e.code, e.message)
        scored = await batcher.submit(texts)
        metrics.texts.inc(len(texts))
        out = [_response_record(clf, probs, decision, top_k, want_all) for probs, decision in scored]
        # a Response skips FastAPI's generic jsonable_encoder pass over plain JSON data
        return JSONResponse(out[0] if single else {"predictions": out})

    @app.get("/health")
    async def health():
        return {"status": "ok", "task": clf.task, "labels": len(labels), "backend": backend}

    @app.get("/labels")
    async def get_labels():
        return {"task": clf.task, "labels": labels}

    @app.get("/metrics")
    async def get_metrics():
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return resources.files("textsift.serving").joinpath("static/index.html").read_text(encoding="utf-8")

    return app


class RequestMetrics:
    """Counts and times every HTTP request. A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware``
    (what ``@app.middleware`` builds) costs a task and a stream per request, which shows at high rates."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(scope["path"], status[0], time.perf_counter() - start)


async def _read_body(request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (announced or streamed) with 413."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, "body_too_large", f"the body has {declared} bytes; the limit is {limit} "
                                                  "(raise --max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "body_too_large", f"the body exceeds {limit} bytes (raise --max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _response_record(clf, probs, decision, top_k: int, want_all: bool) -> dict:
    """The record of `textsift predict` without the text (and all probabilities only on request)."""
    return clf.record(probs, decision, top_k, all_probabilities=want_all)


def _version() -> str:
    from textsift import __version__
    return __version__
