"""Front door: the HTTP service (FastAPI app, micro-batching, metrics, the try-it page)."""
