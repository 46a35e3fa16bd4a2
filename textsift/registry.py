"""Name → component registries with helpful lookups (AllenNLP ``Registrable`` style).

A user adds a model, tokenizer, loss or trick by writing one file and decorating one class::

    @MODELS.register("textcnn", params=TextCNNParams)
    class TextCNN(TextModel): ...

Unknown names list the known ones and suggest the closest match.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from textsift.errors import TextsiftError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    params: Any  # a pydantic model class describing the component's hyperparameters, or None
    summary: str


class Registry(Generic[T]):
    """A named collection of components of one kind (``kind`` is used in messages: "model", "loss")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, params: Any = None) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
            self._entries[name] = Entry(name, obj, params, doc[0] if doc else "")
            return obj

        return decorator

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def unknown_message(self, name: Any) -> str:
        names = self.names()
        hint = did_you_mean(name, names) or "."
        return f"'{name}' is not a {self.kind}{hint} Known: {', '.join(names) or '(none)'}"

    def entry(self, name: str) -> Entry[T]:
        self._load()
        if name not in self._entries:
            raise TextsiftError(self.unknown_message(name))
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    # Components register themselves on import; importing lazily keeps `import textsift` fast.
    _loaders: dict[str, str] = {}

    def _load(self) -> None:
        module = self._loaders.get(self.kind)
        if module:
            __import__(module)


MODELS: Registry[Any] = Registry("model")
TOKENIZERS: Registry[Any] = Registry("tokenizer")
LOSSES: Registry[Any] = Registry("loss")
TRICKS: Registry[Any] = Registry("trick")
Registry._loaders.update(
    {"model": "textsift.models", "tokenizer": "textsift.tokenizers", "loss": "textsift.losses",
     "trick": "textsift.tricks"}
)
