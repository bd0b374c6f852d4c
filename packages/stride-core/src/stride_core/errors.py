"""The project's exception types; only the CLI layer turns them into exit codes and one-line messages."""


class StrideError(Exception):
    """A user-facing error: the message names the file or field, what was seen, and the fix."""


class ConfigError(StrideError):
    """A config file or option is invalid."""


class ArtifactError(StrideError):
    """An input artifact is missing, corrupt, or of the wrong contract or version."""


class InputDataError(StrideError):
    """Source data is missing or not what the config says it is (variables, units, grid, NaNs)."""
