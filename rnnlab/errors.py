"""The one exception family rnnlab raises for problems a user can fix.

The command line catches `RnnlabError` once, prints its message as one line on stderr and exits with
`exit_code`; anything else is a bug and keeps its traceback.
"""


class RnnlabError(Exception):
    """A user-facing error: a one-line message and the process exit code the CLI should use."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(RnnlabError):
    """A setting out of range or unknown; the message names the flag."""


class DataError(RnnlabError):
    """A corpus or series that cannot be used: missing, empty, binary, not UTF-8, too short."""


class ModelDirError(RnnlabError):
    """A model directory that is missing, incomplete, corrupt, or would be overwritten."""


class VocabularyError(RnnlabError):
    """Text holding characters or words that the tokenizer does not know."""


class TrainingDivergedError(RnnlabError):
    """The loss became inf or NaN: the settings (learning rate) or the data's scale need changing."""


class MissingExtraError(RnnlabError):
    """An optional dependency is not installed: one line naming the package and the extra that brings it."""

    def __init__(self, package: str, needed_for: str, extra: str = "forecast"):
        super().__init__(f"{needed_for} needs {package}: install the {extra} extra, "
                         f"pip install 'rnnlab[{extra}]'")
        self.package = package
