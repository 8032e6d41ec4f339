"""Admission to the training slot, counted apart from Gradio's queue. No Gradio here.

Gradio's queue ``max_size`` is one count for every event, so training requests that waited there
(each up to ``limits.MAX_TRAIN_SECONDS``) would fill it and lock every other visitor out of
Inspect, Generate and Compare. Instead the ``/train`` event has no Gradio concurrency limit and
its handler asks this gate for the slot: ``limits.TRAIN_CONCURRENCY`` runs train, at most
``limits.MAX_WAITING_RUNS`` wait (first come, first served), at most one waiting per session;
beyond that the request is refused at once with a message.

A ticket whose handler stopped asking (a cancelled or abandoned request) is dropped after
``STALE_S``; an admitted ticket holds its slot until released or, once it has a run, until the
run has finished.
"""
from __future__ import annotations

import threading
import time

from . import limits

STALE_S = 10.0  # a waiting ticket not polled for this long is dropped
BUILD_S = 60.0  # an admitted ticket may take this long to build its run (e.g. tokenize an upload)


class Busy(ValueError):
    """No room: the message says how many runs wait and what to do."""


class Ticket:
    def __init__(self, gate: "Gate", owner: str):
        self.gate, self.owner = gate, owner
        self.seen = time.monotonic()
        self.admitted = False
        self.released = False
        self.finished = None  # the started run's ``finished`` event: the slot is free when it is set

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the slot; 0 once admitted, else the place in line (1 = next)."""
        return self.gate.wait(self, timeout)

    def hold(self, run) -> None:
        """The admitted request started ``run``: the slot is held until the run has finished.

        Only the run's event is kept: a ticket the gate still lists (until its next prune) must not
        keep a closed tab's model alive."""
        self.finished = run.finished

    def release(self) -> None:
        self.gate.release(self)

    def alive(self, now: float) -> bool:
        if self.released:
            return False
        if self.finished is not None:
            return not self.finished.is_set()
        return now - self.seen <= (BUILD_S if self.admitted else STALE_S)


class Gate:
    """``slots`` runs at once and ``max_waiting`` in line, at most one in line per owner."""

    def __init__(self, slots: int = limits.TRAIN_CONCURRENCY, max_waiting: int = limits.MAX_WAITING_RUNS):
        self.slots, self.max_waiting = slots, max_waiting
        self.running: list[Ticket] = []
        self.waiting: list[Ticket] = []
        self.cond = threading.Condition()

    def enter(self, owner: str) -> Ticket:
        """A ticket for ``owner`` (a session hash): admitted at once, in line, or Busy."""
        with self.cond:
            self._prune()
            if any(t.owner == owner for t in self.waiting):
                raise Busy("this session already has a training run waiting for its turn: wait for it, or "
                           "press Stop and start again.")
            if len(self.waiting) >= self.max_waiting:
                raise Busy(f"{len(self.waiting)} runs are waiting; try again in a few minutes.")
            ticket = Ticket(self, owner)
            self.waiting.append(ticket)
            self._promote()
            return ticket

    def wait(self, ticket: Ticket, timeout: float) -> int:
        with self.cond:
            ticket.seen = time.monotonic()
            self._prune()
            self._promote()
            if not ticket.admitted and ticket in self.waiting:
                self.cond.wait(timeout)
                ticket.seen = time.monotonic()
                self._prune()
                self._promote()
            if ticket.admitted:
                return 0
            if ticket not in self.waiting:  # dropped: stale while its handler slept, or its session ended
                raise Busy("this training request lost its place in line (it was not read, or its session "
                           "ended): start again.")
            return self.waiting.index(ticket) + 1

    def release(self, ticket: Ticket) -> None:
        with self.cond:
            ticket.released = True
            self._prune()
            self._promote()
            self.cond.notify_all()

    def drop(self, owner: str) -> None:
        """The session ended (tab closed, expired): its waiting request gives up its place."""
        with self.cond:
            for t in self.waiting:
                if t.owner == owner:
                    t.released = True
            self._prune()
            self._promote()
            self.cond.notify_all()

    def counts(self) -> tuple[int, int]:
        """(runs holding the slot, runs waiting)."""
        with self.cond:
            self._prune()
            return len(self.running), len(self.waiting)

    def _prune(self) -> None:
        now = time.monotonic()
        self.running = [t for t in self.running if t.alive(now)]
        self.waiting = [t for t in self.waiting if t.alive(now)]

    def _promote(self) -> None:
        promoted = False
        while self.waiting and len(self.running) < self.slots:
            ticket = self.waiting.pop(0)
            ticket.admitted = True
            self.running.append(ticket)
            promoted = True
        if promoted:
            self.cond.notify_all()


GATE = Gate()  # the process's one training gate
