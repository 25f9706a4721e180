"""An exponential moving average of the weights, for evaluation and for the weights a run keeps.

Late in training the weights jitter around a minimum at the scale of the learning rate; their running
average sits nearer its centre and usually scores better on held-out text, for the price of one copy of
the parameters and one fused lerp per step (Polyak averaging, as AWD-LSTM's averaged SGD does for SGD).
torch.optim.swa_utils.AveragedModel keeps a second module instead; the loop's evaluation and saving are
bound to the model itself, so here the average is swapped into it for the time they run.
"""

from __future__ import annotations

import contextlib

import torch


class WeightAverage:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.params = list(model.parameters())  # tied weights appear once
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the weights after optimiser step `step` (1-based)."""
        # A short memory at first, so the random initialisation is soon forgotten.
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - decay)

    @contextlib.contextmanager
    def swapped_in(self):
        """Inside the block the model holds the averaged weights; its own come back afterwards."""
        with torch.no_grad():
            live = [p.detach().clone() for p in self.params]
            torch._foreach_copy_(self.params, self.shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, live)

    def tensors(self) -> list[torch.Tensor]:
        return self.shadow

    @torch.no_grad()
    def load(self, tensors: list[torch.Tensor]) -> None:
        if len(tensors) != len(self.shadow):
            raise ValueError(f"checkpoint holds {len(tensors)} averaged tensors, the model has {len(self.shadow)}")
        torch._foreach_copy_(self.shadow, [t.to(s.device) for t, s in zip(tensors, self.shadow, strict=True)])
