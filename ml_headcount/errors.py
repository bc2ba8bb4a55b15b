"""The one kind of failure that is the user's to fix: bad input, bad settings, unusable storage or credentials.

Everything that raises a `UserError` is reported as one line naming the file,
row and column where they apply, exits 2, is never retried and never shows a
traceback; any other exception is a bug or a transient fault and keeps its
traceback.
"""


class UserError(Exception):
    """A failure the user fixes by changing input, settings, storage or credentials."""


class DeterministicError(RuntimeError):
    """A failure the same input reproduces (a bug hit on a remote machine, say): retrying cannot help."""


class InputError(UserError, ValueError):
    """Input that cannot be used at all; the message names the file (and row/column)."""


class InputChangedError(UserError):
    """The input file changed while it was being read (still being written?): nothing it yielded is used."""
