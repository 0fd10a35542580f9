"""Ctrl-C during training: the loop stops where it is safe to, never in the middle of a write or an import.

Python turns a SIGINT into a KeyboardInterrupt at whatever line the main thread is running. Most lines
are harmless places to stop, but not all:
  - inside ``np.savez`` the exception abandons a checkpoint half-written, and the epoch's work with it;
  - inside a class body that is being built (matplotlib's first import, at the end of epoch 1, builds
    many) Python 3.11 wraps it in a RuntimeError from ``__set_name__``, which no
    ``except KeyboardInterrupt`` catches: the user got a traceback instead of the resume command.
So while the training loop runs, the first Ctrl-C only records the request. The loop asks
``stop_if_requested()`` between steps and after each epoch's files are written, and stops there: one
step late, or, when the Ctrl-C came at the epoch's end, once its measurement and files are done. A second
Ctrl-C stops at once, for whoever will not wait.
"""
import signal
import threading


class StopOnRequest:
    """A context manager that holds SIGINT while it is open; ``stop_if_requested()`` raises the
    KeyboardInterrupt the first Ctrl-C would have raised, at a point the caller chose.

    It changes nothing where Python's own handler is not the one installed: a run started in the
    background with SIGINT ignored keeps ignoring it, and a thread other than the main one cannot
    install handlers at all."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        self.requested = False
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._record)
        return self

    def _record(self, signum, frame):
        if self.requested:   # the second Ctrl-C: now
            raise KeyboardInterrupt
        self.requested = True

    def stop_if_requested(self):
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exception):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None
        return False
