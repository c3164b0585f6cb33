"""Errors every layer may raise for bad input; the CLI (`heartgrid.tools.cli.main`) maps
them to exit status 2. They live at the bottom so that no layer has to import the CLI."""


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


class FileFault(Exception):
    """The file system refused a run's read or write (disk full, read-only, no permission):
    printed as one line that names the file and what to change, exit status 4. Nothing that
    was checkpointed is lost; the same command resumes once the cause is fixed."""


EXIT_FILE_FAULT = 4
