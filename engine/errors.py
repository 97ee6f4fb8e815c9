"""The one exception a user can cause.

Every mistake a user can make (a bad flag, file, key or value) raises `UserError` with a one-line
message that names the file/key/value and what would be accepted. The CLI prints it and exits 2;
the TUI shows it next to the field `field` names (a flag like '--steps' or a form field like
'tokens'; None when the error is about no one field). Anything else escaping is a bug in LSDT.
"""

import re

# Line breaks (str.splitlines' set) and the blanks around them: a message stays one line, while the
# spaces inside a value it echoes (repr('  ')) are kept as typed.
_LINE_BREAKS = re.compile(r"\s*[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]\s*")


class UserError(ValueError):
    """A one-line, user-facing explanation of bad input."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(_LINE_BREAKS.sub(" ", str(message)).strip())  # always one line
        self.field = field
