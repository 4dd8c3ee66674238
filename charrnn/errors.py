"""The one exception type for expected failures.

Everything a user can cause (a missing file, a bad option value, a corrupt checkpoint) raises a
`CharrnnError` whose message is a single line naming the problem. `cli.py` catches it at the boundary,
prints `Error: <message>` on stderr and exits with status 1; anything else is a bug.
"""


class CharrnnError(Exception):
    """An expected, user-facing failure. The message is one line that names the problem."""
