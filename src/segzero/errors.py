"""User-facing errors.

A ``UserError`` is a problem the user can fix (a missing file, a bad argument, an unreachable model id).
The CLI prints its message on one line to stderr and exits with code 2, without a traceback. Library code
raises it (or a subclass) wherever the cause is the caller's input rather than a bug.
"""


class UserError(Exception):
    """A problem with the caller's input; the message names it in one line."""

    exit_code = 2
