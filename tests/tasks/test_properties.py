"""Property-based tests (Hypothesis) of the text a character model reads: any file, text or not,
gives a task or an lstmkit error that says why, never another exception; text that is UTF-8
without NUL bytes is always taken."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lstmkit
from lstmkit.tasks.charlm import CharLMTask


@given(data=st.data())
def test_any_file_is_a_corpus_or_says_why(
    tmp_path_factory: pytest.TempPathFactory, data: Any
) -> None:
    content = data.draw(
        st.one_of(
            st.binary(max_size=400),
            st.text(max_size=400).map(lambda t: t.encode("utf-8", errors="surrogatepass")),
        )
    )
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_bytes(content)
    binary = data.draw(st.booleans())
    try:
        task = CharLMTask(path=str(path), length=3, binary=binary)
    except lstmkit.LstmkitError as error:
        message = str(error)
        assert "too few" in message or (not binary and "binary=true" in message), message
        return
    assert task.vocab_size == len(task.vocabulary) + 1


# any character UTF-8 can hold (not a lone surrogate) but NUL
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=40)


@given(text=TEXT)
def test_text_without_nul_bytes_is_taken(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_bytes(text.encode("utf-8"))
    task = CharLMTask(path=str(path), length=3)
    assert set(task.vocabulary) == set(text)
