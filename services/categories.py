"""Categories: hierarchical, renamed, moved and merged; budgets follow a merge."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update

from domain.events import Event
from models.budgets import Budget
from models.ledger import Category, Rule, Transaction
from services.context import Caller
from services.errors import Conflict, Invalid, NotFound
from services.uow import UnitOfWork


def _category(caller: Caller, category_id: uuid.UUID, uow: UnitOfWork, field: str | None = None) -> Category:
    found = uow.session.scalar(select(Category).where(Category.id == category_id,
                                                      Category.household_id == caller.household_id))
    if found is None:
        raise NotFound("no such category", field=field)
    return found


def _unique(caller: Caller, name: str, uow: UnitOfWork, but: uuid.UUID | None = None) -> None:
    clash = uow.session.scalar(select(Category.id).where(
        Category.household_id == caller.household_id, func.lower(Category.name) == name.strip().lower()))
    if clash is not None and clash != but:
        raise Conflict("a category with this name exists", field="name")


def _check_parent(caller: Caller, category_id: uuid.UUID | None, parent_id: uuid.UUID | None,
                  uow: UnitOfWork) -> None:
    """The parent exists in the household and is not the category itself or below it."""
    node = parent_id
    while node is not None:
        if node == category_id:
            raise Invalid("a category cannot sit below itself", field="parent_id")
        node = _category(caller, node, uow, field="parent_id").parent_id


def create(caller: Caller, name: str, parent_id: uuid.UUID | None, uow: UnitOfWork) -> Category:
    """Create a category, optionally below another."""
    with uow:
        _unique(caller, name, uow)
        _check_parent(caller, None, parent_id, uow)
        category = Category(id=uuid.uuid4(), household_id=caller.household_id, name=name.strip(), parent_id=parent_id)
        uow.session.add(category)
        uow.commit()
        return category


def change(caller: Caller, category_id: uuid.UUID, changes: dict, uow: UnitOfWork) -> Category:
    """Rename a category or move it below another (or to the top with parent_id null)."""
    with uow:
        category = _category(caller, category_id, uow)
        if "name" in changes:
            _unique(caller, changes["name"], uow, but=category_id)
            category.name = changes["name"].strip()
        if "parent_id" in changes:
            _check_parent(caller, category_id, changes["parent_id"], uow)
            category.parent_id = changes["parent_id"]
        uow.commit()
        return category


def remove(caller: Caller, category_id: uuid.UUID, merge_into: uuid.UUID | None, uow: UnitOfWork) -> None:
    """Delete a category; with `merge_into`, its transactions, budgets, rules and children move there first."""
    with uow:
        category = _category(caller, category_id, uow)
        if merge_into is None:
            _refuse_if_used(category_id, uow)
        else:
            target = _category(caller, merge_into, uow, field="merge_into")
            if target.id == category.id:
                raise Invalid("a category cannot merge into itself", field="merge_into")
            _check_parent(caller, category_id, target.id, uow)
            _move_everything(caller, category, target, uow)
        uow.session.delete(category)
        uow.commit()


def _refuse_if_used(category_id: uuid.UUID, uow: UnitOfWork) -> None:
    used = (uow.session.scalar(select(func.count()).select_from(Transaction).where(
        Transaction.category_id == category_id)) or 0) + (uow.session.scalar(
        select(func.count()).select_from(Budget).where(Budget.category_id == category_id)) or 0) + (
        uow.session.scalar(select(func.count()).select_from(Category).where(Category.parent_id == category_id)) or 0)
    if used:
        raise Conflict("the category is in use; delete it with merge_into=<another category>", field="merge_into")


def _move_everything(caller: Caller, source: Category, target: Category, uow: UnitOfWork) -> None:
    session = uow.session
    moved = session.execute(update(Transaction).where(Transaction.category_id == source.id)
                            .values(category_id=target.id)).rowcount
    session.execute(update(Budget).where(Budget.category_id == source.id).values(category_id=target.id))
    session.execute(update(Category).where(Category.parent_id == source.id).values(parent_id=target.id))
    for rule in session.scalars(select(Rule).where(Rule.household_id == caller.household_id)):
        rule.actions = [{"set_category": target.name} if a.get("set_category") == source.name else a
                        for a in rule.actions]
    uow.emit(Event("CategoriesMerged", {"from": source.name, "into": target.name, "transactions": moved},
                   str(caller.household_id), str(caller.user_id), caller.correlation_id, None))
