"""User-facing errors: each message says what went wrong and what to do."""


class SegError(Exception):
    """Base class of errors that are reported as one clear line, without a traceback."""


class ConfigError(SegError, ValueError):
    """A config value is invalid; the message names the key and what is allowed."""


class CheckpointError(SegError, RuntimeError):
    """A checkpoint cannot be used: not ours, from another model, or unreadable."""


class NonFiniteLossError(SegError, FloatingPointError):
    """The training loss became NaN or inf."""

    def __init__(self, epoch: int, batch: int):
        super().__init__(
            f"loss became NaN/inf at epoch {epoch}, batch {batch}; the run stopped and kept its best "
            "checkpoint. Lower optimizer.lr, set trainer.grad_clip=1.0, or use trainer.precision=32."
        )
        self.epoch = epoch
        self.batch = batch
