"""Errors that CLI verbs raise for bad input; `heartgrid.tools.cli.main` maps them to exit 2."""


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""
