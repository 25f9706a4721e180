"""The sequence regression of the LSTM tutorials: inputs [t, t+1] -> target t + (t+1), by a SimpleRNN.

    python examples/sum_of_two.py            # about 10 s on one core
    python examples/sum_of_two.py --quick    # the shortened form CI runs (a few seconds)

It uses rnnlab's forecasting pieces directly: the recurrent network (a one-layer tanh RNN, the Keras
SimpleRNN), min-max scaling fitted on the training inputs only, and the forecaster's training loop
(AdamW, a validation split, early stopping, seeding). Training pairs use t drawn from [10, 100); the test
pairs are fresh draws never seen in training. The last line of stdout is one JSON object with the
mean and the worst relative error on the unseen pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from rnnlab.forecasting.config import ForecastConfig
from rnnlab.forecasting.fit import fit_members
from rnnlab.forecasting.transforms import Scaler
from rnnlab.forecasting.windows import Windows
from rnnlab.models.forecaster import ForecastNetwork


def pairs(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` sequences [t, t+1] (shape [count, 2, 1]) and their sums (shape [count, 1, 1])."""
    t = rng.uniform(10, 100, size=count)
    inputs = np.stack([t, t + 1], axis=1)[:, :, None]
    return inputs, inputs.sum(axis=1, keepdims=True)


def windows(inputs: np.ndarray, targets: np.ndarray) -> Windows:
    n = len(inputs)
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return Windows(history=as_tensor(inputs), past=torch.zeros(n, 2, 0), future_in=torch.zeros(n, 2, 0),
                   future_out=torch.zeros(n, 1, 0), target=as_tensor(targets))


def run(quick: bool = False, cell: str = "rnn", seed: int = 0) -> dict:
    started = time.time()
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    train_x, train_y = pairs(320 if quick else 800, rng)
    val_x, val_y = pairs(100, rng)
    test_x, test_y = pairs(500, rng)

    # Scale inputs and targets into [0, 1] with statistics of the training pairs only.
    x_scaler = Scaler("minmax").fit(train_x.reshape(-1, 1))
    y_scaler = Scaler("minmax").fit(train_y.reshape(-1, 1))
    scaled = lambda x, y: windows(x_scaler.transform(x), y_scaler.transform(y))  # noqa: E731

    config = ForecastConfig(cell=cell, hidden_size=16, epochs=150 if quick else 400, batch_size=32, lr=1e-2,
                            weight_decay=0.0, patience=40, seed=seed)

    def batch_loss(network: ForecastNetwork, w: Windows) -> torch.Tensor:
        prediction = network(w.history, w.future_out)[..., 0]  # [B, 1, 1]
        return torch.nn.functional.mse_loss(prediction, w.target)

    def make_network() -> ForecastNetwork:
        return ForecastNetwork(input_size=1, target_dim=1, horizon=1, outputs=1, cell=config.network_cell,
                               hidden_size=config.hidden_size)

    (network,), history = fit_members(make_network, batch_loss, scaled(train_x, train_y), scaled(val_x, val_y),
                                      config)
    with torch.no_grad():
        test = scaled(test_x, test_y)
        predicted = network(test.history, test.future_out)[..., 0].double().numpy()
    predicted = y_scaler.inverse(predicted.reshape(-1, 1))[:, 0]
    truth = test_y.reshape(-1)
    relative = np.abs(predicted - truth) / np.abs(truth)
    return {"example": "sum_of_two", "cell": cell, "quick": quick, "train_pairs": len(train_x),
            "test_pairs": len(test_x), "epochs": len(history),
            "mean_relative_error": round(float(relative.mean()), 6),
            "max_relative_error": round(float(relative.max()), 6),
            "examples": [[float(round(a, 2)), float(round(b, 2)), float(round(p, 2))]
                         for (a, b), p in zip(test_x[:3, :, 0], predicted[:3])],
            "seconds": round(time.time() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs and epochs (CI)")
    parser.add_argument("--cell", default="rnn", choices=("rnn", "gru", "lstm"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run(quick=args.quick, cell=args.cell, seed=args.seed)
    print(json.dumps(result))
    return 0 if result["mean_relative_error"] < 0.01 else 1


if __name__ == "__main__":
    sys.exit(main())
