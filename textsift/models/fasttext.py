"""fastText (Joulin et al. 2016): the mean of token and n-gram embeddings, then a linear classifier."""
from __future__ import annotations

from typing import Literal, Optional

import torch
from pydantic import Field
from torch import nn

from textsift.models.base import ClassifierHead, ModelOutput, ModelParams, TextModel, embedding_bag
from textsift.registry import MODELS


class FastTextParams(ModelParams):
    hidden_dim: Optional[int] = Field(
        None, ge=1, description="Size of an optional ReLU hidden layer after the mean; null = linear model (as in the paper).")
    sparse: bool = Field(
        True, description="Sparse embedding gradients (only rows in the batch are updated): much faster with large n-gram tables.")
    embedding_init: Literal["normal", "fasttext"] = Field(
        "normal", description="normal = N(0, 1) embeddings (torch's default); fasttext = as fastText's own trainer: "
                              "embeddings uniform in ±1/embedding_dim and a zero output layer, so n-grams seen a few times "
                              "start near zero instead of adding N(0, 1) noise to the mean (+1 point on thucnews_title "
                              "with AdamW). Ignored for pretrained vectors.")


@MODELS.register("fasttext", params=FastTextParams)
class FastText(TextModel):
    """fastText (Joulin et al. 2016): mean of word + hashed n-gram embeddings, linear classifier.

    Input ids may already contain hashed n-gram ids (the tokenizer adds them; ``vocab_size`` counts them), so
    the model is just one ``EmbeddingBag`` over every id: fast on CPU and with no sequence dimension kept.
    """

    def __init__(self, params: FastTextParams, vocab_size: int, num_labels: int, pad_id: int = 0):
        super().__init__(params, vocab_size, num_labels, pad_id)
        # mode="mean" with padding_idx leaves pad ids out of both the sum and the count.
        self.embedding = nn.EmbeddingBag(vocab_size, params.embedding_dim, mode="mean", padding_idx=pad_id,
                                       sparse=params.sparse)
        features = params.embedding_dim
        self.hidden: nn.Module = nn.Identity()
        if params.hidden_dim is not None:
            self.hidden = nn.Sequential(nn.Linear(features, params.hidden_dim), nn.ReLU())
            features = params.hidden_dim
        self.head = ClassifierHead(features, num_labels, params.dropout)

    def reset_parameters(self) -> None:
        """``params.init`` as every model; then, with ``embedding_init: fasttext`` (and no pretrained
        vectors), fastText's start: embeddings uniform in ±1/dim, the output layer zero."""
        super().reset_parameters()
        if self.params.embedding_init == "fasttext" and self.params.vectors is None:
            bound = 1.0 / self.params.embedding_dim
            with torch.no_grad():
                self.embedding.weight.uniform_(-bound, bound)
                self.embedding.weight[self.pad_id].zero_()
                output = self.head[-1]
                output.weight.zero_()
                output.bias.zero_()

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        # Ids outside the mask become pad ids, so the mean covers exactly the real tokens.
        ids = input_ids.masked_fill(~mask, self.pad_id)  # (batch, seq)
        pooled = self.hidden(embedding_bag(self.embedding, ids))  # (batch, features); each row of ids is one bag
        return ModelOutput(logits=self.head(pooled), pooled=pooled, mask=mask)
