"""Re-converting a household's history into a new base currency, against the run's PostgreSQL: batches with a
cursor, duplicate commands that do nothing, a later change that supersedes, and budgets kept in the old currency."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from config import wiring
from models.fx import FxReconversion
from models.identity import Household
from models.ledger import Transaction
from services import fx
from services.fx import Reconvert, amount_in, reconvert_batch, start_reconversion
from services.fx_rates import RateBook, default_rates
from services.uow import UnitOfWork
from tests.support.households import add_eur_household

JAN_2 = dt.date(2020, 1, 2)


@pytest.fixture
def rates() -> RateBook:
    """Manual, kept and ECB rates (no live provider)."""
    return RateBook(wiring.session_factory(), default_rates())


def _household(amounts: list[tuple[str, str]]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A EUR household with one recorded expense per (amount, currency) on 2020-01-02."""
    household_id, account_id = uuid.uuid4(), uuid.uuid4()
    ids = [uuid.uuid4() for _ in amounts]
    rates = RateBook(wiring.session_factory(), default_rates())
    with wiring.session_factory()() as session, session.begin():
        add_eur_household(session, household_id, account_id, "Reconversion")
        for txn_id, (amount, currency) in zip(ids, amounts, strict=True):
            rate = rates.rate(currency, "EUR", JAN_2)
            session.add(Transaction(id=txn_id, household_id=household_id, account_id=account_id, type="expense",
                                    amount=Decimal(amount), currency=currency, occurred_on=JAN_2, status="recorded",
                                    base_currency="EUR", base_amount=fx.convert(Decimal(amount), rate.value, "EUR"),
                                    account_amount=Decimal(0), fx_status="converted", fx_rate=rate.value,
                                    fx_rate_date=rate.on, fx_source=rate.source))
    return household_id, ids


def _change(household_id: uuid.UUID, new: str, uow: UnitOfWork) -> uuid.UUID:
    with uow:
        household = uow.session.get(Household, household_id, with_for_update=True)
        old, household.base_currency = household.base_currency, new
        job = start_reconversion(household_id, None, old, new, "test", uow)
        uow.commit()
        return job.id


def _txns(ids: list[uuid.UUID]) -> list[Transaction]:
    with wiring.session_factory()() as session:
        return [session.get(Transaction, i) for i in ids]


def test_history_is_reconverted_in_batches_and_a_duplicate_command_does_nothing(uow, rates, published, monkeypatch):
    monkeypatch.setattr(fx, "RECONVERT_BATCH", 2)
    household_id, ids = _household([("10.00", "EUR"), ("5.00", "USD"), ("1000", "JPY"), ("3.00", "GBP"),
                                    ("7.00", "USD")])
    job_id = _change(household_id, "USD", uow)
    assert [e.type for e in published] == ["BaseCurrencyChanged"]
    command, seen = Reconvert(str(job_id), 0), []
    while command is not None:
        seen.append(command)
        following = reconvert_batch(command, rates, uow)
        assert reconvert_batch(command, rates, uow) is None, "the same command again does nothing"
        command = following
    assert [c.batch for c in seen] == [0, 1, 2]
    by_currency = {t.currency + t.amount.to_eng_string(): t for t in _txns(ids)}
    eur, usd, jpy = by_currency["EUR10.0000"], by_currency["USD5.0000"], by_currency["JPY1000.0000"]
    assert (eur.base_currency, eur.base_amount, eur.fx_rate, eur.fx_source) == ("USD", Decimal("11.19"),
                                                                               Decimal("1.1193"), "ECB")
    assert (usd.base_amount, usd.fx_status, usd.fx_rate) == (Decimal("5.00"), "none", None)
    assert jpy.base_amount == Decimal("9.19")
    with wiring.session_factory()() as session:
        job = session.get(FxReconversion, job_id)
    assert (job.status, job.batches, job.converted, job.missing) == ("done", 3, 3, 0)
    done = [e for e in published if e.type == "HistoryReconverted"]
    assert len(done) == 1 and done[0].household_id == str(household_id) and done[0].payload["to"] == "USD"


def test_a_later_change_supersedes_an_unfinished_reconversion(uow, rates, published, monkeypatch):
    monkeypatch.setattr(fx, "RECONVERT_BATCH", 1)
    household_id, ids = _household([("10.00", "EUR"), ("5.00", "USD")])
    first = _change(household_id, "USD", uow)
    following = reconvert_batch(Reconvert(str(first), 0), rates, uow)
    second = _change(household_id, "JPY", uow)
    assert reconvert_batch(following, rates, uow) is None
    command = Reconvert(str(second), 0)
    while command is not None:
        command = reconvert_batch(command, rates, uow)
    assert {t.base_currency for t in _txns(ids)} == {"JPY"}
    assert {t.base_amount for t in _txns(ids)} == {Decimal("1218"), Decimal("544")}  # 10 x 121.75, 5 x 108.77
    with wiring.session_factory()() as session:
        statuses = dict(session.execute(select(FxReconversion.id, FxReconversion.status).where(
            FxReconversion.household_id == household_id)).all())
    assert statuses == {first: "superseded", second: "done"}


def test_a_rate_missing_for_the_new_base_is_flagged_never_one_to_one(uow, rates):
    household_id, ids = _household([("10.00", "EUR")])
    job_id = _change(household_id, "ARS", uow)
    assert reconvert_batch(Reconvert(str(job_id), 0), rates, uow) is None
    [txn] = _txns(ids)
    assert (txn.base_currency, txn.base_amount, txn.fx_status) == ("ARS", None, "missing")


def test_a_budget_in_the_old_base_counts_each_purchase_at_its_own_rate(uow, rates):
    household_id, ids = _household([("10.00", "EUR"), ("5.00", "USD"), ("1000", "JPY")])
    job_id = _change(household_id, "USD", uow)
    assert reconvert_batch(Reconvert(str(job_id), 0), rates, uow) is None
    with wiring.session_factory()() as session:
        counted = [amount_in(t, "EUR", session) for t in _txns(ids)]
        in_usd = [amount_in(t, "USD", session) for t in _txns(ids)]
        in_gbp = amount_in(_txns(ids)[1], "GBP", session)
    assert counted == [Decimal("10.00"), Decimal("4.47"), Decimal("8.21")]  # own amount; USD->EUR; JPY->EUR
    assert in_usd == [Decimal("11.19"), Decimal("5.00"), Decimal("9.19")]  # the stored conversions
    assert in_gbp == Decimal("3.79")  # 5 USD x 0.7578665237 (USD->GBP on 2020-01-02) = 3.789...


def test_a_stalled_reconversion_is_resumed_where_it_stopped(uow, rates, monkeypatch):
    monkeypatch.setattr(fx, "RECONVERT_BATCH", 1)
    household_id, _ = _household([("10.00", "EUR"), ("5.00", "USD")])
    job_id = _change(household_id, "USD", uow)
    following = reconvert_batch(Reconvert(str(job_id), 0), rates, uow)  # its next command is lost
    later = dt.datetime.now(dt.UTC) + fx.STALLED_AFTER + dt.timedelta(seconds=1)
    resumed = [c for c in fx.stalled_reconversions(uow, later) if c.job_id == str(job_id)]
    assert resumed == [following]
    assert [c for c in fx.stalled_reconversions(uow) if c.job_id == str(job_id)] == [], "not stalled yet"
