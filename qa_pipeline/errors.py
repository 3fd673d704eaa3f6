"""Domain exceptions: each names one kind of bad input, so a batch can catch them narrowly."""


class QaError(Exception):
    """Base of every error the pipeline reports to the user as one readable line."""


class InputError(QaError):
    """A manifest, folder or option the user gave is unusable; raised before any audio is touched."""


class CallFailed(QaError):
    """One call could not be processed; the batch records it as status=failed and goes on."""


class DecodeError(CallFailed):
    """The audio file is missing, unreadable, empty, not audio, or of an unsupported shape."""


class ModelError(QaError):
    """The speech model could not be found or loaded."""
