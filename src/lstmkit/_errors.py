"""lstmkit's error classes. Every error lstmkit raises on purpose (a user's mistake, a damaged
file, a run it refuses) is an :class:`LstmkitError`, and also the built-in class it would
otherwise be, so ``except ValueError`` keeps catching what it caught. The command line turns
each into one line and exit status 2."""

from __future__ import annotations


class LstmkitError(Exception):
    """The base of every error lstmkit raises on purpose; its message says what was expected
    and what came."""


class LstmkitValueError(LstmkitError, ValueError):
    """A value, shape, size, option or file content that lstmkit cannot take."""


class LstmkitTypeError(LstmkitError, TypeError):
    """An argument of a type that lstmkit cannot take."""


class LstmkitKeyError(LstmkitError, KeyError):
    """A name that is not there (a cell or a value in a trace)."""

    def __str__(self) -> str:  # the message, not KeyError's repr of it
        return str(self.args[0]) if self.args else ""


class LstmkitIndexError(LstmkitError, IndexError):
    """An index out of its range (a layer of a stack)."""


class LstmkitRuntimeError(LstmkitError, RuntimeError):
    """A call that cannot run in the present state (a trace inside a trace)."""


class LstmkitFileNotFoundError(LstmkitError, FileNotFoundError):
    """A file or folder lstmkit was asked to read that is not there."""


class LstmkitFileExistsError(LstmkitError, FileExistsError):
    """A place lstmkit was asked to write that holds something it will not overwrite."""


class LstmkitImportError(LstmkitError, ImportError):
    """An optional package a feature needs that is not installed; the message names the extra
    that installs it (``pip install 'lstmkit[data]'``)."""


class LstmkitOSError(LstmkitError, OSError):
    """A file lstmkit could not write or read for a reason of the system's (a full disk, a
    missing permission), said with what was kept and how to go on."""


def one_line(error: BaseException) -> str:
    """An error's message on one line (its whitespace runs made single spaces), or its class's
    name where it has none: how lstmkit quotes another library's error in its own message."""
    return " ".join(str(error).split()) or type(error).__name__
