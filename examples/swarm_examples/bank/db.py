"""The sandbox core-banking database (SQLite through SQLAlchemy): customers, accounts, cards,
transactions and disputes, with every side effect recorded once per (task id, action).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = [
    "DEFAULT_BANK_URL",
    "Account",
    "ActionRecord",
    "Bank",
    "BankRefusal",
    "Card",
    "Customer",
    "Dispute",
    "Transaction",
]

DEFAULT_BANK_URL = "sqlite:///storage/bank/sandbox.db"
"""Where the sandbox lives when a swarm was given none (`swarm console`, `swarm run`)."""


class BankRefusal(Exception):
    """An action the bank will not take for this customer; the message is shown to them."""


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    verified: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str] = mapped_column(String(120), default="")


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance_cents: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")


class Card(Base):
    __tablename__ = "cards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    last4: Mapped[str] = mapped_column(String(4), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="physical")
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active, blocked, ordered (on its way), replaced."""
    replaces: Mapped[str | None] = mapped_column(String(4), nullable=True)


class Transaction(Base):
    __tablename__ = "transactions"
    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """card_payment, transfer, top_up, cash_withdrawal, fee."""
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    counterparty: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[str] = mapped_column(String(16), default="completed")
    """completed, pending, declined, reverted, cancelled, refunded."""
    card_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    day: Mapped[str] = mapped_column(String(10), default="2024-05-01")
    note: Mapped[str] = mapped_column(String(120), default="")


class Dispute(Base):
    __tablename__ = "disputes"
    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("transactions.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    task_id: Mapped[str] = mapped_column(String(40))


class ActionRecord(Base):
    """One side effect per (task, action): what makes retried and resumed tasks safe."""

    __tablename__ = "actions"
    task_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    action: Mapped[str] = mapped_column(String(32), primary_key=True)
    result: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))


CUSTOMERS = [
    ("C001", "Ada Lovelace", True, "ada@example.com"),
    ("C002", "Alan Turing", True, "alan@example.com"),
    ("C003", "Grace Hopper", False, "grace@example.com"),
]
ACCOUNTS = [
    ("A001", "C001", "GBP", 125_000),
    ("A002", "C001", "EUR", 30_000),
    ("A003", "C002", "GBP", 8_000),
    ("A004", "C003", "USD", 200_000),
]
CARDS = [
    ("C001", "A001", "4821", "physical", "active"),
    ("C001", "A001", "7310", "virtual", "active"),
    ("C002", "A003", "5532", "physical", "active"),
    ("C002", "A003", "6604", "physical", "ordered"),
    ("C003", "A004", "9012", "physical", "active"),
]
TRANSACTIONS = [
    ("T1001", "A001", "card_payment", -4_250, "GBP", "Coffee Corner", "completed", "4821"),
    ("T1002", "A001", "card_payment", -12_999, "GBP", "ElectroMart", "completed", "4821"),
    ("T1003", "A001", "transfer", -25_000, "GBP", "J. Smith", "pending", None),
    ("T1004", "A001", "top_up", 10_000, "GBP", "debit card top-up", "completed", None),
    ("T1005", "A001", "cash_withdrawal", -6_000, "GBP", "ATM Baker Street", "completed", "4821"),
    ("T1006", "A003", "transfer", -4_000, "GBP", "Landlord Ltd", "completed", None),
    ("T1007", "A003", "card_payment", -1_500, "GBP", "StreamFlix", "completed", "5532"),
    ("T1008", "A003", "card_payment", -1_500, "GBP", "StreamFlix", "completed", "5532"),
    ("T1009", "A001", "transfer", -7_500, "GBP", "Unknown Beneficiary", "declined", None),
    ("T1010", "A004", "card_payment", -30_000, "USD", "Grand Hotel", "declined", "9012"),
    ("T1011", "A001", "fee", -250, "GBP", "foreign transfer fee", "completed", None),
    ("T1012", "A002", "card_payment", -8_000, "EUR", "Café de Paris", "pending", "4821"),
    # Refunds of 100.00 or more wait for a colleague's approval: T1002, T1013 and T1014 do.
    ("T1013", "A001", "card_payment", -24_500, "GBP", "SkyJet Airways", "completed", "7310"),
    ("T1014", "A001", "card_payment", -10_000, "GBP", "Harbour Books", "completed", "4821"),
]
DECLINE_NOTES = {
    "T1009": "beneficiary not allowed: the payee failed our checks",
    "T1010": "identity not verified: card payments over 200 USD need a verified identity",
}


