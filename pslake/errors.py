"""Errors a user can act on: each message names the part, the target and what to set."""


class PslakeError(Exception):
    """A failure with a one-line, actionable message (shown without a traceback)."""
