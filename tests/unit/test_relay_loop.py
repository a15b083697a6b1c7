"""The pools' relay thread: relay rounds, and the hourly purge of published events in bounded slices."""

from __future__ import annotations

import threading

import pytest

from actors import run


class _Rounds(threading.Event):
    """A stop event that lets the loop run `rounds` rounds without waiting, then stops it."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.left = rounds

    def wait(self, timeout: float | None = None) -> bool:
        self.left -= 1
        return self.left < 0


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the loop did, round by round: "relay", and "purge" for each slice (due now, not in up to an hour)."""
    done: list[str] = []
    monkeypatch.setattr(run, "relay_pending", lambda *a, **k: done.append("relay"))
    monkeypatch.setattr(run.wiring, "session_factory", lambda: None)
    monkeypatch.setattr(run.random, "uniform", lambda a, b: 0)
    return done


def test_an_unfinished_purge_goes_on_after_the_next_relay_round(calls: list[str], monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """Given a backlog that takes three slices, the loop alternates relay rounds and slices until it is done, then
    waits the hour."""
    slices = iter([False, False, True])
    monkeypatch.setattr(run, "_purge", lambda days: calls.append("purge") or next(slices))

    run._relay_forever(_Rounds(5), every=5, retention_days=7)

    assert calls == ["relay", "purge", "relay", "purge", "relay", "purge", "relay", "relay"]


def test_no_retention_means_no_purge(calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Given OUTBOX_RETENTION_DAYS=0, the loop only relays."""
    monkeypatch.setattr(run, "_purge", lambda days: pytest.fail("purged"))

    run._relay_forever(_Rounds(3), every=5, retention_days=0)

    assert calls == ["relay"] * 3
