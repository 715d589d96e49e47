"""The customer-operations desk: ten agents that between them answer every BANKING77 intent and act
on the sandbox core-banking database through `BankTools`, refusing what they cannot do safely.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from swarm.agents.base import Agent
from swarm.models import Handoff, Task
from swarm_examples.bank.db import BankRefusal, check_refundable, money
from swarm_examples.bank.tools import BankTools

if TYPE_CHECKING:
    from swarm.context import Context

__all__ = [
    "Account",
    "CardPayments",
    "Cards",
    "Cash",
    "DeskAgent",
    "Disputes",
    "Exchange",
    "Fees",
    "Security",
    "TopUps",
    "Transfers",
]

_CARD = re.compile(r"(?:ending(?: in)?|ends in|card|number)\D{0,12}?(\d{4})\b", re.I)
_ANY4 = re.compile(r"\b(\d{4})\b")
_TX = re.compile(r"\b(T\d{4})\b", re.I)
_AMOUNT = re.compile(
    r"(?:£|\$|€)?\s?(\d{1,5}(?:\.\d{1,2})?)\s*(gbp|eur|usd|pounds?|euros?|dollars?)?", re.I
)
_CURRENCY = {
    "pound": "GBP",
    "pounds": "GBP",
    "euro": "EUR",
    "euros": "EUR",
    "dollar": "USD",
    "dollars": "USD",
    "gbp": "GBP",
    "eur": "EUR",
    "usd": "USD",
    "£": "GBP",
    "€": "EUR",
    "$": "USD",
}


def card_in(task: Task) -> str | None:
    """The card the request names (payload `card`, or "card ending 4821" in the text)."""
    if task.payload.get("card"):
        return str(task.payload["card"])
    m = _CARD.search(task.text) or _ANY4.search(task.text)
    return m.group(1) if m else None


def tx_in(task: Task) -> str | None:
    if task.payload.get("transaction"):
        return str(task.payload["transaction"]).upper()
    m = _TX.search(task.text)
    return m.group(1).upper() if m else None


def has(text: str, *words: str) -> bool:
    low = text.lower()
    return any(w in low for w in words)


def refusal(action: str, exc: BankRefusal) -> dict[str, Any]:
    return {"action": action, "done": False, "refused": str(exc), "reply": f"Sorry: {exc}."}


class DeskAgent(Agent):
    """A customer-desk agent: `answer` does the work; refusals from the bank become replies."""

    faq: Sequence[tuple[tuple[str, ...], str]] = ()
    """(keywords, answer): the first whose keyword the text contains answers a question."""
    default_answer = ""

    async def run(self, task: Task, ctx: Context) -> Any:
        tools = BankTools(ctx)
        try:
            return await self.answer(task, ctx, tools)
        except BankRefusal as exc:
            return refusal(self.name, exc)

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        return {"reply": self.lookup_faq(task.text)}

    def lookup_faq(self, text: str) -> str:
        for words, reply in self.faq:
            if has(text, *words):
                return reply
        return self.default_answer


class Cards(DeskAgent):
    name = "cards"
    description = (
        "Card orders, delivery and activation, replacement, spare, virtual and disposable cards, "
        "PINs, Apple Pay and Google Pay."
    )
    examples = [
        "my new card has not arrived yet",
        "when will my card be delivered",
        "order a replacement for my card ending 4821",
        "I need a new card, mine is about to expire",
        "how do I activate my card",
        "can I get a virtual card",
        "how do I get a disposable virtual card",
        "I want to change my PIN",
        "my PIN is blocked after too many tries",
        "can I add my card to Apple Pay",
        "is my card Visa or Mastercard",
        "can I order a spare card for my partner",
        "link my card that I already have to the app",
        "track the delivery of my card",
    ]
    retries = 2
    faq = [
        (("activate",), "Open the app, tap Cards and then Activate; have the card with you."),
        (("pin",), "You can change or unblock your PIN at any of our ATMs or under Cards > PIN."),
        (("disposable",), "Disposable virtual cards work for one payment and then regenerate."),
        (("virtual",), "Virtual cards are free: create one under Cards > New virtual card."),
        (("apple", "google"), "Add your card under Cards > Add to Apple Pay / Google Pay."),
        (("visa", "mastercard"), "Our cards are Mastercard debit cards."),
        (("link",), "Link an existing card under Cards > Link a card; it needs the CVC."),
    ]
    default_answer = "I can order, replace, track and activate your cards."

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        text = task.text
        if has(text, "block", "freeze", "stolen", "lost"):
            return Handoff("security", "blocking a card is the security desk's action")
        if has(text, "arrive", "deliver", "received", "track", "posted", "where is my", "come"):
            cards = await tools.call("list_cards")
            coming = [c["last4"] for c in cards if c["status"] == "ordered"]
            if not coming:
                return {
                    "reply": "You have no card on its way; all your cards are delivered.",
                    "cards": cards,
                }
            return {
                "reply": (
                    f"Your card ending {', '.join(coming)} is on its way: cards arrive within 3 to "
                    "5 working days of ordering; after 7 days we send another one free."
                ),
                "on_the_way": coming,
            }
        if has(
            text, "replace", "replacement", "new card", "another card", "expire", "status of card"
        ):
            card = card_in(task)
            if has(text, "status of card"):
                status = await tools.call("card_status", card=card)
                return {"reply": f"Card ending {status['last4']} is {status['status']}.", **status}
            try:
                out = await tools.call("order_replacement", card=card)
            except BankRefusal as exc:
                return refusal("order_replacement", exc)
            return {
                "action": "order_replacement",
                "done": True,
                "reply": (
                    f"A replacement for card ending {out['old_card']} is ordered: the new card "
                    f"ends in {out['new_card']} and arrives in 3 to 5 working days."
                ),
                **out,
            }
        return {"reply": self.lookup_faq(text)}


class CardPayments(DeskAgent):
    name = "card_payments"
    description = (
        "Card payments that were declined, are pending or were reverted; where cards work."
    )
    examples = [
        "why was my card payment declined",
        "my card payment is still pending",
        "the shop refused my card",
        "my card is not working",
        "contactless does not work",
        "a payment I made was reverted",
        "where can I use my card",
        "my payment at the hotel was declined",
        "why is this card payment pending for days",
        "my card keeps getting rejected online",
    ]
    faq = [
        (("contactless",), "Contactless needs one chip-and-PIN payment first after a new card."),
        (("revert", "returned"), "A merchant can revert a payment; the money is back in 1-3 days."),
        (("accept", "where can i use"), "Your card works wherever Mastercard is accepted."),
    ]
    default_answer = "I can look into declined, pending and reverted card payments."

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        text = task.text
        if has(text, "recognis", "recogniz", "dispute", "didn't make", "did not make", "fraud"):
            return Handoff("disputes", "an unrecognised payment is a dispute")
        if has(
            text,
            "declin",
            "refused",
            "rejected",
            "not working",
            "doesn't work",
            "didn't go through",
            "won't work",
        ):
            declined = await tools.call(
                "lookup_transactions", kind="card_payment", status="declined"
            )
            cards = await tools.call("list_cards")
            blocked = [c["last4"] for c in cards if c["status"] in ("blocked", "replaced")]
            if declined:
                t = declined[0]
                why = t["note"] or "the merchant's bank declined it"
                reply = (
                    f"Your payment {t['id']} of {t['amount']} at {t['counterparty']} "
                    f"was declined: {why}."
                )
            else:
                reply = "I see no declined card payments on your accounts."
            if blocked:
                reply += f" Card ending {', '.join(blocked)} is blocked, so it cannot pay."
            return {
                "reply": reply,
                "declined": [t["id"] for t in declined],
                "blocked_cards": blocked,
            }
        if has(text, "pending"):
            pending = await tools.call("lookup_transactions", kind="card_payment", status="pending")
            ids = [t["id"] for t in pending]
            return {
                "reply": (
                    f"{len(ids)} card payment(s) pending ({', '.join(ids) or 'none'}); merchants "
                    "usually complete them within 7 days."
                ),
                "pending": ids,
            }
        return {"reply": self.lookup_faq(text)}


class Transfers(DeskAgent):
    name = "transfers"
    description = "Bank transfers: sending, receiving, pending, declined or failed, cancelling."
    examples = [
        "my transfer has not arrived",
        "cancel my transfer T1003",
        "how long does a transfer take",
        "why did my transfer to J. Smith get declined",
        "the recipient did not get my money",
        "how do I receive money from abroad",
        "my transfer is still pending",
        "what are my account details to receive a transfer",
        "I sent money to the wrong person, stop the transfer",
        "my balance did not update after the bank transfer",
        "the beneficiary is not allowed",
    ]
    retries = 2
    faq = [
        (
            ("receive", "incoming", "account details", "into my account"),
            "Share your account number and sort code from Account > Details; money usually lands "
            "within 2 hours.",
        ),
        (
            ("how long", "take", "timing"),
            "Transfers in GBP arrive within 2 hours; abroad 1-3 days.",
        ),
    ]
    default_answer = "I can look up, explain and cancel your transfers."
    timeout = 2.0  # a customer waits on the phone: a slow core-banking lookup must not hang them

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        text = task.text
        if has(text, "fee", "charged me", "charge for"):
            return Handoff("fees", "transfer fees are explained by the fees desk")
        ref = tx_in(task)
        if has(text, "cancel", "stop", "undo", "reverse"):
            if not ref:
                pending = await tools.call("lookup_transactions", kind="transfer", status="pending")
                ids = ", ".join(t["id"] for t in pending) or "none"
                return refusal(
                    "cancel_transfer",
                    BankRefusal(f"which transfer should I cancel? Your pending ones: {ids}"),
                )
            try:
                out = await tools.call("cancel_transfer", transfer=ref)
            except BankRefusal as exc:
                return refusal("cancel_transfer", exc)
            return {
                "action": "cancel_transfer",
                "done": True,
                "reply": f"Transfer {ref} is cancelled; {out['refunded']} is back in your account.",
                **out,
            }
        if ref or has(
            text,
            "pending",
            "arriv",
            "declin",
            "fail",
            "recipient",
            "where is",
            "status",
            "not received",
            "didn't get",
            "did not get",
        ):
            found = await tools.call("lookup_transactions", kind="transfer", transaction=ref)
            if ref and not found:
                return refusal(
                    "lookup_transfer", BankRefusal(f"transfer {ref} is not one of yours")
                )
            t = found[0]
            if t["status"] == "declined":
                reply = f"Transfer {t['id']} to {t['counterparty']} was declined: {t['note']}."
            elif t["status"] == "pending":
                reply = (
                    f"Transfer {t['id']} of {t['amount']} to {t['counterparty']} is pending; "
                    "it should arrive within one working day."
                )
            else:
                reply = (
                    f"Transfer {t['id']} of {t['amount']} to {t['counterparty']} is {t['status']}."
                )
            return {"reply": reply, "transfer": t["id"], "status": t["status"]}
        return {"reply": self.lookup_faq(text)}


class TopUps(DeskAgent):
    name = "top_ups"
    description = "Topping up the account by card, bank transfer, cash or cheque; top-up limits."
    examples = [
        "top up 50 pounds",
        "add 20 GBP to my account",
        "my top-up is still pending",
        "why did my top up fail",
        "what is the top-up limit",
        "how do I set up automatic top-ups",
        "can I top up with cash or a cheque",
        "my top up was reverted",
        "my cheque deposit is not in my balance",
        "why do I need to verify my top-up card",
    ]
    retries = 2
    faq = [
        (
            ("limit", "maximum", "how much can"),
            "One top-up can be up to 1,000.00 (250.00 until your identity is verified).",
        ),
        (
            ("automatic", "auto"),
            "Auto top-up adds money when your balance falls below a level "
            "you choose: Account > Auto top-up.",
        ),
        (
            ("cash", "cheque", "check"),
            "Cash and cheques can be paid in at partner post offices; "
            "they show within 2 working days.",
        ),
        (
            ("pending", "fail", "revert", "verify"),
            "Top-ups from a new card can be held for a "
            "check; if one failed, the money goes back to the card within 5 days.",
        ),
    ]
    default_answer = "Tell me an amount to top up, or ask about limits and pending top-ups."

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        text = task.text
        wants = has(text, "top up", "top-up", "topup", "add ", "put ", "load ")
        question = has(text, "limit", "how ", "why", "pending", "fail", "revert", "?", "verify")
        amount = task.payload.get("amount")
        currency = str(task.payload.get("currency", "GBP"))
        if amount is None and wants and not question:
            m = next((m for m in _AMOUNT.finditer(text) if m.group(1)), None)
            if m:
                amount = float(m.group(1))
                if m.group(2):
                    currency = _CURRENCY.get(m.group(2).lower(), currency)
                elif m.group(0).strip()[:1] in _CURRENCY:
                    currency = _CURRENCY[m.group(0).strip()[:1]]
        if amount is not None:
            try:
                out = await tools.call(
                    "top_up", amount_cents=round(float(amount) * 100), currency=currency
                )
            except BankRefusal as exc:
                return refusal("top_up", exc)
            return {
                "action": "top_up",
                "done": True,
                "reply": f"Topped up {out['amount']}; your balance is {out['balance']}.",
                **out,
            }
        return {"reply": self.lookup_faq(text)}


class Cash(DeskAgent):
    name = "cash"
    description = (
        "Cash and ATMs: withdrawals that are pending or declined, wrong amounts, swallowed cards."
    )
    examples = [
        "the ATM did not give me my cash",
        "my cash withdrawal is pending",
        "why was my cash withdrawal declined",
        "the ATM swallowed my card",
        "I got less cash than I asked for",
        "where can I find an ATM",
        "can I withdraw cash abroad",
        "the cash machine kept my card ending 4821",
    ]
    faq = [
        (
            ("where", "find", "abroad", "nearest"),
            "Any ATM with the Mastercard sign works; the app map shows fee-free ones.",
        ),
        (("declin",), "Withdrawals are declined over the daily 500.00 limit or with a wrong PIN."),
        (("pending",), "A withdrawal shows as pending until the ATM's bank settles it (1-2 days)."),
    ]
    default_answer = "I can help with cash withdrawals and ATMs."

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        text = task.text
        if has(
            text,
            "swallow",
            "kept my card",
            "ate my card",
            "retained",
            "didn't give back",
            "did not give back",
            "keep my card",
            "kept the card",
        ):
            # A card the ATM kept is out of the customer's hands: security blocks and replaces it.
            return Handoff("security", "an ATM kept the card", {"replace": True})
        if has(
            text,
            "less cash",
            "wrong amount",
            "didn't give me",
            "did not give me",
            "not the amount",
            "didn't get my cash",
            "did not get my cash",
        ):
            withdrawals = await tools.call("lookup_transactions", kind="cash_withdrawal")
            if not withdrawals:
                return {"reply": "I see no cash withdrawals on your accounts."}
            t = withdrawals[0]
            case = await ctx.delegate(
                f"open a dispute for {t['id']}: the ATM paid out the wrong amount",
                payload={**task.payload, "transaction": t["id"]},
                agent="disputes",
            )
            return {
                "reply": f"I asked the disputes team to investigate {t['id']}.",
                "withdrawal": t["id"],
                "case": case.output,
            }
        return {"reply": self.lookup_faq(text)}


RATES = {
    ("GBP", "EUR"): 1.17,
    ("GBP", "USD"): 1.27,
    ("EUR", "USD"): 1.08,
    ("GBP", "JPY"): 198.0,
    ("GBP", "CHF"): 1.14,
}


class Exchange(DeskAgent):
    name = "exchange"
    description = (
        "Exchange rates, exchanging currencies in the app, foreign payments, supported "
        "currencies and countries."
    )
    examples = [
        "what is the exchange rate from pounds to euros",
        "how do I exchange currency in the app",
        "which currencies do you support",
        "I was charged the wrong exchange rate for a card payment abroad",
        "the ATM abroad gave me a bad exchange rate",
        "is there a fee for exchanging money",
        "which countries can I use the card in",
        "can I hold dollars in my account",
    ]
    faq = [
        (
            ("which currenc", "support", "hold"),
            "You can hold and exchange GBP, EUR, USD, CHF and JPY.",
        ),
        (("countr",), "Accounts are for residents of the UK and the EEA; cards work worldwide."),
        (
            ("wrong", "bad"),
            "Card payments abroad use Mastercard's rate on the day the merchant "
            "settles, which can differ from the rate when you paid.",
        ),
        (("fee", "charge"), "Exchanges are free on weekdays; at weekends we add 0.5%."),
        (
            ("how do i exchange", "in the app"),
            "Open Accounts > Exchange, pick the currencies and the amount.",
        ),
    ]
    default_answer = "I can quote exchange rates and explain foreign payments."

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        text = task.text.lower()
        if has(text, "rate") and not has(text, "wrong", "bad"):
            found = [
                c for word, c in _CURRENCY.items() if re.search(rf"\b{re.escape(word)}\b", text)
            ]
            codes = list(dict.fromkeys(found)) or ["GBP", "EUR"]
            if len(codes) == 1:
                codes = ["GBP", codes[0]] if codes[0] != "GBP" else ["GBP", "EUR"]
            a, b = codes[:2]
            rate = RATES.get((a, b)) or (1 / RATES[(b, a)] if (b, a) in RATES else None)
            if rate is None:
                return {"reply": f"I have no rate for {a} to {b} today."}
            return {
                "reply": f"Today 1 {a} = {rate:.4f} {b}.",
                "pair": f"{a}/{b}",
                "rate": round(rate, 4),
            }
        return {"reply": self.lookup_faq(text)}


class Fees(DeskAgent):
    name = "fees"
    description = (
        "Fees and charges on the statement: card payment, transfer, top-up and cash "
        "withdrawal fees."
    )
    examples = [
        "why was I charged a fee",
        "there is an extra charge on my statement",
        "what is this fee for my transfer",
        "do you charge for topping up by card",
        "why did I pay a fee for a cash withdrawal",
        "I was charged a fee for a card payment",
        "is there a charge for a top-up by bank transfer",
    ]
    faq = [
        (("transfer",), "Transfers in GBP are free; foreign transfers cost 2.50."),
        (
            ("top up", "top-up", "topping"),
            "Top-ups by bank transfer are free; by card 0.5% for cards issued outside the UK.",
        ),
        (("cash", "withdraw", "atm"), "The first 200.00 of withdrawals a month are free, then 2%."),
        (("card payment",), "Card payments are free in any currency on weekdays."),
    ]
    default_answer = "Here are the fees on your account."

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        fees = await tools.call("lookup_transactions", kind="fee")
        listed = "; ".join(f"{t['id']} {t['counterparty']} {t['amount']}" for t in fees) or "none"
        return {
            "reply": f"{self.lookup_faq(task.text)} Fees on your account: {listed}.",
            "fees": [t["id"] for t in fees],
        }


class Disputes(DeskAgent):
    name = "disputes"
    description = (
        "Refunds and disputes: payments, direct debits or withdrawals the customer does not "
        "recognise, double charges."
    )
    examples = [
        "I don't recognise this card payment",
        "dispute transaction T1002",
        "I was charged twice for the same thing",
        "there is a direct debit I did not set up",
        "I want a refund for a payment",
        "my refund is not showing up",
        "there is a cash withdrawal I did not make",
        "someone paid with my card at ElectroMart, it was not me",
    ]
    retries = 2
    approval_above_cents = 100_00
    """A refund of this much or more waits for a colleague's approval (`ctx.approve`)."""
    approval_timeout_s = 3600.0
    """How long a refund waits for that approval before it is refused (expired)."""
    faq = [
        (
            ("refund",),
            "Refunds reach your account 5 to 7 working days after the merchant sends "
            "them; if it has been longer, give me the payment's reference and I open a dispute.",
        ),
    ]

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        text = task.text
        ref = tx_in(task)
        if (
            ref is None
            and has(text, "refund")
            and has(text, "not showing", "haven't", "have not", "still", "where is")
        ):
            return {"reply": self.lookup_faq(text)}
        if ref is not None and has(text, "refund"):
            return await self.refund(task, ctx, tools, ref)
        payments = await tools.call("lookup_transactions")
        if ref is None:
            ref = _guess_payment(text, payments)
        if ref is None:
            recent = ", ".join(f"{t['id']} {t['counterparty']} {t['amount']}" for t in payments[:5])
            return refusal(
                "open_dispute",
                BankRefusal(f"which payment do you mean? Give me its reference (recent: {recent})"),
            )
        tx = next((t for t in payments if t["id"] == ref), None)
        consulted = None
        if tx is not None and tx["kind"] == "card_payment" and tx["card"]:
            # A disputed card payment may mean a compromised card: ask the card desk its state.
            check = await ctx.delegate(
                f"what is the status of card ending {tx['card']}",
                payload={"customer": task.payload.get("customer"), "card": tx["card"]},
                agent="cards",
            )
            consulted = check.output
        try:
            out = await tools.call("open_dispute", transaction=ref, reason=task.text)
        except BankRefusal as exc:
            return refusal("open_dispute", exc)
        reply = (
            f"Dispute {out['dispute']} is open for payment {ref}; we reply within 10 working days."
            if not out.get("already")
            else f"Payment {ref} is already in dispute {out['dispute']}."
        )
        result: dict[str, Any] = {"action": "open_dispute", "done": True, "reply": reply, **out}
        if consulted is not None:
            result["card_check"] = consulted
            if isinstance(consulted, dict) and consulted.get("status") == "active":
                result["reply"] += (
                    f" Your card ending {tx['card'] if tx else ''} is still active: "
                    "if you think it was used by someone else, ask me to block it."
                )
        return result

    async def refund(self, task: Task, ctx: Context, tools: BankTools, ref: str) -> Any:
        """Refund a card payment; from `approval_above_cents` on, a colleague approves it first.

        The look-up runs before the question and the refund after it, once per task (the bank's
        idempotency key is the task id): after a restart the look-up is answered from the
        trace, and the refund happens once the approval is given."""
        found = await tools.call("lookup_transactions", transaction=ref)
        if not found:
            return refusal("refund_payment", BankRefusal(f"payment {ref} is not one of yours"))
        tx = found[0]
        try:
            # Refuse at once what cannot be refunded, rather than ask a colleague in vain.
            check_refundable(ref, tx["kind"], tx["status"])
        except BankRefusal as exc:
            return refusal("refund_payment", exc)
        amount = -int(tx["amount_cents"])
        refund = money(amount, tx["currency"])
        if amount >= self.approval_above_cents:
            question = (
                f"refund {refund} to card ending {tx['card']}? "
                f"({ref}, {tx['counterparty']}, customer {tools.customer or '-'})"
            )
            approved = await ctx.approve(
                question,
                timeout=self.approval_timeout_s,
                details={
                    "transaction": ref,
                    "merchant": tx["counterparty"],
                    "amount": refund,
                },
            )
            if not approved:
                return {
                    "action": "refund_payment",
                    "done": False,
                    "approved": False,
                    "reply": f"A refund of {refund} needs a colleague's "
                    "approval, and it was not given: nothing was paid back. Ask me to dispute "
                    "the payment instead.",
                }
        try:
            out = await tools.call("refund_payment", transaction=ref)
        except BankRefusal as exc:
            return refusal("refund_payment", exc)
        return {
            "action": "refund_payment",
            "done": True,
            "reply": f"{out['refunded']} for payment {ref} is back in your account.",
            **out,
        }


