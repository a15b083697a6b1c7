"""A device is known by a hash of its network and User-Agent: stable, distinct per device, and no device text."""

from __future__ import annotations

from domain.devices import Device, network_of


def test_the_same_address_and_user_agent_are_the_same_device() -> None:
    assert Device("10.0.0.1", "Firefox/130").fingerprint() == Device("10.0.0.1", "Firefox/130").fingerprint()


def test_another_network_or_user_agent_is_another_device() -> None:
    phone = Device("10.0.0.1", "Firefox/130").fingerprint()
    assert phone != Device("10.0.1.1", "Firefox/130").fingerprint()
    assert phone != Device("10.0.0.1", "Firefox/131").fingerprint()
    assert Device("2001:db8:0:1::5", "Firefox").fingerprint() != Device("2001:db8:0:2::5", "Firefox").fingerprint()
    assert Device("unknown", "2Firefox").fingerprint() != Device("unknown2", "Firefox").fingerprint()


def test_a_new_address_in_the_same_block_is_the_same_device() -> None:
    """Given a connection that got another address from its provider (same /24, or same /64 for IPv6), the device
    is known: no alert for each address a phone is handed."""
    assert Device("203.0.113.7", "App/2").fingerprint() == Device("203.0.113.200", "App/2").fingerprint()
    assert Device("2001:db8::1", "App/2").fingerprint() == Device("2001:db8::ffff:1", "App/2").fingerprint()


def test_network_of_names_the_block_and_keeps_what_is_no_address() -> None:
    assert (network_of("203.0.113.7"), network_of("2001:db8::1"), network_of("unknown")) == (
        "203.0.113.0/24", "2001:db8::/64", "unknown")


def test_the_fingerprint_is_32_hex_digits_that_hold_no_device_text() -> None:
    fingerprint = Device("203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64)").fingerprint()
    assert len(fingerprint) == 32 and int(fingerprint, 16) >= 0
    assert "203.0.113.7" not in fingerprint and "Mozilla" not in fingerprint
