"""The command line's own exceptions: its checks' error, and SIGTERM."""


class CommandError(Exception):
    """A problem with what a command was asked (a path, the cluster, the picture to write)
    that the user can fix: printed in one line, exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``docker stop``), handled as Ctrl-C is."""
