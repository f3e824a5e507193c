"""Errors that are the user's to fix: the CLI prints them and exits 2, never a traceback."""


class UserError(Exception):
    """Bad input other than the config file (a flag, a missing file, an unknown account)."""
