"""Classic text classification models, one file each, registered by name in ``textsift.registry.MODELS``."""
from textsift.models.base import ClassifierHead, ModelOutput, ModelParams, TextModel, build_model  # noqa: F401

# Importing a model module registers it in MODELS.
from textsift.models import dpcnn, fasttext, hf, textcnn, textrcnn, textrnn, tfidf_linear, transformer  # noqa: E402,F401
