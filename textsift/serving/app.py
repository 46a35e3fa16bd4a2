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

from textsift.api import RankedScores
from textsift.serving.batcher import MicroBatcher


@dataclass
class ServeSettings:
    """Limits and batching of ``textsift serve`` (each is a command-line option)."""

    # A collected batch (up to max_batch_size texts) is tokenized once, sorted by length and cut into model
    # calls of at most model_batch_size texts and max_batch_tokens padded positions (texts x longest): short
    # texts go in large calls, long ones in small calls, and no call pads short texts to a long one. Measured
    # on MiniLM-L6 int8 with random pools of 64 sst2 sentences (mean 25 tokens), in texts per CPU second:
    # 256 tokens 504, 512 tokens 424, fixed groups of 8 452, of 16 376, all 64 in one call 178.
    max_batch_size: int = 64
    max_wait_ms: float = 0.0
    model_batch_size: int = 64
    max_batch_tokens: int | None = 256
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
        if self.max_batch_tokens is not None and self.max_batch_tokens < 1:
            from textsift.errors import TextsiftError
            raise TextsiftError(f"--max-batch-tokens: expected a positive number (or 0 for no token bound), "
                                f"got {self.max_batch_tokens}")
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


# Starlette's JSONResponse rendering, as one reusable encoder: the same bytes, without a Response object
_json_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def _encode_json(content) -> bytes:
    return _json_encoder.encode(content).encode("utf-8")


_JSON_TYPE = (b"content-type", b"application/json")


def create_app(clf, settings: ServeSettings | None = None, backend: str = "torch"):
    """The FastAPI app serving ``clf`` (a loaded ``TextClassifier``)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, Response

    from textsift.serving.metrics import ServiceMetrics

    settings = settings or ServeSettings()
    metrics = ServiceMetrics()
    labels = clf.labels
    # The model scores a collected batch in length-sorted sub-batches (see ServeSettings): random texts
    # padded to the longest of 32 waste about half the work; sorted, token-bounded groups waste little.
    clf.batch_size, clf.max_tokens = settings.model_batch_size, settings.max_batch_tokens
    # the model thread also ranks each batch's labels, so a request only slices lists and builds its records
    batcher = MicroBatcher(lambda texts: RankedScores(*clf.scores(texts)), settings.max_batch_size,
                           settings.max_wait_ms, metrics.observe_batch)

    async def predict_answer(receive, headers) -> tuple[int, bytes]:
        """``(status, JSON body)`` of one ``POST /predict``, from the raw ASGI request."""
        try:
            raw = await _read_body(receive, headers, settings.max_body_bytes)
            texts, single, top_k, want_all = parse_predict_body(raw, settings, len(labels))
        except RequestError as e:
            return e.status, _encode_json({"error": {"code": e.code, "message": e.message}})
        ranked = await batcher.submit(texts)
        metrics.texts.inc(len(texts))
        out = clf.ranked_records(ranked, top_k, all_probabilities=want_all)
        return 200, _encode_json(out[0] if single else {"predictions": out})

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()  # uvicorn lets in-flight requests finish before this runs

    fast_predict = PredictEndpoint(predict_answer, metrics)

    class ServiceApp(FastAPI):
        """FastAPI, except that ``POST /predict`` goes straight to ``PredictEndpoint``: for a model that
        scores a text in a fraction of a millisecond, the middleware stack, routing, dependency solving
        and ``Request`` objects took more of the event loop than the request's own work."""

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http" and scope["path"] == "/predict" and scope["method"] == "POST":
                return await fast_predict(scope, receive, send)
            await super().__call__(scope, receive, send)

    # FastAPI's own OpenTelemetry hooks are off: the service has its Prometheus /metrics, and the hooks'
    # per-request provider look-ups cost more than the model for a small classifier
    app = ServiceApp(title="textsift", version=_version(), lifespan=lifespan,
                     telemetry={"tracing": False, "metrics": False, "logs": False},
                     description=f"{clf.task} text classifier with {len(labels)} labels ({backend} backend)")

    app.add_middleware(RequestMetrics, metrics=metrics)

    @app.post("/predict")
    async def predict(request: Request):
        """Body: ``{"text": "..."}`` or ``{"texts": [...]}``, optional ``top_k``, ``probabilities``.

        (Served by ``PredictEndpoint`` ahead of FastAPI's routing; this route documents it in the
        OpenAPI schema and answers the same way when the app is called through the stack, e.g. mounted.)"""
        status, body = await predict_answer(request.receive, request.scope["headers"])
        return Response(body, status_code=status, media_type="application/json")

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


class PredictEndpoint:
    """``POST /predict`` as a plain ASGI app: body in, ``predict(receive, headers) -> (status, JSON)``,
    two messages out, and the request counted in the metrics."""

    def __init__(self, predict, metrics):
        self.predict, self.metrics = predict, metrics

    async def __call__(self, scope, receive, send):
        start, status = time.perf_counter(), 500
        try:
            try:
                status, body = await self.predict(receive, scope["headers"])
            except _ClientGone:
                status = 499  # nobody to answer (nginx's code for it, in the metrics only)
                return
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-length", str(len(body)).encode()), _JSON_TYPE]})
            await send({"type": "http.response.body", "body": body})
        finally:
            self.metrics.observe_request("/predict", status, time.perf_counter() - start)


class RequestMetrics:
    """Counts and times every HTTP request that goes through FastAPI. A plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` (what ``@app.middleware`` builds) costs a task and a stream per request."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - start)


class _ClientGone(Exception):
    """The client disconnected before its request body arrived."""


async def _read_body(receive, headers, limit: int) -> bytes:
    """The request body from ASGI ``receive``, refusing more than ``limit`` bytes (announced or
    streamed) with 413."""
    for name, value in headers:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise RequestError(413, "body_too_large", f"the body has {value.decode()} bytes; the limit is "
                                                          f"{limit} (raise --max-body-bytes)")
            break
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "body_too_large", f"the body exceeds {limit} bytes (raise --max-body-bytes)")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _version() -> str:
    from textsift import __version__
    return __version__
