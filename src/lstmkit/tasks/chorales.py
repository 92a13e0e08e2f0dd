"""JSB Chorales as Boulanger-Lewandowski et al. 2012 framed them: predict each next quarter-note
frame of a Bach chorale, a piano roll over the 88 keys, under independent Bernoullis. The chorales
are music21's own (they ship inside its wheel), parsed once and cached. A roll, read or sampled,
is written back as music by :func:`roll_to_score` and :func:`write_midi`."""

from __future__ import annotations

import logging
import math
import re
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._checks import check_choice, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._io import atomic_write
from lstmkit.tasks._data import cached, package_version, pad, require
from lstmkit.tasks.base import Batch, Task, step_mask

KEYS = 88
"""Piano keys, MIDI 21 (A0) to 108 (C8)."""

LOWEST = 21

SPLITS = ("train", "valid", "test")

PUBLISHED_SPLIT = (229, 76, 77)
"""Boulanger-Lewandowski et al. 2012's train / valid / test pieces; their shares are ours."""

SPLIT_SEED = 1206
"""Seeds the one fixed order in which pieces are dealt to the splits."""

SUFFIXES = (".mxl", ".xml", ".krn")
"""Scores; music21's Bach folder also holds roman-numeral analyses (.rntxt), which are not."""

VOICE = re.compile(r"(soprano|alto|tenor|bass)", re.IGNORECASE)
"""The sung parts, by the start of a part's name (instrumental doublings and obbligati dropped)."""

_log = logging.getLogger("lstmkit")


def work(name: str) -> str:
    """The chorale a music21 file holds, by BWV number and movement: ``bwv248.9-1.mxl`` and
    ``bwv248.9-s.mxl`` are both ``bwv248.9``."""
    match = re.match(r"bwv[\d.]*\d", name)
    return match.group(0) if match else name


def voices(score: Any) -> list[Any]:
    """The parts of a score that are sung: those named Soprano, Alto, Tenor or Bass; a score whose
    parts have no such names counts as four voices when it has four parts (the Humdrum files),
    and as no chorale otherwise (an empty list)."""
    parts = list(score.parts)
    named = [p for p in parts if VOICE.match((p.partName or "").strip())]
    if named:
        return named
    return parts if len(parts) == 4 else []


def piano_roll(score: Any) -> Tensor:
    """``(T, 88)`` uint8: frame ``t`` holds every key sounding at quarter-note offset ``t``, in
    any sung part; ``T`` is the score's length in quarter notes, rounded up.

    A note sounds from its offset up to (not including) its offset plus its notated duration, so
    a tied note sounds straight through the tie, a rest sounds nothing (a frame where every part
    rests is all zeros), grace notes (no duration) never sound, and fermatas add no time.
    Pitches outside the 88 keys raise an error (none occurs in the corpus)."""
    steps = math.ceil(float(score.highestTime))
    roll = torch.zeros(steps, KEYS, dtype=torch.uint8)
    for part in voices(score):
        for note in part.flatten().notes:
            start, length = float(note.offset), float(note.quarterLength)
            if length <= 0:
                continue
            first, stop = math.ceil(start), math.ceil(start + length)  # t in [start, start+len)
            for pitch in note.pitches:
                key = int(pitch.midi) - LOWEST
                if not 0 <= key < KEYS:
                    raise LstmkitValueError(f"pitch {pitch} is outside the 88 keys")
                roll[first:stop, key] = 1
    return roll


VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")
"""The parts :func:`roll_to_score` writes, named so that :func:`voices` reads them as sung."""


def check_roll(roll: object) -> Tensor:
    """``roll`` checked to be a ``(T, 88)`` tensor of 0s and 1s (any dtype), returned as uint8."""
    if not isinstance(roll, Tensor):
        raise LstmkitTypeError(f"roll must be a (T, {KEYS}) tensor of 0/1, got {describe(roll)}")
    if roll.dim() != 2 or roll.shape[1] != KEYS:
        raise LstmkitValueError(
            f"roll must be (T, {KEYS}), one frame of {KEYS} keys per step, got shape "
            f"{tuple(roll.shape)}"
        )
    if roll.is_complex() or not bool(((roll == 0) | (roll == 1)).all()):
        found = sorted({float(v) for v in roll.flatten()[:10_000].tolist() if v not in (0, 1)})[:5]
        raise LstmkitValueError(
            f"roll must hold only 0 and 1 (a key off or on), got other values such as {found}; "
            "threshold a model's probabilities first, e.g. (p > 0.5)"
        )
    return roll.detach().to("cpu", torch.uint8)


