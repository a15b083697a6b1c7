"""The group commit's writer: batches, answers each caller, and lingers only while more callers can come."""

from __future__ import annotations

import threading
import time

import pytest

from services.group_commit import GroupCommit, Item


class Recorder:
    """A batch handler that remembers the batches it was given and answers each item doubled."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __call__(self, items: list[Item[int]]) -> list[int]:
        self.batches.append([item for item, _ in items])
        return [item * 2 for item, _ in items]


def _submit_later(writer: GroupCommit[int, int], item: int, after: float, answers: dict[int, int]) -> threading.Thread:
    def run() -> None:
        time.sleep(after)
        answers[item] = writer.submit(item)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_items_handed_in_within_the_linger_are_written_together() -> None:
    run, answers = Recorder(), {}
    writer = GroupCommit(run, name="t-linger", linger_seconds=1.0)
    threads = [_submit_later(writer, 1, 0.0, answers), _submit_later(writer, 2, 0.1, answers)]
    for thread in threads:
        thread.join(timeout=10)
    assert answers == {1: 2, 2: 4}
    assert run.batches == [[1, 2]]


def test_without_a_linger_a_lone_item_is_written_at_once() -> None:
    run = Recorder()
    writer = GroupCommit(run, name="t-no-linger", wait_seconds=2.0)
    assert writer.submit(3) == 6
    assert run.batches == [[3]]


def test_the_writer_stops_lingering_once_every_caller_waits() -> None:
    # A linger of a minute, but both possible callers are waiting: no more items can come, so the batch is written
    # now (a caller waits at most 5 s before its submit raises).
    run, answers = Recorder(), {}
    writer = GroupCommit(run, name="t-callers", linger_seconds=60.0, callers=2, wait_seconds=5.0)
    threads = [_submit_later(writer, 1, 0.0, answers), _submit_later(writer, 2, 0.05, answers)]
    for thread in threads:
        thread.join(timeout=10)
    assert answers == {1: 2, 2: 4}
    assert sorted(item for batch in run.batches for item in batch) == [1, 2]


def test_a_lone_caller_of_a_writer_with_one_caller_is_not_kept_waiting() -> None:
    writer = GroupCommit(Recorder(), name="t-one-caller", linger_seconds=60.0, callers=1, wait_seconds=5.0)
    assert writer.submit(4) == 8


def test_a_bad_item_fails_alone_and_the_others_are_answered() -> None:
    def run(items: list[Item[int]]) -> list[int]:
        if any(item < 0 for item, _ in items):
            raise ValueError("negative")
        return [item for item, _ in items]

    writer, answers, errors = GroupCommit(run, name="t-bad", linger_seconds=0.5), {}, []

    def submit(item: int) -> None:
        try:
            answers[item] = writer.submit(item)
        except ValueError as error:
            errors.append((item, str(error)))

    threads = [threading.Thread(target=submit, args=(item,)) for item in (5, -1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert answers == {5: 5, 7: 7}
    assert errors == [(-1, "negative")]


@pytest.mark.parametrize("linger", [0.0, 0.2])
def test_every_item_of_a_caller_is_answered_in_order(linger: float) -> None:
    writer = GroupCommit(Recorder(), name=f"t-order-{linger}", linger_seconds=linger, max_batch=3)
    assert writer.submit_all(list(range(10))) == [2 * i for i in range(10)]
