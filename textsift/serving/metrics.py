"""Service metrics in Prometheus text format, with ``prometheus_client`` (one registry per app, so two
apps in one process, as in tests, do not share counters)."""
from __future__ import annotations

# request latencies from 0.5 ms to 10 s: the classic models answer in about a millisecond
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("textsift_requests", "HTTP requests by path and status", ["path", "status"],
                                registry=self.registry)
        self.latency = Histogram("textsift_request_seconds", "HTTP request latency (seconds)", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.texts = Counter("textsift_texts", "Texts classified", registry=self.registry)
        self.batch_size = Histogram("textsift_batch_texts", "Texts per model call (micro-batching)",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.model_seconds = Histogram("textsift_batch_seconds", "Model time per batch (seconds)",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self._children: dict[tuple[str, int], tuple] = {}

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        children = self._children.get((path, status))
        if children is None:  # labels() takes a lock and builds its key each call: look the pair up once
            known = path in ("/predict", "/health", "/labels", "/metrics", "/")
            label = path if known else "other"  # unbounded label values would grow the registry without end
            children = (self.requests.labels(label, str(status)), self.latency.labels(label))
            if known:
                self._children[(path, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, texts: int, seconds: float) -> None:
        self.batch_size.observe(texts)
        self.model_seconds.observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest
        return generate_latest(self.registry)

    @property
    def content_type(self) -> str:
        from prometheus_client import CONTENT_TYPE_LATEST
        return CONTENT_TYPE_LATEST
