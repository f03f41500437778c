"""Preemption: SIGTERM, SIGUSR1 and SIGUSR2 end a training run with a checkpoint to resume.

These are what clusters send before they stop a job: Kubernetes, Docker and ``kill`` send
SIGTERM; SLURM sends SIGTERM when it preempts a job and the ``--signal`` of the job (SIGUSR1
for Lightning's recipes, SIGUSR2 for submitit) some time before its time limit.

While training steps run, a signal is only recorded; at the next optimizer-step boundary
(never inside a gradient accumulation) every process writes ``last.ckpt`` and raises
:class:`Preempted` (:class:`~spoof_lightning.callbacks.preemption.PreemptionCheckpoint`).
At any other moment (start-up, validation outside fitting, the test pass) it raises
:class:`Preempted` at once. train.py then records ``"status": "preempted"`` in summary.json
and exits with 128 + the signal number (:func:`exit_preempted`: 143 for SIGTERM, 138 for
SIGUSR1, 140 for SIGUSR2); ``resume=true`` continues the run. A handler that was installed
before (submitit's requeue on SIGUSR2) is called after the checkpoint is saved.

eval.py handles the same signals: scoring stops at once, nothing is written, and it exits
with 128 + the signal number. Lightning's own handling stays out of the way: its SIGTERM
handler would stop after the current batch (mid-accumulation, without a checkpoint) and exit
0, and its predict loop never looks at it (eval.py would score on), so it is replaced while
training or scoring runs; its SLURM auto-requeue on SIGUSR1 is only installed when no
handler exists.
"""

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class Preempted(Exception):
    """Training stopped on a signal; ``checkpoint`` is the last.ckpt written for it."""

    def __init__(self, signum: int, checkpoint: Path | None = None) -> None:
        self.signum, self.checkpoint = signum, checkpoint
        saved = f"; saved {checkpoint}" if checkpoint else ""
        super().__init__(f"stopped by {self.signal_name}{saved}")

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    owner = 0  # the process whose handlers are installed (0: none)
    received: int | None = None
    deferred = False  # True while training steps run: stop at the next step boundary
    previous: dict[int, Any] = {}  # the handlers installed before ours


def _handle(signum: int, frame: FrameType | None) -> None:
    _State.received = _State.received or signum
    if not _State.deferred:
        raise Preempted(signum)


def _block_in_forked_child() -> None:
    """A process forked while the handlers are installed (a DataLoader worker) leaves the
    signals to the training process: it blocks them. (PyTorch's workers die of a SIGTERM
    that SLURM sends to every process of a job, and the training loop then fails.) Workers
    end as usual, when the loader stops them or their parent has exited."""
    if _State.owner and _State.owner == os.getppid():
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


os.register_at_fork(after_in_child=_block_in_forked_child)


def active() -> bool:
    """True inside :func:`handling_signals` in this process."""
    return _State.owner == os.getpid()


def install() -> None:
    """(Re)install the handlers, e.g. over those Lightning sets when training starts."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _handle)


@contextmanager
def handling_signals() -> Iterator[None]:
    """Handle :data:`SIGNALS` inside the block; the earlier handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    _State.owner, _State.received, _State.deferred = os.getpid(), None, False
    _State.previous = previous
    install()
    try:
        yield
    finally:
        _State.owner, _State.deferred = 0, False
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def defer(deferred: bool) -> None:
    """While True, a signal is recorded for the next step boundary instead of raising."""
    _State.deferred = deferred


def received() -> int | None:
    """The first signal received inside :func:`handling_signals`, if any."""
    return _State.received


def exit_preempted(stop: Preempted) -> NoReturn:
    """Exit after a preemption: the earlier handler of the signal, if there was one (e.g.
    submitit's requeue, which exits itself), else ``SystemExit(128 + signal)``."""
    earlier = _State.previous.get(stop.signum)
    if callable(earlier):
        earlier(stop.signum, None)
    raise SystemExit(stop.exit_code)


__all__ = [
    "SIGNALS",
    "Preempted",
    "active",
    "defer",
    "exit_preempted",
    "handling_signals",
    "install",
    "received",
]
