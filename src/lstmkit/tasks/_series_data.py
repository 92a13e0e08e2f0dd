"""The series a forecasting task reads: a column of a user's CSV file, or one of the series that
ship inside pmdarima and statsmodels (nothing is downloaded), with its missing values filled only
when the user asks how."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from lstmkit._errors import LstmkitFileNotFoundError, LstmkitValueError
from lstmkit.tasks._data import cached, package_version, require

Fill = Literal["none", "ffill", "interpolate"]
FILLS = ("none", "ffill", "interpolate")

MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})
"""What a CSV cell holds for a missing value (compared in lower case, stripped)."""


@dataclass(frozen=True)
class BuiltIn:
    """A series shipped inside a package: where it comes from, and its natural season."""

    package: str  # the distribution whose wheel holds the data
    loader: str  # module and function, "pmdarima.datasets:load_airpassengers"
    season: int  # steps per season; 1 for a series without a fixed one (cycles are not seasons)
    what: str


BUILT_IN: dict[str, BuiltIn] = {
    "airpassengers": BuiltIn(
        "pmdarima", "pmdarima.datasets:load_airpassengers", 12,
        "monthly international airline passengers (thousands), 1949-1960, 144 points "
        "(Box & Jenkins)",
    ),
    "wineind": BuiltIn(
        "pmdarima", "pmdarima.datasets:load_wineind", 12,
        "monthly Australian wine sales (litres), 1980-1994, 176 points",
    ),
    "taylor": BuiltIn(
        "pmdarima", "pmdarima.datasets:load_taylor", 48,
        "half-hourly electricity demand in England and Wales, 12 weeks of 2000, 4,032 points "
        "(Taylor 2003); season 48 = one day",
    ),
    "lynx": BuiltIn(
        "pmdarima", "pmdarima.datasets:load_lynx", 1,
        "annual Canadian lynx trappings, 1821-1934, 114 points (a ~10-year cycle, not a season)",
    ),
    "austres": BuiltIn(
        "pmdarima", "pmdarima.datasets:load_austres", 4,
        "quarterly Australian residents (thousands), 1971-1993, 89 points",
    ),
    "woolyrnq": BuiltIn(
        "pmdarima", "pmdarima.datasets:load_woolyrnq", 4,
        "quarterly Australian woollen yarn production (tonnes), 1965-1994, 119 points",
    ),
    "heartrate": BuiltIn(
        "pmdarima", "pmdarima.datasets:load_heartrate", 1,
        "heart rate of a subject at rest, every 0.5 s, 150 points",
    ),
    "sunspots": BuiltIn(
        "statsmodels", "statsmodels.datasets.sunspots:SUNACTIVITY", 1,
        "annual sunspot numbers, 1700-2008, 309 points (an ~11-year cycle, not a season)",
    ),
    "nile": BuiltIn(
        "statsmodels", "statsmodels.datasets.nile:volume", 1,
        "annual flow of the Nile at Aswan (10^8 m^3), 1871-1970, 100 points",
    ),
    "co2": BuiltIn(
        "statsmodels", "statsmodels.datasets.co2:co2", 52,
        "weekly CO2 at Mauna Loa (ppm), 1958-2001, 2,284 points, 59 of them missing (pass "
        "fill=)",
    ),
    "elnino": BuiltIn(
        "statsmodels", "statsmodels.datasets.elnino:months", 12,
        "monthly sea surface temperature of the El Nino region (deg C), 1950-2010, 732 points",
    ),
}  # fmt: skip
"""The built-in series by name."""


@dataclass(frozen=True)
class Table:
    """Columns of a series, each ``(N,)`` float64 with NaN where a value is missing."""

    columns: dict[str, Tensor]
    source: str
    not_numeric: dict[
        str, tuple[int, str]
    ]  # a column that is not numbers: its first bad line, cell


def _load_built_in(name: str) -> Tensor:
    """The values of a built-in series, ``(N,)`` float64 with NaN where missing."""
    entry = BUILT_IN[name]
    where, _, attribute = entry.loader.partition(":")
    module = require(where, "series")
    if entry.package == "pmdarima":
        values = np.asarray(getattr(module, attribute)(as_series=False), dtype=np.float64)
    else:
        frame = module.load_pandas().data
        if attribute == "months":  # a row per year, a column per month
            values = frame.drop(columns="YEAR").to_numpy(dtype=np.float64).reshape(-1)
        else:
            values = frame[attribute].to_numpy(dtype=np.float64)
    return torch.from_numpy(values.copy())


def built_in(name: str) -> Table:
    """The built-in series ``name`` (see :data:`BUILT_IN`), read once, then from the cache."""
    if name not in BUILT_IN:
        raise LstmkitValueError(
            f"series: unknown built-in series {name!r}; the built-in ones are "
            f"{', '.join(BUILT_IN)} (or give path=FILE.csv,column=NAME)"
        )
    entry = BUILT_IN[name]
    key = {"series": name, "version": package_version(entry.package, "series")}
    values = cached(f"series-{name}", key, lambda: {"values": _load_built_in(name)})["values"]
    where = entry.loader.replace(":", " ")
    return Table({name: values}, f"{entry.what}; from {entry.package} ({where})", {})


def read_csv(path: Path) -> Table:
    """Every column of a CSV file with a header row, as numbers; a missing value (an empty cell,
    NA, NaN, null, ...) reads as NaN, and anything else that is not a number is an error that
    names its row and column."""
    if not path.is_file():
        raise LstmkitFileNotFoundError(f"series: no CSV file at {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()  # blank lines at the end
    if len(rows) < 2:
        raise LstmkitValueError(f"series: {path} needs a header row and at least one row of values")
    header = [name.strip() for name in rows[0]]
    values: dict[str, list[float]] = {name: [] for name in header}
    strings: dict[str, tuple[int, str]] = {}  # the first non-number of each column
    for line, row in enumerate(rows[1:], start=2):
        if not row and len(header) == 1:
            row = [""]  # one column: a blank line is its missing value
        if len(row) != len(header):
            raise LstmkitValueError(
                f"series: line {line} of {path} has {len(row)} fields, the header has {len(header)}"
            )
        for name, cell in zip(header, row, strict=True):
            text = cell.strip()
            if text.lower() in MISSING:
                values[name].append(math.nan)
                continue
            try:
                values[name].append(float(text))
            except ValueError:
                strings.setdefault(name, (line, text))
                values[name].append(math.nan)
    columns = {name: torch.tensor(v, dtype=torch.float64) for name, v in values.items()}
    return Table(columns, str(path), strings)


def table_column(table: Table, name: str, path: str) -> Tensor:
    """Column ``name`` of ``table``; an unknown or non-numeric column is an error that says which
    columns there are."""
    if name not in table.columns:
        raise LstmkitValueError(
            f"series: {path} has no column {name!r}; its columns are "
            f"{', '.join(repr(c) for c in table.columns)}"
        )
    values = table.columns[name]
    bad = table.not_numeric.get(name)
    if bad is not None:
        numeric = [c for c in table.columns if c not in table.not_numeric]
        raise LstmkitValueError(
            f"series: column {name!r} of {path} is not numeric: line {bad[0]} holds {bad[1]!r}; "
            f"the numeric columns are {', '.join(repr(c) for c in numeric) or 'none'}"
        )
    return values


def filled(values: Tensor, fill: str, what: str) -> Tensor:
    """``values`` with their NaNs filled as ``fill`` says: ``"none"`` refuses any, ``"ffill"``
    repeats the last value seen (a missing first value is refused), ``"interpolate"`` draws a
    straight line between the neighbours (and repeats the nearest value at either end)."""
    missing = torch.isnan(values)
    count = int(missing.sum())
    if count == 0:
        return values
    first = int(missing.nonzero()[0])
    if fill == "none":
        raise LstmkitValueError(
            f"series: {what} has {count} missing values (the first at row {first + 1}); say how "
            "to fill them: fill=ffill (repeat the last value) or fill=interpolate (linear)"
        )
    if count == len(values):
        raise LstmkitValueError(f"series: every value of {what} is missing")
    known = (~missing).nonzero().squeeze(1)
    if fill == "ffill":
        if missing[0]:
            raise LstmkitValueError(
                f"series: the first value of {what} is missing, so fill=ffill has nothing to "
                "repeat; use fill=interpolate"
            )
        last_known = torch.cummax(torch.where(missing, 0, torch.arange(len(values))), 0).values
        return values[last_known]
    x = values.numpy()
    steps = np.arange(len(x))
    return torch.from_numpy(np.interp(steps, known.numpy(), x[known.numpy()]))
