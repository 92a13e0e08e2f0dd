"""Layer normalisation (Ba, Kiros & Hinton 2016) on the LSTM and the GRU: the adding problem.

Trains each layer with and without ``layer_norm=True`` for the same steps and prints the
held-out mean squared error beside the baseline of always predicting 1 (0.167). Uses lstmkit's
trainer from Python; under a minute on a 2-core CPU:

    python examples/layer_norm_lstm.py
"""

from __future__ import annotations

import argparse

from lstmkit.train import fit

CELLS = ("lstm", "lstm:layer_norm=true", "gru", "gru:layer_norm=true")


def main(steps: int = 400, length: int = 50, seed: int = 0) -> dict[str, float]:
    results = {}
    for cell in CELLS:
        result = fit(
            cell, f"adding:length={length}", steps=steps, hidden_size=32, batch_size=32, seed=seed
        )
        results[cell] = result.metrics[result.metric]
        baseline = f"{result.baseline:.3f} ({result.baseline_note})"
        print(f"{cell:22s} held-out {result.metric} {results[cell]:.4f}   baseline {baseline}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps (default: 400)")
    parser.add_argument("--length", type=int, default=50, help="sequence length (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args()
    main(args.steps, args.length, args.seed)
