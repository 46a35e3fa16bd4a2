"""SWA: the equal-weight average of the end-of-epoch weights (Izmailov et al. 2018)."""
from __future__ import annotations

from typing import Optional

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.optim.swa_utils import get_swa_multi_avg_fn

from textsift.registry import TRICKS
from textsift.tricks.averaging import WeightSwap, averaged_parameters, by_name, float_copies, load_by_name
from textsift.tricks.base import Trick


class SWAParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start_epoch: int = Field(2, ge=1, description="First epoch (1-based) whose end-of-epoch weights enter the "
                             "average; the paper starts after ~75% of the budget, i.e. about 0.75 * train.epochs.")


@TRICKS.register("swa", params=SWAParams)
class SWA(Trick):
    """Stochastic Weight Averaging (Izmailov et al. 2018): the mean of the end-of-epoch weights, swapped in.

    Paper: "Averaging Weights Leads to Wider Optima and Better Generalization" (UAI 2018). The average
    covers the weights at the end of every epoch from ``start_epoch`` on.

    The average is updated at each end of epoch (the trainer calls ``swap_in`` exactly then, before
    the dev evaluation) with torch's SWA rule ``avg += (w - avg) / (n + 1)`` (float32, floating
    parameters with ``requires_grad``), and swapped in for evaluation and the saved best weights;
    ``restore`` copies the raw weights back exactly and training continues from them. Before the first
    averaged epoch the raw weights are evaluated. Buffers are the live ones: our models have no
    BatchNorm, so no statistics pass is needed. Pair it with a constant or slowly decaying learning
    rate (train.scheduler=constant), as in the paper. Checkpoints hold the average, its count and the
    epoch count, so a resumed run continues the same average.
    """

    name = "swa"
    conflicts = ("ema",)  # both swap weights in around evaluation; one average at a time

    def __init__(self, params: Optional[SWAParams] = None):
        super().__init__(params or SWAParams())
        self.epochs, self.n_averaged = 0, 0
        self.average: Optional[list[torch.Tensor]] = None
        self._swap = WeightSwap()

    def setup(self, model: nn.Module) -> None:
        self.names, self.live = averaged_parameters(model)

    def swap_in(self, model: nn.Module) -> None:
        self.epochs += 1
        if self.epochs >= self.params.start_epoch:
            self._update()
        if self.n_averaged:
            self._swap.swap_in(self.live, self.average)

    def restore(self, model: nn.Module) -> None:
        self._swap.restore(self.live)

    def _update(self) -> None:
        if self.average is None:
            self.average = float_copies(self.live)
        elif self.average:
            get_swa_multi_avg_fn()(self.average, [p.detach().float() for p in self.live], self.n_averaged)
        self.n_averaged += 1

    def state_dict(self) -> dict:
        return {"epochs": self.epochs, "n_averaged": self.n_averaged,
                "average": by_name(self.names, self.average) if self.average is not None else {}}

    def load_state_dict(self, state: dict) -> None:
        self.epochs, self.n_averaged = int(state["epochs"]), int(state["n_averaged"])
        if self.n_averaged:
            self.average = float_copies(self.live)
            load_by_name(self.name, self.names, self.average, state["average"])
        else:
            self.average = None
