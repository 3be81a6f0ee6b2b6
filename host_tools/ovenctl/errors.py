"""Errors that ovenctl reports as one clear line (no traceback)."""


class UserError(Exception):
    """A user mistake or bad input: printed as one clear message, exit code `code`."""

    def __init__(self, msg, code=2):
        super().__init__(msg)
        self.code = code
