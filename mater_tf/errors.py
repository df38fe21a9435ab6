"""The one exception type for user mistakes.

Anything raised as `UserError` is printed by the command line as a single line
(what is wrong and how to fix it) with a non-zero exit and no traceback.
"""


class UserError(Exception):
    """A problem with the user's input: config, data, paths or arguments."""