def held_notes(roll: Tensor) -> list[tuple[int, int, int]]:
    """``(start, stop, key)`` of every held note of a checked ``(T, 88)`` roll, by start then key:
    a key on over frames ``start .. stop - 1`` and off (or the roll's edge) on either side."""
    edges = F.pad(roll.to(torch.int8), (0, 0, 1, 1)).diff(dim=0)  # (T + 1, 88): +1 on, -1 off
    notes = []
    for key in range(KEYS):
        starts = torch.nonzero(edges[:, key] == 1).flatten().tolist()
        stops = torch.nonzero(edges[:, key] == -1).flatten().tolist()
        notes += [(a, b, key) for a, b in zip(starts, stops, strict=True)]
    return sorted(notes)


def deal(notes: list[tuple[int, int, int]]) -> list[list[tuple[int, int, list[int]]]]:
    """Held notes ``(start, stop, key)`` dealt to parts, each a list of chords ``(start, stop,
    keys)`` that never overlap, so that a part needs no voices inside its measures (music21
    misplaces the measures of a part whose notes overlap when it reads a MIDI file back).

    At each start, from the top key down, a note goes to the first part free by then (there are
    four parts, Soprano to Bass, from the outset); failing that it joins a chord of the same
    span, the lowest such; failing that it opens a new part."""
    parts: list[list[tuple[int, int, list[int]]]] = [[] for _ in VOICE_NAMES]
    for start, stop, key in sorted(notes, key=lambda n: (n[0], -n[2])):
        free = [p for p in parts if not p or p[-1][1] <= start]
        same = [p for p in parts if p and p[-1][:2] == (start, stop)]
        if free:
            free[0].append((start, stop, [key]))
        elif same:
            same[-1][-1][2].append(key)
        else:
            parts.append([(start, stop, [key])])
    return parts


def part_name(k: int) -> str:
    """The name of part ``k`` of :func:`roll_to_score`: Soprano, Alto, Tenor, Bass, then
    Soprano 2, Alto 2, ... as in a double choir; every one is sung by :func:`voices`."""
    return VOICE_NAMES[k % 4] + (f" {k // 4 + 1}" if k >= 4 else "")


def roll_to_score(roll: Tensor, *, quarter_length: float = 1.0, lowest: int = LOWEST) -> Any:
    """A ``(T, 88)`` piano roll of 0/1 as a music21 ``stream.Score``: the inverse of
    :func:`piano_roll`.

    Key ``k`` is MIDI pitch ``lowest + k`` and frame ``t`` starts at offset
    ``t * quarter_length`` quarter notes. A key that stays on over consecutive frames is ONE held
    note (piano_roll sounds a tied note straight through, so it cannot tell a held note from a
    repeated one); a frame with no key on is a rest. The notes are dealt to parts named Soprano,
    Alto, Tenor and Bass (and Soprano 2, ... when more notes overlap than four parts can hold
    without voices; see :func:`deal`), so that :func:`voices` reads every part as sung. The
    meter is one frame per measure (1/4): a roll has no meter, and a longer measure would be
    padded with rest frames after the last note when the score is read back. Silence after the
    last note is not kept (MIDI has no rests to hold it)."""
    roll = check_roll(roll)
    if isinstance(quarter_length, bool) or not isinstance(quarter_length, (int, float)):
        raise LstmkitTypeError(f"quarter_length must be a number, got {describe(quarter_length)}")
    if not (math.isfinite(quarter_length) and quarter_length > 0):
        raise LstmkitValueError(f"quarter_length must be positive, got {quarter_length}")
    if isinstance(lowest, bool) or not isinstance(lowest, int):
        raise LstmkitTypeError(f"lowest must be an int, got {describe(lowest)}")
    if not 0 <= lowest <= 127 - (KEYS - 1):
        raise LstmkitValueError(
            f"lowest must put all {KEYS} keys in MIDI's 0..127, expected 0..{128 - KEYS}, got "
            f"{lowest}"
        )
    music21 = require("music21", "chorales")
    score = music21.stream.Score()
    for k, chords in enumerate(deal(held_notes(roll))):
        part = music21.stream.Part()
        part.partName = part_name(k)
        singer = music21.instrument.Instrument()
        singer.partName = part.partName  # written as the MIDI track's name, read back as the part's
        part.insert(0.0, singer)
        part.insert(0.0, music21.meter.TimeSignature(_fraction(quarter_length)))
        for start, stop, keys in chords:
            pitches = [lowest + key for key in sorted(keys)]
            length = (stop - start) * quarter_length
            sound = (
                music21.note.Note(midi=pitches[0], quarterLength=length)
                if len(pitches) == 1
                else music21.chord.Chord(pitches, quarterLength=length)
            )
            part.insert(start * quarter_length, sound)
        score.insert(0.0, part)
    return score


