"""A device is known by a hash of its address and User-Agent: stable, distinct per device, and no device text."""

from __future__ import annotations

from domain.devices import Device


def test_the_same_address_and_user_agent_are_the_same_device() -> None:
    assert Device("10.0.0.1", "Firefox/130").fingerprint() == Device("10.0.0.1", "Firefox/130").fingerprint()


def test_another_address_or_user_agent_is_another_device() -> None:
    phone = Device("10.0.0.1", "Firefox/130").fingerprint()
    assert phone != Device("10.0.0.2", "Firefox/130").fingerprint()
    assert phone != Device("10.0.0.1", "Firefox/131").fingerprint()
    assert Device("10.0.0.1", "2Firefox").fingerprint() != Device("10.0.0.12", "Firefox").fingerprint()


def test_the_fingerprint_is_32_hex_digits_that_hold_no_device_text() -> None:
    fingerprint = Device("203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64)").fingerprint()
    assert len(fingerprint) == 32 and int(fingerprint, 16) >= 0
    assert "203.0.113.7" not in fingerprint and "Mozilla" not in fingerprint
