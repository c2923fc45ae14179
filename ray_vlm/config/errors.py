"""``UserError``: the base of every error a user fixes by changing input, not code."""


class UserError(ValueError):
    """A config key, path or input a user must fix; the message names it and says how.

    ``ray-vlm`` prints the message and exits with status 2 instead of a traceback.
    """
