"""Known devices on the real database: registering remembers the device, each successful login remembers its device
in the transaction of its LoginSucceeded event and says whether it was new; failed logins remember nothing."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import select

from config import wiring
from domain.devices import Device
from domain.events import Event
from models.identity import KnownDevice, User
from services.identity import Registration, record_login, register
from services.uow import UnitOfWork

PASSWORD = "correct horse battery staple"
PHONE = Device("198.51.100.7", "Phone/1.0")
LAPTOP = Device("198.51.100.7", "Laptop/2.0")


def _register(uow: UnitOfWork, device: Device | None = PHONE) -> User:
    email = f"device-{uuid.uuid4().hex[:10]}@example.com"
    return register(Registration(email, PASSWORD, "Dev", "EUR", None, "register", device=device), uow)


def _new_device_flags(published: list[Event], user: User) -> list[bool]:
    return [e.payload["new_device"] for e in published if e.type == "LoginSucceeded" and e.user_id == str(user.id)]


def _known(user: User) -> dict[str, KnownDevice]:
    with wiring.session_factory()() as session:
        return {d.fingerprint: d for d in session.scalars(select(KnownDevice).where(KnownDevice.user_id == user.id))}


def test_only_the_first_login_from_a_device_not_registered_from_is_new(uow: UnitOfWork,
                                                                        published: list[Event]) -> None:
    user = _register(uow)
    for device in (PHONE, LAPTOP, LAPTOP, PHONE):
        record_login(user.email, True, device, "login", uow)
    assert _new_device_flags(published, user) == [False, True, False, False]
    logins = [e for e in published if e.type == "LoginSucceeded"]
    assert {e.payload["address"] for e in logins} == {"198.51.100.7"}
    known = _known(user)
    assert set(known) == {PHONE.fingerprint(), LAPTOP.fingerprint()}
    laptop = known[LAPTOP.fingerprint()]
    assert laptop.last_seen_at > laptop.first_seen_at  # the second login from it, a later transaction


def test_a_failed_login_remembers_nothing_and_says_nothing_about_devices(uow: UnitOfWork,
                                                                         published: list[Event]) -> None:
    user = _register(uow)
    record_login(user.email, False, LAPTOP, "guess", uow)
    [failed] = [e for e in published if e.type == "LoginFailed"]
    assert "new_device" not in failed.payload and set(_known(user)) == {PHONE.fingerprint()}
    record_login(user.email, True, LAPTOP, "login", uow)
    assert _new_device_flags(published, user) == [True]


def test_devices_are_per_user_and_an_account_without_any_learns_its_first(uow: UnitOfWork,
                                                                          published: list[Event]) -> None:
    ann, bob = _register(uow), _register(uow, device=None)
    record_login(bob.email, True, PHONE, "login", uow)
    record_login(ann.email, True, PHONE, "login", uow)
    assert _new_device_flags(published, bob) == [True] and _new_device_flags(published, ann) == [False]


def test_concurrent_first_logins_from_one_device_call_it_new_once(published: list[Event]) -> None:
    def uow() -> UnitOfWork:
        return UnitOfWork(wiring.session_factory(), published.append, lambda ids: None)

    user = _register(uow())
    start = threading.Barrier(4)

    def login() -> None:
        start.wait()
        record_login(user.email, True, LAPTOP, "login", uow())

    threads = [threading.Thread(target=login) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(_new_device_flags(published, user)) == [False, False, False, True]
