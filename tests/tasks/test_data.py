"""What the real-data tasks share: the optional-package import, the cache of prepared data and
padding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.tasks import _data


def test_a_missing_package_names_the_task_and_the_extra() -> None:
    with pytest.raises(ImportError) as caught:
        _data.require("lstmkit_no_such_package.datasets", "chorales")
    message = str(caught.value)
    assert isinstance(caught.value, LstmkitError)
    assert "chorales" in message
    assert "lstmkit_no_such_package" in message
    assert _data.EXTRA in message


def test_an_installed_package_is_returned() -> None:
    module = _data.require("json", "any")
    assert module.loads("[1, 2]") == [1, 2]


def _counting_build(calls: list[int], value: torch.Tensor) -> _data.Builder:
    def build() -> dict[str, torch.Tensor]:
        calls.append(1)
        return {"x": value.clone(), "n": torch.tensor([len(calls)])}

    return build


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))
    return tmp_path / "data" / "thing.safetensors"


def test_the_cache_is_built_once_and_read_back(cache: Path) -> None:
    calls: list[int] = []
    value = torch.randn(5, 3)
    first = _data.cached("thing", {"size": 5}, _counting_build(calls, value))
    second = _data.cached("thing", {"size": 5}, _counting_build(calls, value))
    assert calls == [1]
    assert cache.is_file()
    torch.testing.assert_close(second["x"], value, rtol=0, atol=0)
    assert int(second["n"]) == int(first["n"]) == 1


def test_another_key_rebuilds(cache: Path) -> None:
    calls: list[int] = []
    _data.cached("thing", {"size": 5}, _counting_build(calls, torch.randn(2)))
    other = _data.cached("thing", {"size": 6}, _counting_build(calls, torch.randn(2)))
    assert calls == [1, 1]
    assert int(other["n"]) == 2


def test_a_damaged_cache_file_is_rebuilt(cache: Path) -> None:
    calls: list[int] = []
    value = torch.randn(4)
    _data.cached("thing", {"size": 4}, _counting_build(calls, value))
    cache.write_bytes(cache.read_bytes()[:40])
    again = _data.cached("thing", {"size": 4}, _counting_build(calls, value))
    assert calls == [1, 1]
    torch.testing.assert_close(again["x"], value, rtol=0, atol=0)
    reread = _data.cached("thing", {"size": 4}, _counting_build(calls, value))
    assert calls == [1, 1]  # the rebuilt file is whole again
    torch.testing.assert_close(reread["x"], value, rtol=0, atol=0)


def test_a_cache_that_cannot_be_written_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(blocker))
    calls: list[int] = []
    value = torch.randn(3)
    got = _data.cached("thing", {}, _counting_build(calls, value))
    torch.testing.assert_close(got["x"], value, rtol=0, atol=0)
    assert blocker.read_text() == "not a folder"


def test_pad_puts_each_sequence_first_and_counts_its_steps() -> None:
    sequences = [torch.randn(n, 3) for n in (4, 1, 6)]
    padded, lengths = _data.pad(sequences, value=-7.0)
    assert lengths.tolist() == [4, 1, 6]
    assert lengths.dtype == torch.int64
    assert padded.shape == (3, 6, 3)
    for row, sequence in enumerate(sequences):
        n = len(sequence)
        torch.testing.assert_close(padded[row, :n], sequence, rtol=0, atol=0)
        assert bool((padded[row, n:] == -7.0).all())