def _fraction(quarter_length: float) -> str:
    """A meter of one frame per measure, ``quarter_length`` quarter notes: ``1/4``, ``2/4``,
    ``1/8``; a frame no meter spells (a third of a quarter) gets ``1/4``."""
    for denominator in (4, 8, 16, 32):
        beats = quarter_length * denominator / 4
        if beats == int(beats):
            return f"{int(beats)}/{denominator}"
    return "1/4"


def write_midi(roll: Tensor, path: str | Path) -> Path:
    """Writes a ``(T, 88)`` piano roll of 0/1, one frame per quarter note, as a standard MIDI
    file (``.mid`` or ``.midi``) through :func:`roll_to_score`, atomically (a crash leaves the
    old file or the new one, never a torn one). Reading it back with ``music21.converter.parse``
    and :func:`piano_roll` gives ``roll`` again, up to its last sounding frame."""
    if not isinstance(path, (str, Path)):
        raise LstmkitTypeError(f"path must be a str or Path, got {describe(path)}")
    target = Path(path)
    if target.suffix.lower() not in (".mid", ".midi"):
        raise LstmkitValueError(f"a MIDI file is named .mid or .midi, got {target.name!r}")
    score = roll_to_score(roll)
    translate = require("music21.midi.translate", "chorales")
    data = bytes(translate.streamToMidiFile(score).writestr())
    return atomic_write(target, lambda f: f.write(data), binary=True)


