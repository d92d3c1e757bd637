"""Errors that are values at the batch level: one bad file is a failed result, not a crash.

`FileError` (and subclasses) belongs to one input and becomes that file's reason in the
summary; anything else that escapes is a bug or a fatal condition for the whole run.
"""

from __future__ import annotations


class IspcliError(Exception):
    """Base of every error ispcli reports as one clean line."""


class FileError(IspcliError):
    """A problem with one input or output file; the batch goes on."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # pickled across processes (workers, the decoder) with both fields, not the message
        return type(self), (self.path, self.reason)


class RawReadError(FileError):
    """The file is not a raw LibRaw can decode (or it is damaged)."""


class OutputError(FileError):
    """The output could not be written (permissions, full disk...)."""


class FatalError(IspcliError):
    """The whole run cannot go on (e.g. no output can be written at all)."""