def _guess_payment(text: str, payments: list[dict[str, Any]]) -> str | None:
    """A payment the text names by merchant, or the duplicate of a double charge; None otherwise."""
    low = text.lower()
    named = [t for t in payments if t["counterparty"] and t["counterparty"].lower() in low]
    if len(named) == 1:
        return str(named[0]["id"])
    if has(text, "twice", "double", "two times", "duplicate"):
        seen: dict[tuple[str, int], str] = {}
        for t in sorted(payments, key=lambda t: t["id"]):
            key = (t["counterparty"], t["amount_cents"])
            if key in seen and t["kind"] == "card_payment":
                return str(t["id"])  # the later of the two
            seen[key] = t["id"]
    if len(named) > 1 and has(text, "twice", "double"):
        return str(named[0]["id"])
    return None


class Security(DeskAgent):
    name = "security"
    description = (
        "Lost, stolen or compromised cards (blocking them), a lost phone, a forgotten passcode."
    )
    examples = [
        "I lost my card, block it",
        "my card was stolen",
        "block card ending 4821",
        "someone has my card details",
        "I think my card is compromised",
        "my phone was stolen",
        "I forgot my passcode",
        "freeze my card now",
        "I lost my card ending 4821, please block it and send me a new one",
    ]
    retries = 2
    faq = [
        (
            ("phone",),
            "We signed your app out on every device; sign in again on your new phone "
            "with your e-mail and ID.",
        ),
        (("passcode", "password"), "Reset your passcode from the sign-in screen: Forgot passcode."),
    ]
    default_answer = "I can block a card that is lost, stolen or compromised."

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        text = task.text
        if has(text, "phone", "passcode", "password") and not has(text, "card"):
            return {"reply": self.lookup_faq(text)}
        card = card_in(task)
        try:
            blocked = await tools.call("block_card", card=card)
        except BankRefusal as exc:
            return refusal("block_card", exc)
        result: dict[str, Any] = {
            "action": "block_card",
            "done": True,
            "reply": f"Card ending {blocked['card']} is blocked: nobody can pay with it now.",
            **blocked,
        }
        if task.payload.get("replace") or has(text, "new one", "replace", "new card", "send me"):
            replacement = await ctx.delegate(
                f"order a replacement for card ending {blocked['card']}",
                payload={"customer": task.payload.get("customer"), "card": blocked["card"]},
                agent="cards",
            )
            result["replacement"] = replacement.output
            if isinstance(replacement.output, dict) and replacement.output.get("done"):
                result["reply"] += " " + str(replacement.output["reply"])
        return result


