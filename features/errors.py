"""The one exception type for errors a user can act on: the CLI prints its message, never a traceback."""


class CreditgradeError(Exception):
    """An error caused by input or state a user controls; its message names the field and the rule."""
