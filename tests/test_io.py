"""The one atomic writer and the one slug."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lstmkit._io import atomic_write, slug, write_text


def test_a_new_file_gets_the_mode_an_ordinary_file_gets(tmp_path: Path) -> None:
    ordinary = tmp_path / "ordinary.txt"
    ordinary.write_text("x", encoding="utf-8")
    written = write_text(tmp_path / "atomic.txt", "y")
    assert written.read_text(encoding="utf-8") == "y"
    assert os.stat(written).st_mode & 0o777 == os.stat(ordinary).st_mode & 0o777
    assert os.stat(written).st_mode & 0o044  # readable by others, as under the usual umask


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "result.bin"
    atomic_write(target, lambda f: f.write(b"old"), binary=True)

    def fail(f: object) -> None:
        f.write(b"half")  # type: ignore[attr-defined]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail, binary=True)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.bin"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lstm:chrono=200", "lstm_chrono_200"),
        ("gru:reset_after=false", "gru_reset_after_false"),
        ("lstm:forget_bias=0.5", "lstm_forget_bias_0_5"),  # run folders of earlier versions
        ("a/b\\c d", "a_b_c_d"),
    ],
)
def test_slug_keeps_letters_digits_dash_and_underscore(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_slug_keeps_what_it_is_told_to() -> None:
    assert slug("rnn.l0/x", keep="-_.") == "rnn.l0_x"
