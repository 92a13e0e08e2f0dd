"""The fast form of examples/real_data_classification.py: every cell learns both real tasks."""

from __future__ import annotations

from tests.helpers import load_example


def test_every_cell_beats_chance_on_digits_and_vowels() -> None:
    example = load_example("real_data_classification")
    results = example.main(example.FAST)
    digits, vowels = (results[s.task] for s in example.FAST)
    assert set(digits) == set(vowels) == {"tanh RNN", "GRU", "LSTM"}
    for accuracy in digits.values():
        assert accuracy > 0.25  # chance 0.10; 200 digits, 60 steps
    for accuracy in vowels.values():
        assert accuracy > 0.6  # chance 0.11; 150 steps