def money(cents: int, currency: str) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) / 100:,.2f} {currency}"


class Bank:
    """The sandbox: `Bank.create(url)` makes and seeds it; each method is one short transaction.

    Methods are synchronous (agents call them through `asyncio.to_thread` via the tools); one lock
    serialises writes, since SQLite has a single writer anyway and the idempotency check and the
    effect must not interleave between two attempts of one task.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _engine(url)
        self._lock = threading.Lock()

    @classmethod
    def create(cls, url: str = DEFAULT_BANK_URL, *, reset: bool = True) -> Bank:
        """Open the sandbox at `url`, creating its tables; `reset` wipes and reseeds it."""
        bank = cls(url)
        if reset:
            Base.metadata.drop_all(bank.engine)
        Base.metadata.create_all(bank.engine)
        with Session(bank.engine) as s, s.begin():
            if s.scalar(select(func.count()).select_from(Customer)) == 0:
                _seed(s)
        return bank

    def close(self) -> None:
        self.engine.dispose()

    # ---- reads ---------------------------------------------------------------------------------

    def customer(self, customer_id: str | None) -> dict[str, Any]:
        """The customer, or BankRefusal when the request does not say who is asking."""
        if not customer_id:
            raise BankRefusal("I can't tell which customer you are: please sign in first")
        with Session(self.engine) as s:
            c = s.get(Customer, customer_id)
            if c is None:
                raise BankRefusal(f"there is no customer {customer_id} at this bank")
            return {"id": c.id, "name": c.name, "verified": c.verified, "email": c.email}

    def cards(self, customer_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(Card).where(Card.customer_id == customer_id).order_by(Card.id))
            return [_card(c) for c in rows]

    def card(self, customer_id: str | None, last4: str | None) -> dict[str, Any]:
        """The customer's card ending `last4`; a refusal when it is missing or someone else's."""
        self.customer(customer_id)
        if not last4:
            mine = ", ".join(c["last4"] for c in self.cards(str(customer_id)))
            raise BankRefusal(
                f"which card do you mean? Tell me its last four digits (yours end in {mine})"
            )
        with Session(self.engine) as s:
            c = s.scalar(select(Card).where(Card.last4 == last4))
            if c is None:
                raise BankRefusal(f"there is no card ending {last4} on record")
            if c.customer_id != customer_id:
                # Same words as "no such card": never confirm another customer's card exists.
                raise BankRefusal(f"card ending {last4} is not one of your cards")
            return _card(c)

    def accounts(self, customer_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(Account).where(Account.customer_id == customer_id))
            return [
                {
                    "id": a.id,
                    "currency": a.currency,
                    "balance": money(a.balance_cents, a.currency),
                    "balance_cents": a.balance_cents,
                }
                for a in rows
            ]

    def transactions(
        self,
        customer_id: str,
        *,
        kind: str | None = None,
        status: str | None = None,
        tx_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """The customer's transactions, newest first; `tx_id` of another customer finds nothing."""
        with Session(self.engine) as s:
            q = (
                select(Transaction)
                .join(Account, Account.id == Transaction.account_id)
                .where(Account.customer_id == customer_id)
            )
            if kind:
                q = q.where(Transaction.kind == kind)
            if status:
                q = q.where(Transaction.status == status)
            if tx_id:
                q = q.where(Transaction.id == tx_id)
            return [_tx(t) for t in s.scalars(q.order_by(Transaction.id.desc()))]

    def disputes(self, customer_id: str | None = None) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            q = select(Dispute).order_by(Dispute.id)
            if customer_id:
                q = q.where(Dispute.customer_id == customer_id)
            return [
                {
                    "id": d.id,
                    "transaction": d.transaction_id,
                    "status": d.status,
                    "reason": d.reason,
                    "task_id": d.task_id,
                }
                for d in s.scalars(q)
            ]

    def actions(self, task_id: str | None = None) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            q = select(ActionRecord).order_by(ActionRecord.created_at)
            if task_id:
                q = q.where(ActionRecord.task_id == task_id)
            return [
                {"task_id": a.task_id, "action": a.action, "result": json.loads(a.result)}
                for a in s.scalars(q)
            ]

    def count(self, table: str, **where: Any) -> int:
        """Rows in `table` matching `where` (for state checks in tests and suites)."""
        model = _TABLES[table]
        with Session(self.engine) as s:
            q = select(func.count()).select_from(model)
            for key, value in where.items():
                q = q.where(getattr(model, key) == value)
            return int(s.scalar(q) or 0)

    # ---- actions: each at most once per (task id, action) -------------------------------------

    def block_card(
        self, task_id: str, customer_id: str | None, last4: str | None
    ) -> dict[str, Any]:
        def effect(s: Session) -> dict[str, Any]:
            card = self._own_card(s, customer_id, last4)
            if card.status == "blocked":
                return {"card": card.last4, "status": "blocked", "already": True}
            if card.status in ("replaced",):
                raise BankRefusal(f"card ending {card.last4} was already replaced and is closed")
            card.status = "blocked"
            return {"card": card.last4, "status": "blocked", "already": False}

        return self._once(task_id, "block_card", effect)

    def order_replacement(
        self, task_id: str, customer_id: str | None, last4: str | None
    ) -> dict[str, Any]:
        def effect(s: Session) -> dict[str, Any]:
            old = self._own_card(s, customer_id, last4)
            if old.status == "replaced":
                raise BankRefusal(f"card ending {old.last4} has already been replaced")
            new_last4 = _new_last4(s, task_id)
            s.add(
                Card(
                    customer_id=old.customer_id,
                    account_id=old.account_id,
                    last4=new_last4,
                    kind=old.kind,
                    status="ordered",
                    replaces=old.last4,
                )
            )
            # The old card stops working when the new one is ordered: a lost card must not
            # stay usable while its replacement travels.
            old.status = "replaced"
            return {"old_card": old.last4, "new_card": new_last4, "status": "ordered"}

        return self._once(task_id, "order_replacement", effect)

    def open_dispute(
        self, task_id: str, customer_id: str | None, tx_id: str | None, reason: str
    ) -> dict[str, Any]:
        def effect(s: Session) -> dict[str, Any]:
            self._require_customer(s, customer_id)
            if not tx_id:
                raise BankRefusal("which payment do you want to dispute? Give me its reference")
            self._own_transaction(s, customer_id, tx_id, f"payment {tx_id} is not on your accounts")
            existing = s.scalar(select(Dispute).where(Dispute.transaction_id == tx_id))
            if existing is not None:
                # Another task (or an earlier request) already disputed it: one case per payment.
                return {
                    "dispute": existing.id,
                    "transaction": tx_id,
                    "status": existing.status,
                    "already": True,
                }
            n = int(s.scalar(select(func.count()).select_from(Dispute)) or 0)
            dispute = Dispute(
                id=f"D{2001 + n}",
                customer_id=str(customer_id),
                transaction_id=tx_id,
                reason=reason[:500],
                task_id=task_id,
            )
            s.add(dispute)
            return {"dispute": dispute.id, "transaction": tx_id, "status": "open", "already": False}

        return self._once(task_id, "open_dispute", effect)

    def top_up(
        self, task_id: str, customer_id: str | None, amount_cents: int, currency: str = "GBP"
    ) -> dict[str, Any]:
        def effect(s: Session) -> dict[str, Any]:
            c = self._require_customer(s, customer_id)
            if amount_cents <= 0:
                raise BankRefusal("a top-up needs a positive amount")
            if amount_cents > 1_000_00:
                raise BankRefusal("a single top-up is limited to 1,000.00")
            if not c.verified and amount_cents > 250_00:
                raise BankRefusal("until your identity is verified, top-ups are limited to 250.00")
            account = s.scalar(
                select(Account).where(
                    Account.customer_id == c.id, Account.currency == currency.upper()
                )
            )
            if account is None:
                raise BankRefusal(f"you have no {currency.upper()} account to top up")
            account.balance_cents += amount_cents
            n = int(s.scalar(select(func.count()).select_from(Transaction)) or 0)
            tx = Transaction(
                id=f"T{1001 + n}",
                account_id=account.id,
                kind="top_up",
                amount_cents=amount_cents,
                currency=account.currency,
                counterparty="top-up",
                status="completed",
            )
            s.add(tx)
            return {
                "transaction": tx.id,
                "account": account.id,
                "amount": money(amount_cents, account.currency),
                "balance": money(account.balance_cents, account.currency),
            }

        return self._once(task_id, "top_up", effect)

    def cancel_transfer(
        self, task_id: str, customer_id: str | None, tx_id: str | None
    ) -> dict[str, Any]:
        def effect(s: Session) -> dict[str, Any]:
            self._require_customer(s, customer_id)
            refusal = f"transfer {tx_id or '(none given)'} is not one of yours"
            tx, account = self._own_transaction(s, customer_id, tx_id, refusal)
            if tx.kind != "transfer":
                raise BankRefusal(refusal)
            if tx.status != "pending":
                raise BankRefusal(f"transfer {tx.id} is {tx.status}; only pending ones can stop")
            tx.status = "cancelled"
            account.balance_cents -= tx.amount_cents  # the held amount comes back
            return {
                "transfer": tx.id,
                "status": "cancelled",
                "refunded": money(-tx.amount_cents, tx.currency),
            }

        return self._once(task_id, "cancel_transfer", effect)

    def refund_payment(
        self, task_id: str, customer_id: str | None, tx_id: str | None
    ) -> dict[str, Any]:
        """Pay a completed card payment back to the account it came from (status `refunded`)."""

        def effect(s: Session) -> dict[str, Any]:
            self._require_customer(s, customer_id)
            refusal = f"payment {tx_id or '(none given)'} is not one of yours"
            tx, account = self._own_transaction(s, customer_id, tx_id, refusal)
            check_refundable(tx.id, tx.kind, tx.status)
            tx.status = "refunded"
            account.balance_cents -= tx.amount_cents  # a payment is negative: this pays it back
            return {
                "transaction": tx.id,
                "status": "refunded",
                "refunded": money(-tx.amount_cents, tx.currency),
                "card": tx.card_last4,
                "balance": money(account.balance_cents, account.currency),
            }

        return self._once(task_id, "refund_payment", effect)

    # ---- helpers -------------------------------------------------------------------------------

    def _once(
        self, task_id: str, action: str, effect: Callable[[Session], dict[str, Any]]
    ) -> dict[str, Any]:
        """Run `effect` and record it, or return what the first run of this (task, action) did.

        The check, the effect and the record commit together, so an attempt cut off before the
        commit left nothing behind and the next one does the work once.
        """
        with self._lock, Session(self.engine) as s:
            done = s.get(ActionRecord, (task_id, action))
            if done is not None:
                return {**json.loads(done.result), "repeated": True}
            result = effect(s)  # a BankRefusal here leaves nothing: the session rolls back
            s.add(
                ActionRecord(
                    task_id=task_id,
                    action=action,
                    result=json.dumps(result),
                    created_at=dt.datetime.now(dt.UTC).isoformat(),
                )
            )
            try:
                s.commit()
            except IntegrityError:  # another process recorded it first: theirs stands
                s.rollback()
                done = s.get(ActionRecord, (task_id, action))
                if done is None:
                    raise
                return {**json.loads(done.result), "repeated": True}
            return {**result, "repeated": False}

    def _require_customer(self, s: Session, customer_id: str | None) -> Customer:
        if not customer_id:
            raise BankRefusal("I can't tell which customer you are: please sign in first")
        c = s.get(Customer, customer_id)
        if c is None:
            raise BankRefusal(f"there is no customer {customer_id} at this bank")
        return c

    def _own_transaction(
        self, s: Session, customer_id: str | None, tx_id: str | None, refusal: str
    ) -> tuple[Transaction, Account]:
        """The customer's transaction `tx_id` and its account; `BankRefusal(refusal)` when it is
        not theirs (or there is none)."""
        tx = s.get(Transaction, tx_id) if tx_id else None
        account = s.get(Account, tx.account_id) if tx is not None else None
        if tx is None or account is None or account.customer_id != customer_id:
            raise BankRefusal(refusal)
        return tx, account

    def _own_card(self, s: Session, customer_id: str | None, last4: str | None) -> Card:
        self._require_customer(s, customer_id)
        if not last4:
            mine = ", ".join(s.scalars(select(Card.last4).where(Card.customer_id == customer_id)))
            raise BankRefusal(
                f"which card do you mean? Tell me its last four digits (yours end in {mine})"
            )
        card = s.scalar(select(Card).where(Card.last4 == last4))
        if card is None:
            raise BankRefusal(f"there is no card ending {last4} on record")
        if card.customer_id != customer_id:
            raise BankRefusal(f"card ending {last4} is not one of your cards")
        return card


