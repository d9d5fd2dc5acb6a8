"""User-facing errors: the CLI prints their message (no traceback) and exits non-zero."""


class UserError(Exception):
    """Bad input or a missing resource, with a message that says what to do."""
