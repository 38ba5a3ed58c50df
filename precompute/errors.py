"""The one error type of the command line's own checks."""


class CommandError(Exception):
    """A problem with what a command was asked (a path, the cluster, the picture to write)
    that the user can fix: printed in one line, exit status 2."""