_TABLES: dict[str, type[Base]] = {
    "customers": Customer,
    "accounts": Account,
    "cards": Card,
    "transactions": Transaction,
    "disputes": Dispute,
    "actions": ActionRecord,
}


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def _seed(s: Session) -> None:
    s.add_all(Customer(id=i, name=n, verified=v, email=e) for i, n, v, e in CUSTOMERS)
    s.flush()
    s.add_all(
        Account(id=i, customer_id=c, currency=cur, balance_cents=b) for i, c, cur, b in ACCOUNTS
    )
    s.flush()
    s.add_all(
        Card(customer_id=c, account_id=a, last4=l4, kind=k, status=st) for c, a, l4, k, st in CARDS
    )
    for i, (tid, acc, kind, cents, cur, who, status, card) in enumerate(TRANSACTIONS):
        s.add(
            Transaction(
                id=tid,
                account_id=acc,
                kind=kind,
                amount_cents=cents,
                currency=cur,
                counterparty=who,
                status=status,
                card_last4=card,
                day=f"2024-05-{1 + i:02d}",
                note=DECLINE_NOTES.get(tid, ""),
            )
        )


def _new_last4(s: Session, task_id: str) -> str:
    """A card number derived from the task id: the same task always asks for the same number."""
    seed = int(hashlib.sha256(task_id.encode()).hexdigest(), 16)
    for i in range(10_000):
        last4 = f"{(seed + i * 7919) % 10_000:04d}"
        if s.scalar(select(Card.id).where(Card.last4 == last4)) is None:
            return last4
    raise BankRefusal("no card numbers left in the sandbox")  # pragma: no cover


def _card(c: Card) -> dict[str, Any]:
    return {"last4": c.last4, "kind": c.kind, "status": c.status, "replaces": c.replaces}


def check_refundable(tx_id: str, kind: str, status: str) -> None:
    """Raise BankRefusal unless a transaction of this kind and status can be refunded.

    Only a completed card payment refunds; the refund itself and an agent that asks before
    refunding (the `disputes` agent looks the payment up first) apply the same rule.
    """
    if kind != "card_payment":
        raise BankRefusal(f"{tx_id} is a {kind.replace('_', ' ')}, not a card payment")
    if status != "completed":
        raise BankRefusal(f"payment {tx_id} is {status}; only completed ones refund")


def _tx(t: Transaction) -> dict[str, Any]:
    return {
        "id": t.id,
        "kind": t.kind,
        "amount": money(t.amount_cents, t.currency),
        "amount_cents": t.amount_cents,
        "currency": t.currency,
        "counterparty": t.counterparty,
        "status": t.status,
        "card": t.card_last4,
        "day": t.day,
        "note": t.note,
    }
