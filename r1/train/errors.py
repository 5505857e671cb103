"""The errors a training run reports to its user (the CLI prints their message, never a traceback).

Deliberately separate from the modules that raise them (checkpoint.py, resume.py, loop.py), so that
each can raise them without importing the others.
"""


class RunError(RuntimeError):
    """The run cannot start or go on; the message says why and what to do (docs/reliability.md)."""


class Preempted(RuntimeError):
    """SIGTERM or SIGINT arrived: the run finished its step, saved a checkpoint and stopped.

    Rerunning the same command with ``run.resume=true`` (or ``auto``) continues it exactly."""

    exit_code = 75  # EX_TEMPFAIL: a scheduler's requeue logic can tell "stopped on request" from a failure

    def __init__(self, signal_name: str, step: int, checkpoint):
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint
        super().__init__(
            f"{signal_name} received: stopped after step {step}, checkpoint {checkpoint}; "
            "rerun the same command with run.resume=true to continue"
        )
