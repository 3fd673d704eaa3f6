"""Domain exceptions: each names one kind of bad input, so a batch can catch them narrowly."""


class QaError(Exception):
    """Base of every error the pipeline reports to the user as one readable line."""


class InputError(QaError):
    """A manifest, folder or option the user gave is unusable; raised before any audio is touched."""


class OutputError(QaError):
    """The output folder cannot be created or written (permissions, disk full)."""


class OutputLocked(QaError):
    """Another `qa run` or `qa score` is writing the same output folder."""


class CallFailed(QaError):
    """One call could not be processed; the batch records it as status=failed and goes on.

    `retry` says whether running the same command again should try the call again. By default it
    does: the cause may have been passing (a model error, a file being copied). Failures that
    follow from the audio's content alone (see the subclasses) are kept until the audio changes.
    """

    retry = True


class DecodeError(CallFailed):
    """The audio file is empty, not audio, or of an unsupported shape or length."""

    retry = False


class AudioMissing(DecodeError):
    """The audio file is not there (any more), or cannot be opened."""

    retry = True


class AudioChanged(CallFailed):
    """The audio file changed while it was being decoded (still being copied, replaced in place)."""

    retry = True


class NoSpeech(CallFailed):
    """The audio decodes but holds no speech: silence, tones, music."""

    retry = False


class ModelError(QaError):
    """The speech model could not be found or loaded."""


class Stopped(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM from a scheduler or a shutdown, SIGHUP from a closed
    terminal): the batch ends as on Ctrl-C (SIGINT), finished calls kept, nothing counted against a
    call. A KeyboardInterrupt, so that whatever cleans up after Ctrl-C cleans up after it too."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(f"stopped by {signal_name}")
        self.signal_name = signal_name
        self.exit_code = exit_code  # 128 + the signal's number, as a shell reports a process it killed
