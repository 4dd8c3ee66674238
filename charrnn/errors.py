"""The exception types for expected failures.

Everything a user can cause (a missing file, a bad option value, a corrupt checkpoint) raises a
`CharrnnError` whose message is a single line naming the problem. The command line (charrnn/cli/) catches
it at the boundary, prints `Error: <message>` on stderr and exits with status 1; anything else is a bug.
`OptionError`, a bad option value (charrnn/config.py), is a `CharrnnError` too.
"""


class CharrnnError(Exception):
    """An expected, user-facing failure. The message is one line that names the problem."""


class OptionError(CharrnnError):
    """An option value breaks its rule (refused before any work is done)."""
