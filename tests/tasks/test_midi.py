"""Piano rolls written as MIDI with music21: read back by music21 and the chorales task's own
parser, a roll (random, or a real chorale's) comes back exactly; held notes are single notes; bad
rolls and paths are refused with errors that say what was expected."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from lstmkit import LstmkitError
from lstmkit.tasks import ChoralesTask
from lstmkit.tasks.chorales import (
    KEYS,
    deal,
    part_name,
    piano_roll,
    roll_to_score,
    write_midi,
)


def read_back(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # music21's notices about the file, not lstmkit's
        import music21

        return music21.converter.parse(str(path))


def random_roll(steps: int) -> Tensor:
    """A fresh random ``(steps, 88)`` roll with held notes (runs of a key), repeated notes
    (a key off for one frame between two runs), rests (all-silent frames, one at the start) and
    a sounding last frame."""
    roll = (torch.rand(steps, KEYS) < 0.06).to(torch.uint8)
    for key in torch.randint(0, KEYS, (6,)).tolist():
        start = int(torch.randint(0, steps - 4, ()))
        roll[start : start + int(torch.randint(2, 5, ())), key] = 1  # held over 2-4 frames
    key = int(torch.randint(0, KEYS, ()))
    roll[2:5, key], roll[5, key], roll[6:8, key] = 1, 0, 1  # the same key struck again
    roll[0] = 0
    rests = torch.randint(1, steps - 1, (2,))
    roll[rests] = 0
    roll[-1, int(torch.randint(0, KEYS, ()))] = 1
    return roll


def test_a_random_roll_comes_back_exactly_through_a_midi_file(tmp_path: Path) -> None:
    roll = random_roll(24)
    written = write_midi(roll, tmp_path / "deep" / "random.mid")
    assert written == tmp_path / "deep" / "random.mid"
    assert written.read_bytes()[:4] == b"MThd"
    assert list(tmp_path.glob("deep/.*.tmp")) == []  # written through a temporary file
    score = read_back(written)
    names = [p.partName for p in score.parts]
    assert names == [part_name(k) for k in range(len(names))]
    assert names[:4] == ["Soprano", "Alto", "Tenor", "Bass"]
    back = piano_roll(score)
    assert back.dtype == torch.uint8
    torch.testing.assert_close(back, roll, rtol=0, atol=0)


def test_a_held_key_is_one_note_and_a_struck_again_key_two() -> None:
    roll = torch.zeros(9, KEYS, dtype=torch.uint8)
    key = int(torch.randint(0, KEYS, ()))
    roll[1:5, key] = 1  # held four frames
    roll[6:9, key] = 1  # after a one-frame rest, three more
    score = roll_to_score(roll)
    notes = [n for part in score.parts for n in part.flatten().notes]
    assert [(float(n.offset), float(n.quarterLength)) for n in notes] == [(1.0, 4.0), (6.0, 3.0)]
    assert {n.pitch.midi for n in notes} == {21 + key}
    halves = roll_to_score(roll, quarter_length=0.5, lowest=30)
    notes = [n for part in halves.parts for n in part.flatten().notes]
    assert [(float(n.offset), float(n.quarterLength)) for n in notes] == [(0.5, 2.0), (3.0, 1.5)]
    assert {n.pitch.midi for n in notes} == {30 + key}


def test_notes_are_dealt_to_the_voices_from_the_top_and_never_overlap_in_a_part() -> None:
    keys = sorted(torch.randperm(KEYS)[:6].tolist(), reverse=True)  # six keys, high to low
    s, a, t, b, x, y = keys
    notes = [(0, 4, s), (0, 1, a), (0, 1, t), (0, 2, b), (0, 1, x), (1, 2, y), (2, 3, x)]
    assert deal(notes) == [
        [(0, 4, [s])],  # the soprano holds
        [(0, 1, [a]), (1, 2, [y]), (2, 3, [x])],  # free again after each frame: the first free
        [(0, 1, [t, x])],  # a fifth note joins the lowest chord of its span
        [(0, 2, [b])],
    ]
    roll = torch.zeros(4, KEYS, dtype=torch.uint8)
    for start, stop, key in notes:
        roll[start:stop, key] = 1
    score = roll_to_score(roll)
    assert [p.partName for p in score.parts] == ["Soprano", "Alto", "Tenor", "Bass"]
    for part, chords in zip(score.parts, deal(notes), strict=True):
        sounds = list(part.flatten().notes)
        assert [(float(n.offset), float(n.quarterLength)) for n in sounds] == [
            (float(start), float(stop - start)) for start, stop, _ in chords
        ]
        assert [sorted(p.midi - 21 for p in n.pitches) for n in sounds] == [
            sorted(k) for _, _, k in chords
        ]
    many = [(0, 1, k) for k in keys] + [(0, 2, keys[-1] - 1)]  # spans overlap: new parts
    assert [len(p) for p in deal(many)] == [1, 1, 1, 1, 1]
    assert [part_name(k) for k in range(6)] == [
        "Soprano",
        "Alto",
        "Tenor",
        "Bass",
        "Soprano 2",
        "Alto 2",
    ]


def test_a_chorales_roll_comes_back_exactly(tmp_path: Path) -> None:
    task = ChoralesTask(pieces=5)
    for k in (0, len(task.rolls) - 1):
        roll = task.rolls[k]
        assert roll[-1].any()  # a chorale ends on a sounding chord: nothing to lose
        back = piano_roll(read_back(write_midi(roll, tmp_path / f"{k}.midi")))
        torch.testing.assert_close(back, roll, rtol=0, atol=0)


def test_silence_after_the_last_note_is_not_kept(tmp_path: Path) -> None:
    roll = random_roll(12)
    padded = torch.cat([roll, torch.zeros(3, KEYS, dtype=torch.uint8)])
    back = piano_roll(read_back(write_midi(padded.bool(), tmp_path / "p.mid")))
    torch.testing.assert_close(back, roll, rtol=0, atol=0)


def test_writing_again_replaces_the_file(tmp_path: Path) -> None:
    first, second = random_roll(10), random_roll(15)
    path = tmp_path / "r.mid"
    write_midi(first, path)
    write_midi(second.float(), path)
    torch.testing.assert_close(piano_roll(read_back(path)), second, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("roll", "message"),
    [
        (torch.zeros(4, 87), r"roll must be \(T, 88\).*got shape \(4, 87\)"),
        (torch.zeros(2, 4, 88), r"roll must be \(T, 88\).*got shape \(2, 4, 88\)"),
        (torch.full((3, 88), 0.5), r"roll must hold only 0 and 1.*\[0\.5\]"),
        (torch.full((3, 88), 2, dtype=torch.int64), r"only 0 and 1.*\[2\.0\]"),
        ([[0] * 88], r"roll must be a \(T, 88\) tensor of 0/1, got a list of 1"),
    ],
)
def test_bad_rolls_are_refused(roll: object, message: str, tmp_path: Path) -> None:
    with pytest.raises(LstmkitError, match=message):
        roll_to_score(roll)  # type: ignore[arg-type]
    with pytest.raises(LstmkitError, match=message):
        write_midi(roll, tmp_path / "x.mid")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_bad_options_and_paths_are_refused(tmp_path: Path) -> None:
    roll = random_roll(8)
    with pytest.raises(ValueError, match="quarter_length must be positive, got 0"):
        roll_to_score(roll, quarter_length=0)
    with pytest.raises(ValueError, match=r"expected 0\.\.40, got 41"):
        roll_to_score(roll, lowest=41)
    with pytest.raises(TypeError, match="lowest must be an int"):
        roll_to_score(roll, lowest=21.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\.mid or \.midi, got 'r\.wav'"):
        write_midi(roll, tmp_path / "r.wav")
    assert list(tmp_path.iterdir()) == []
