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
from tests.support.cli import run_cli

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


def _audited_sign_in(user_id: uuid.UUID | str, device: Device, kind: str = "LoginSucceeded") -> None:
    """A sign-in (or sign-up) from before devices were kept, as the audit trail holds it."""
    wiring.audit_store().append(Event(kind, {"address": device.address}, str(uuid.uuid4()), str(user_id), "old",
                                      None, origin={"client_address": device.address, "user_agent": device.user_agent}))


def test_backfill_remembers_the_devices_of_audited_sign_ins_once(uow: UnitOfWork, published: list[Event]) -> None:
    """Given a user without known devices whose earlier sign-up and sign-ins the audit trail holds (and a sign-in of
    a user since deleted), `backfill-devices` remembers those devices, twice run changes nothing, and the user's next
    login from one of them is not new while one from elsewhere is."""
    user = _register(uow, device=None)
    _audited_sign_in(user.id, PHONE, "UserRegistered")
    _audited_sign_in(user.id, PHONE)
    _audited_sign_in(user.id, LAPTOP)
    _audited_sign_in(uuid.uuid4(), PHONE)  # no such user any more

    first = run_cli("backfill-devices", "--days", "1")
    again = run_cli("backfill-devices", "--days", "1")

    assert set(_known(user)) == {PHONE.fingerprint(), LAPTOP.fingerprint()}
    assert "remembered 0 device(s)" in again.stdout and "remembered 0 " not in first.stdout
    record_login(user.email, True, LAPTOP, "login", uow)
    record_login(user.email, True, Device("192.0.2.1", "Tablet/1"), "login", uow)
    assert _new_device_flags(published, user) == [False, True]
