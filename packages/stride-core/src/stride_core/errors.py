"""The project's exception types; only the CLI layer turns them into exit codes and one-line messages."""


class StrideError(Exception):
    """A user-facing error: the message names the file or field, what was seen, and the fix."""


class ConfigError(StrideError):
    """A config file or option is invalid."""


class ArtifactError(StrideError):
    """An input artifact is missing, corrupt, or of the wrong contract or version."""


class InputDataError(StrideError):
    """Source data is missing or not what the config says it is (variables, units, grid, NaNs)."""


class Preempted(StrideError):
    """The run was stopped by a signal (SIGTERM/SIGUSR1: pre-emption) after saving its state; running the
    same command again resumes it. Exits with its own code (EXIT_PREEMPTED), so a scheduler's requeue script
    can tell it from bad input."""
