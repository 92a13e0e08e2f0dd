"""Layer normalisation in training: the LSTM and GRU options learn the adding problem."""

from __future__ import annotations

from tests.helpers import load_example


def test_layer_normalised_cells_learn_the_adding_problem() -> None:
    results = load_example("layer_norm_lstm").main(steps=300, length=30)
    baseline = 0.167  # the mean squared error of always predicting 1
    assert results["lstm:layer_norm=true"] < 0.1 * baseline
    assert results["gru:layer_norm=true"] < 0.1 * baseline
