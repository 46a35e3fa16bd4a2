"""Config: schema (data) and loading/validation."""
from textsift.config.load import apply_overrides, load_config, resolve_config_path, validate  # noqa: F401
from textsift.config.schema import Config  # noqa: F401
