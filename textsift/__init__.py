"""textsift: from a labelled text file to a fast, small, served text classifier.

``from textsift import TextClassifier`` is resolved lazily so that ``import textsift`` stays fast.
"""
__version__ = "0.1.0"
__all__ = ["TextClassifier", "__version__"]


def __getattr__(name):
    if name == "TextClassifier":
        from textsift.api import TextClassifier

        return TextClassifier
    raise AttributeError(f"module 'textsift' has no attribute {name!r}")
