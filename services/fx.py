"""Converting recorded transactions into the household's base currency at the rate of their date."""

from __future__ import annotations

import uuid
from typing import Protocol

from domain.events import Event
from domain.fx import Rate, convert
from domain.money import format_amount
from models.ledger import Account, Transaction
from services.balances import move
from services.uow import UnitOfWork


class RateSource(Protocol):
    """Anything that answers a rate for a date, or None when it has none."""

    def rate(self, base: str, quote: str, on: object) -> Rate | None:
        """The rate to convert one `base` into `quote` on a date."""


def convert_transaction(transaction_id: uuid.UUID, rates: RateSource, cause: Event, uow: UnitOfWork) -> None:
    """Convert a recorded foreign-currency transaction; flag it when no rate exists. Safe to run twice."""
    with uow:
        txn = uow.session.get(Transaction, transaction_id, with_for_update=True)
        if txn is None or txn.status != "recorded" or txn.fx_status not in ("pending", "missing"):
            return
        rate = rates.rate(txn.currency, txn.base_currency, txn.occurred_on)
        if rate is None:
            _flag_missing(txn, cause, uow)
        else:
            _apply(txn, rate, rates, cause, uow)
        uow.commit()


def _flag_missing(txn: Transaction, cause: Event, uow: UnitOfWork) -> None:
    if txn.fx_status == "missing":
        return
    txn.fx_status = "missing"
    uow.emit(cause.caused("CurrencyConversionMissing", {
        "transaction_id": str(txn.id), "currency": txn.currency, "base_currency": txn.base_currency,
        "occurred_on": txn.occurred_on.isoformat()}))


def _apply(txn: Transaction, rate: Rate, rates: RateSource, cause: Event, uow: UnitOfWork) -> None:
    txn.base_amount = convert(txn.amount, rate.value, txn.base_currency)
    txn.fx_rate, txn.fx_rate_date, txn.fx_source, txn.fx_status = rate.value, rate.on, rate.source, "converted"
    _settle_account(txn, rates, uow)
    uow.emit(cause.caused("CurrencyConverted", {
        "transaction_id": str(txn.id), "amount": format_amount(txn.amount, txn.currency), "currency": txn.currency,
        "base_amount": format_amount(txn.base_amount, txn.base_currency), "base_currency": txn.base_currency,
        "rate": str(rate.value), "rate_date": rate.on.isoformat(), "source": rate.source}))


def _settle_account(txn: Transaction, rates: RateSource, uow: UnitOfWork) -> None:
    """A transaction in another currency than its account moves the balance once converted."""
    if txn.account_amount is not None:
        return
    account = uow.session.get(Account, txn.account_id, with_for_update=True)
    rate = rates.rate(txn.currency, account.currency, txn.occurred_on)
    if account is None or rate is None:
        return
    txn.account_amount = convert(txn.amount, rate.value, account.currency)
    move(txn, +1, uow)
