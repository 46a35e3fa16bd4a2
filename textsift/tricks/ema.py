"""EMA: an exponential moving average of the weights, evaluated and saved instead of the raw ones."""
from __future__ import annotations

from typing import Optional

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from textsift.registry import TRICKS
from textsift.tricks.averaging import WeightSwap, averaged_parameters, by_name, float_copies, load_by_name
from textsift.tricks.base import Trick


class EMAParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decay: float = Field(0.999, ge=0, lt=1, description="shadow = decay * shadow + (1 - decay) * weight after "
                         "every optimizer step.")
    decay_warmup: bool = Field(True, description="Use min(decay, (1 + n) / (10 + n)) at the n-th update (n from 0), "
                               "so that a short run's average is not dominated by the initial weights.")


@TRICKS.register("ema", params=EMAParams)
class EMA(Trick):
    """Exponential moving average of the weights (Polyak & Juditsky 1992), swapped in for evaluation and saving.

    Shadows: float32 copies of every floating parameter with ``requires_grad``, taken when training
    starts (after NoisyTune, which build_tricks runs first); after each optimizer step
    ``shadow = d * shadow + (1 - d) * weight`` with ``d = decay``, or ``min(decay, (1 + n) / (10 + n))``
    at the n-th update with ``decay_warmup`` (TensorFlow's num_updates rule: with decay 0.999 and no
    warmup, a 300-step run's average would still be 74% initial weights). ``swap_in`` loads the shadows
    (dev evaluation and the saved best weights use them), ``restore`` copies the raw weights back
    exactly. Buffers are the live ones (no BatchNorm here). The shadows and the update count go into
    checkpoints, so a resumed run continues the same average.
    """

    name = "ema"
    conflicts = ("swa",)  # both swap weights in around evaluation; one average at a time

    def __init__(self, params: Optional[EMAParams] = None):
        super().__init__(params or EMAParams())
        self.updates = 0
        self._swap = WeightSwap()

    def setup(self, model: nn.Module) -> None:
        self.names, self.live = averaged_parameters(model)
        self.shadow = float_copies(self.live)

    @torch.no_grad()
    def before_training(self, model: nn.Module) -> None:
        for s, p in zip(self.shadow, self.live):
            s.copy_(p)
        self.updates = 0

    def decay(self) -> float:
        """The decay of the next update."""
        d = self.params.decay
        return min(d, (1 + self.updates) / (10 + self.updates)) if self.params.decay_warmup else d

    def after_step(self, model: nn.Module, step: int) -> None:
        if self.shadow:
            get_ema_multi_avg_fn(self.decay())(self.shadow, [p.detach().float() for p in self.live], None)
        self.updates += 1

    def swap_in(self, model: nn.Module) -> None:
        self._swap.swap_in(self.live, self.shadow)

    def restore(self, model: nn.Module) -> None:
        self._swap.restore(self.live)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": by_name(self.names, self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        load_by_name(self.name, self.names, self.shadow, state["shadow"])
        self.updates = int(state["updates"])