def _parse(paths: list[Any]) -> tuple[list[str], list[Tensor], list[int]]:
    """Names, piano rolls and analysed tonics (pitch class, minor keys + 12) of the chorales in
    ``paths``, skipping files that hold no four-voice chorale."""
    corpus = require("music21.corpus", "chorales")
    names, rolls, tonics = [], [], []
    for i, path in enumerate(paths):
        if i % 50 == 0:
            _log.info(
                "chorales: parsing %d of %d music21 scores (once; then cached)", i, len(paths)
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21's notices about the files, not lstmkit's
            score = corpus.parse(str(path))
            if not voices(score):
                continue
            key = score.analyze("key")
        names.append(path.name)
        rolls.append(piano_roll(score))
        tonics.append(int(key.tonic.pitchClass) + (12 if key.mode == "minor" else 0))
    return names, rolls, tonics


def _duplicates(names: list[str], rolls: list[Tensor]) -> list[bool]:
    """Which pieces repeat an earlier one: the same BWV movement (music21 keeps some chorales in
    several versions) or the same piano roll up to transposition (a chorale catalogued twice)."""
    seen_works: set[str] = set()
    seen_rolls: set[bytes] = set()
    repeated = []
    for name, roll in zip(names, rolls, strict=True):
        used = torch.nonzero(roll.any(0)).flatten()
        shape = (
            roll[:, int(used.min()) : int(used.max()) + 1] if len(used) else roll
        )  # untransposed
        fingerprint = shape.numpy().tobytes() + str(tuple(shape.shape)).encode()
        repeated.append(work(name) in seen_works or fingerprint in seen_rolls)
        seen_works.add(work(name))
        seen_rolls.add(fingerprint)
    return repeated


def bach_chorales(pieces: int | None = None) -> dict[str, Tensor]:
    """music21's Bach chorales in file-name order (the first ``pieces`` score files, or all):
    ``frames`` ``(sum of T, 88)`` uint8, one piece after another; ``lengths``, ``tonics`` and
    ``duplicate`` (1 where a piece repeats an earlier one) ``(N,)``; ``names`` the file names
    joined by newlines, as uint8. Parsed once (about a minute for all), then read from the
    cache."""
    paths = list(require("music21.corpus", "chorales").getComposer("bach"))
    # by name, and a MusicXML file before a Humdrum copy of the same chorale (it is kept)
    paths = sorted(
        (p for p in paths if p.suffix in SUFFIXES), key=lambda p: (p.stem, SUFFIXES.index(p.suffix))
    )
    if pieces is not None:
        paths = paths[:pieces]

    def build() -> dict[str, Tensor]:
        names, rolls, tonics = _parse(paths)
        joined = "\n".join(names).encode()
        return {
            "frames": torch.cat(rolls),
            "lengths": torch.tensor([len(r) for r in rolls], dtype=torch.int64),
            "tonics": torch.tensor(tonics, dtype=torch.int64),
            "duplicate": torch.tensor(_duplicates(names, rolls), dtype=torch.uint8),
            "names": torch.frombuffer(bytearray(joined), dtype=torch.uint8),
        }

    version = package_version("music21", "chorales")
    key = {"corpus": "music21 bach", "version": version, "files": [p.name for p in paths]}
    return cached(f"chorales-{len(paths)}", key, build)


def split_pieces(count: int) -> dict[str, Tensor]:
    """Indices of ``count`` pieces dealt to train / valid / test in Boulanger-Lewandowski et al.
    2012's proportions (229 / 76 / 77 of 382), in one fixed seeded order; each part is sorted."""
    total = sum(PUBLISHED_SPLIT)
    valid = max(1, round(count * PUBLISHED_SPLIT[1] / total))
    test = max(1, round(count * PUBLISHED_SPLIT[2] / total))
    if count - valid - test < 1:
        raise LstmkitValueError(
            f"chorales: {count} pieces cannot fill three splits; use at least 3"
        )
    order = torch.from_numpy(np.random.RandomState(SPLIT_SEED).permutation(count))
    parts = torch.split(order, [count - valid - test, valid, test])
    return {name: part.sort().values for name, part in zip(SPLITS, parts, strict=True)}


def transposition(tonic: int) -> int:
    """Semitones that move a key with this tonic (minor + 12) to C major or C minor, the nearer
    way (-5 to +6)."""
    return (-(tonic % 12) + 5) % 12 - 5


def bernoulli_nll(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Negative log-likelihood in nats per real time step: ``-log p(frame)`` under independent
    Bernoullis with ``sigmoid(logits)``, summed over the keys, averaged over steps where
    ``mask`` ``(B, T)`` is True. ``logits`` and ``targets`` are ``(B, T, 88)``."""
    per_key = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # (B, T, 88)
    per_step = per_key.sum(-1)  # (B, T)
    return per_step[mask].mean()


class ChoralesTask(Task):
    """Predict each next frame of a Bach chorale's piano roll: 88 keys sampled at every quarter
    note, as in the JSB Chorales set of Boulanger-Lewandowski et al. 2012.

    Data: music21's Bach chorales (its ``bach`` corpus folder; the source of JSB, not JSB's own
    files). Only the sung parts count (:func:`voices`); a file holding no four-voice chorale
    (a keyboard prelude) is skipped, and a piece that repeats an earlier one (the same BWV
    movement in another version, or the same piano roll up to transposition) is dropped before
    splitting (:attr:`duplicates` lists them). See :func:`piano_roll` for ties, rests and
    fermatas. ``pieces`` reads only the first ``pieces`` score files, for small runs.

    Keys: with ``transpose=false`` (the default) each chorale keeps its written key;
    ``transpose=true`` moves each to C major or C minor by music21's key analysis (Krumhansl's
    profiles), the nearer way, as the JSB files BL2012 published were transposed.

    Split: by piece, in BL2012's proportions 229 / 76 / 77, dealt in one fixed seeded order
    (:func:`split_pieces`); no piece is in two parts. ``evaluate`` names the part evaluation
    reads: ``valid`` (default) while choosing settings, ``test`` for a final figure.

    Inputs are frames ``0 .. T-2`` of a piece, targets frames ``1 .. T-1`` (``(B, T-1, 88)``,
    multi-hot); pieces differ in length and are padded, with their lengths, and never cut.
    Training batches draw training pieces uniformly with replacement. The metric ``nll`` is the
    negative log-likelihood per time step in nats, summed over the 88 keys under independent
    Bernoullis and averaged over every real step of the held-out pieces (one evaluation batch
    holds them all, so the average is over steps, not pieces); lower is better. The baseline is
    a model without memory: each key on independently with its frequency in the training
    targets (add-half smoothed, so a key never seen costs a finite amount).
    """

    name = "chorales"
    citation = "Boulanger-Lewandowski et al. 2012 (JSB Chorales: polyphonic music as piano rolls)"
    readout = "all"
    metric = "nll"
    higher_is_better = False
    vocab_size = None
    input_size = KEYS
    output_size = KEYS
    source = (
        "music21.corpus.getComposer('bach'): the Bach chorales shipped with music21, parsed to "
        "piano rolls once and cached"
    )
    needs_data: ClassVar[bool] = True
    models: ClassVar[tuple[str, ...]] = ("sequence", "vrnn", "storn")
    baseline_summary: ClassVar[str] = (
        "memoryless: each key on with its training frequency (NLL of that, per step)"
    )
    published = (
        "JSB Chorales test NLL per step, Chung et al. 2014 Table 2: GRU 8.54, LSTM 8.67 (the tanh "
        "RNN's figure not verified here), about 20k parameters each, on BL2012's own 229 / 76 / 77 "
        "files; here music21's chorales in the same proportions"
    )
    variant_findings: ClassVar[tuple[tuple[str, str], ...]] = (
        ("NFG", "worse"),
        ("NOAF", "worse"),
        ("CIFG", "close"),
        ("NP", "close"),
    )
    """Greff et al. 2015's ordering that ``lstmkit compare`` checks a run against: each variant
    ``worse`` than vanilla, or ``close`` to it; and no variant clearly better than vanilla."""
    variant_findings_note: ClassVar[str] = (
        "Greff et al. 2015 (LSTM: A Search Space Odyssey, on TIMIT, IAM Online and JSB Chorales): "
        "no variant clearly better than vanilla; removing the forget gate (NFG) or the output "
        "activation (NOAF) hurt most; coupling the gates (CIFG) or dropping the peepholes (NP) "
        "cost little. Their per-variant JSB numbers (box plots of 200 random-search trials per "
        "variant) are not verified here and not printed"
    )

    def __init__(
        self,
        *,
        pieces: int | None = None,
        transpose: bool = False,
        evaluate: str = "valid",
        solved_at: float | None = None,
    ) -> None:
        if pieces is not None and (isinstance(pieces, bool) or not isinstance(pieces, int)):
            raise LstmkitTypeError(f"pieces must be a whole number or none, got {describe(pieces)}")
        if pieces is not None and pieces < 5:
            raise LstmkitValueError(f"pieces must be at least 5 (three splits), got {pieces}")
        if not isinstance(transpose, bool):
            raise LstmkitTypeError(f"transpose must be true or false, got {describe(transpose)}")
        check_choice("evaluate", evaluate, ["valid", "test"])
        if solved_at is not None and not solved_at > 0.0:
            raise LstmkitValueError(f"solved_at must be a positive NLL or none, got {solved_at}")
        self.pieces, self.transpose, self.evaluate = pieces, transpose, evaluate
        self.solved_at = solved_at
        data = bach_chorales(pieces)
        names = bytes(data["names"].tolist()).decode().split("\n")
        rolls = list(torch.split(data["frames"], data["lengths"].tolist()))
        if transpose:
            rolls = [
                self._transposed(r, int(t)) for r, t in zip(rolls, data["tonics"], strict=True)
            ]
        kept = torch.nonzero(data["duplicate"] == 0).flatten().tolist()
        self.duplicates = [n for i, n in enumerate(names) if i not in set(kept)]
        """File names of the pieces dropped as repeats of earlier ones."""
        self.names = [names[i] for i in kept]
        """File names of the pieces used, in file-name order; splits index into it."""
        self.rolls = [rolls[i] for i in kept]
        self.splits = split_pieces(len(kept))
        """Indices into :attr:`names` of each part: ``train``, ``valid``, ``test``."""
        self.train_inputs, self.train_targets, self.train_lengths = self._pairs("train")
        self.eval_inputs, self.eval_targets, self.eval_lengths = self._pairs(evaluate)
        frames = torch.cat([self.rolls[i][1:] for i in self.splits["train"].tolist()]).double()
        self.key_frequency = (frames.sum(0) + 0.5) / (len(frames) + 1.0)
        """``(88,)`` float64: how often each key is on in the training targets, add-half
        smoothed: the memoryless baseline's probabilities."""
        self._baseline = self.memoryless_nll(self.eval_targets, self.eval_lengths)

    @staticmethod
    def _transposed(roll: Tensor, tonic: int) -> Tensor:
        shift = transposition(tonic)
        moved = torch.roll(roll, shift, dims=1)
        wrapped = moved[:, :shift] if shift > 0 else moved[:, KEYS + shift :]
        if shift and wrapped.any():
            raise LstmkitValueError("transposing a chorale to C moved it off the 88 keys")
        return moved

    def _pairs(self, split: str) -> tuple[Tensor, Tensor, Tensor]:
        """A part's pieces as padded float32 ``(N, T_max - 1, 88)`` inputs (frames ``0..T-2``)
        and targets (frames ``1..T-1``), and ``(N,)`` lengths ``T - 1``."""
        rolls = [self.rolls[i].float() for i in self.splits[split].tolist()]
        inputs, lengths = pad([r[:-1] for r in rolls])
        targets, _ = pad([r[1:] for r in rolls])
        return inputs, targets, lengths

    def memoryless_nll(self, targets: Tensor, lengths: Tensor) -> float:
        """NLL per real step of ``(N, T, 88)`` targets when each key is on independently with
        its training frequency."""
        p = self.key_frequency
        log_on, log_off = torch.log(p), torch.log1p(-p)  # (88,)
        per_step = -(targets.double() * log_on + (1 - targets.double()) * log_off).sum(-1)
        mask = step_mask(lengths, targets.shape[0], targets.shape[1], targets.device)
        return float(per_step[mask].mean())

    @property
    def baseline(self) -> float:
        return self._baseline

    @property
    def baseline_note(self) -> str:
        return "memoryless: each key on with its training frequency"

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        index = torch.randint(0, len(self.train_lengths), (batch_size,), generator=generator)
        lengths = self.train_lengths[index]
        steps = int(lengths.max())
        return Batch(self.train_inputs[index, :steps], self.train_targets[index, :steps], lengths)

    def eval_batches(self, batch_size: int, count: int) -> list[Batch]:
        """The first ``batch_size * count`` held-out pieces (all, for any usual size) in ONE
        batch, so that the metric averages over steps rather than pieces."""
        n = min(len(self.eval_lengths), batch_size * count)
        lengths = self.eval_lengths[:n]
        steps = int(lengths.max())
        return [Batch(self.eval_inputs[:n, :steps], self.eval_targets[:n, :steps], lengths)]

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        mask = step_mask(batch.lengths, len(batch), batch.targets.shape[1], outputs.device)
        return bernoulli_nll(outputs, batch.targets, mask)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        return {"nll": self.loss(outputs, batch).item()}

    def solved(self, metrics: dict[str, float]) -> bool:
        return self.solved_at is not None and metrics["nll"] <= self.solved_at

    def options(self) -> dict[str, Any]:
        return {
            "pieces": self.pieces,
            "transpose": self.transpose,
            "evaluate": self.evaluate,
            "solved_at": self.solved_at,
        }
