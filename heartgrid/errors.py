"""Errors every layer may raise for bad input; the CLI (`heartgrid.tools.cli.main`) maps
them to exit status 2. They live at the bottom so that no layer has to import the CLI."""


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""
