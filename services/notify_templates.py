"""What each notification says: a subject, plain text and HTML for email, a short text for SMS, with amounts in the
reader's currency format and locale (Babel)."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency

log = logging.getLogger(__name__)

#: SMS bodies are cut to one segment's worth of text.
SMS_MAX = 160


@dataclass(frozen=True)
class Rendered:
    """One notification's content on every channel."""

    subject: str
    text: str
    sms: str

    def html(self, unsubscribe_url: str | None = None) -> str:
        """The email's HTML part (the text escaped, paragraphs kept), with the unsubscribe link."""
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in self.text.split("\n\n"))
        footer = (f'<p style="font-size:small"><a href="{html.escape(unsubscribe_url)}">Unsubscribe</a> from these '
                  f"emails.</p>") if unsubscribe_url else ""
        return f"<html><body><h1>{html.escape(self.subject)}</h1>{paragraphs}{footer}</body></html>"


def is_locale(name: str) -> bool:
    """Babel knows this locale (e.g. en, de_DE, fr-CH)."""
    try:
        Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True


def money(amount: object, currency: str, locale: str) -> str:
    """An amount as a person of `locale` reads it ("1.234,50 €" in de_DE); never through a float."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}"
    try:
        return format_currency(value, currency, locale=locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return format_currency(value, currency, locale="en")


Template = Callable[[dict, str], tuple[str, str, str]]


def _threshold(p: dict, loc: str) -> tuple[str, str, str]:
    spent, limit = money(p["spent"], p["currency"], loc), money(p["limit"], p["currency"], loc)
    text = f"You have spent {spent} of {limit} ({p['percent']}%) in {p['period']}."
    return f"Budget {p['threshold']}% reached", text, f"Budget alert: {spent} of {limit} spent ({p['percent']}%)."


def _welcome(p: dict, loc: str) -> tuple[str, str, str]:
    return ("Welcome", f"Welcome, {p['name']}. Your base currency is {p['base_currency']}.",
            f"Welcome, {p['name']}.")


def _member(p: dict, loc: str) -> tuple[str, str, str]:
    text = f"{p['name']} joined the household as {p['role']}."
    return "New household member", text, text


def _goal(p: dict, loc: str) -> tuple[str, str, str]:
    saved, target = money(p["saved"], p["currency"], loc), money(p["target"], p["currency"], loc)
    if p.get("group_id"):
        return (f"Group challenge reached: {p['name']}",
                f"Together you saved {saved} of {target} for {p['name']}.", f"Group goal {p['name']} reached!")
    return f"Goal reached: {p['name']}", f"You saved {saved} of {target} for {p['name']}.", f"Goal {p['name']} reached!"


def _anomaly(p: dict, loc: str) -> tuple[str, str, str]:
    amount = money(p["amount"], p["currency"], loc)
    text = f"{amount} to {p.get('payee') or 'an unknown payee'} on {p.get('occurred_on')}: {p.get('reason', '')}"
    return "Unusual transaction", text.strip(), f"Unusual transaction: {amount} to {p.get('payee') or '?'}."


def _import(p: dict, loc: str) -> tuple[str, str, str]:
    text = (f"Your import is done: {p['imported']} of {p['rows_total']} rows imported, {p['duplicates']} duplicates "
            f"skipped, {p['rejected']} rejected.")
    return "Import finished", text, f"Import done: {p['imported']} imported, {p['rejected']} rejected."


def _login(p: dict, loc: str) -> tuple[str, str, str]:
    address = p.get("address") or "an unknown address"
    advice = "If this was not you, log out everywhere and change your password now."
    if not p.get("new_device"):
        # Announced before devices were remembered, when every sign-in was: do not claim the device is new.
        return ("New sign-in to your account", f"Someone signed in to your account from {address}. {advice}",
                "New sign-in to your finance account. Not you? Log out everywhere and change your password.")
    text = (f"Someone signed in to your account from a new device or address ({address}), one not seen on your "
            "account before.\n\n"
            f"If this was you, there is nothing to do. {advice}")
    # 108 characters and the address (an IPv6 one: at most 45) fit one SMS, so the advice is never cut off.
    sms = (f"New sign-in to your finance account from a new device ({address}). Not you? Log out everywhere, change "
           "your password.")
    return "Sign-in from a new device", text, sms


def _password(p: dict, loc: str) -> tuple[str, str, str]:
    text = "Your password was changed. If this was not you, reset it now and contact us."
    return "Your password was changed", text, "Your finance password was changed. Not you? Contact us now."


def _transaction(p: dict, loc: str) -> tuple[str, str, str]:
    amount = money(p["amount"], p["currency"], loc)
    text = f"{p.get('type', 'expense').capitalize()} of {amount} to {p.get('payee', '')} on {p.get('occurred_on')}."
    return f"Transaction: {amount}", text, text


#: Event type -> its template.
TEMPLATES: dict[str, Template] = {
    "BudgetThresholdCrossed": _threshold, "UserRegistered": _welcome, "HouseholdMemberAdded": _member,
    "GoalReached": _goal, "AnomalyDetected": _anomaly, "ImportFinished": _import, "LoginSucceeded": _login,
    "PasswordChanged": _password, "TransactionRecorded": _transaction,
}


def render(event_type: str, payload: dict, locale: str) -> Rendered:
    """The notification for an event in a reader's locale (a plain one when the payload lacks what the template
    needs: a newer event version must not stop the alert)."""
    try:
        subject, text, sms = TEMPLATES[event_type](payload, locale or "en")
    except (KeyError, TypeError, ValueError, AttributeError):
        log.warning("no template fits this %s payload; sending a plain notification", event_type)
        subject = text = sms = f"New {event_type} notification: open the app for details."
    return Rendered(subject[:200], text, sms[:SMS_MAX])