class Account(DeskAgent):
    name = "account"
    description = (
        "The account itself: identity verification, source of funds, personal details, age "
        "limit, closing it."
    )
    examples = [
        "why do I need to verify my identity",
        "I can't verify my identity",
        "how do I change my address",
        "close my account",
        "how old do I have to be to open an account",
        "why do you need to know where my money comes from",
        "is my identity verified",
        "update my personal details",
    ]
    faq = [
        (("why",), "The law asks us to know our customers; verifying unlocks all limits."),
        (("age", "old"), "You need to be 18 or older to open an account."),
        (
            ("address", "details", "name", "e-mail", "email"),
            "Change your details under Account > Profile; a new name needs a photo of your ID.",
        ),
        (
            ("source", "comes from", "funds"),
            "For large deposits we ask for a payslip or bank "
            "statement showing where the money comes from.",
        ),
    ]
    default_answer = "I can help with your account and identity checks."

    async def answer(self, task: Task, ctx: Context, tools: BankTools) -> Any:
        text = task.text
        if has(text, "close", "terminate", "delete my account", "cancel my account"):
            profile = await tools.call("customer_profile")
            held = [a["balance"] for a in profile["accounts"] if a["balance_cents"]]
            if held:
                return refusal(
                    "close_account",
                    BankRefusal(
                        f"I can't close an account that still holds money ({', '.join(held)}): "
                        "move it out first"
                    ),
                )
            return {"reply": "Your account will be closed within 2 working days."}
        if has(text, "verif", "identity") and not has(text, "why"):
            profile = await tools.call("customer_profile")
            if profile["verified"]:
                return {"reply": f"{profile['name']}, your identity is verified.", "verified": True}
            return {
                "reply": (
                    f"{profile['name']}, your identity is not verified yet: upload a photo "
                    "ID and a selfie under Account > Verify. If the upload fails, use "
                    "a passport and good light."
                ),
                "verified": False,
            }
        return {"reply": self.lookup_faq(text)}


CUSTOMER_DESK: list[Agent] = [
    Cards(),
    CardPayments(),
    Transfers(),
    TopUps(),
    Cash(),
    Exchange(),
    Fees(),
    Disputes(),
    Security(),
    Account(),
]
"""The ten customer-operations agents."""

__all__ += ["CUSTOMER_DESK", "card_in", "tx_in"]
