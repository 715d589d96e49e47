"""Which customer-desk agent answers each of BANKING77's 77 intents, as data, and the rows of the
dataset (banking77/ beside this file, CC-BY-4.0, PolyAI) relabelled with those agents' names.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

__all__ = ["AGENT_INTENTS", "BANKING77_DIR", "INTENT_TO_AGENT", "banking77_rows"]

BANKING77_DIR = Path(__file__).resolve().parent / "banking77"

AGENT_INTENTS: dict[str, list[str]] = {
    "cards": [
        "card_arrival",
        "card_delivery_estimate",
        "card_linking",
        "activate_my_card",
        "get_physical_card",
        "order_physical_card",
        "getting_spare_card",
        "card_about_to_expire",
        "getting_virtual_card",
        "get_disposable_virtual_card",
        "disposable_card_limits",
        "virtual_card_not_working",
        "visa_or_mastercard",
        "apple_pay_or_google_pay",
        "change_pin",
        "pin_blocked",
    ],
    "card_payments": [
        "declined_card_payment",
        "pending_card_payment",
        "reverted_card_payment?",
        "card_acceptance",
        "card_not_working",
        "contactless_not_working",
    ],
    "transfers": [
        "cancel_transfer",
        "transfer_not_received_by_recipient",
        "declined_transfer",
        "pending_transfer",
        "transfer_timing",
        "beneficiary_not_allowed",
        "receiving_money",
        "failed_transfer",
        "transfer_into_account",
        "balance_not_updated_after_bank_transfer",
    ],
    "top_ups": [
        "automatic_top_up",
        "pending_top_up",
        "top_up_limits",
        "top_up_reverted",
        "topping_up_by_card",
        "verify_top_up",
        "top_up_by_cash_or_cheque",
        "top_up_failed",
        "balance_not_updated_after_cheque_or_cash_deposit",
    ],
    "cash": [
        "pending_cash_withdrawal",
        "wrong_amount_of_cash_received",
        "atm_support",
        "declined_cash_withdrawal",
        "card_swallowed",
    ],
    "exchange": [
        "exchange_rate",
        "fiat_currency_support",
        "exchange_via_app",
        "supported_cards_and_currencies",
        "country_support",
        "card_payment_wrong_exchange_rate",
        "wrong_exchange_rate_for_cash_withdrawal",
        "exchange_charge",
    ],
    "fees": [
        "extra_charge_on_statement",
        "top_up_by_bank_transfer_charge",
        "card_payment_fee_charged",
        "transfer_fee_charged",
        "top_up_by_card_charge",
        "cash_withdrawal_charge",
    ],
    "disputes": [
        "card_payment_not_recognised",
        "direct_debit_payment_not_recognised",
        "request_refund",
        "Refund_not_showing_up",
        "transaction_charged_twice",
        "cash_withdrawal_not_recognised",
    ],
    "security": [
        "lost_or_stolen_card",
        "compromised_card",
        "lost_or_stolen_phone",
        "passcode_forgotten",
    ],
    "account": [
        "age_limit",
        "edit_personal_details",
        "why_verify_identity",
        "unable_to_verify_identity",
        "verify_source_of_funds",
        "terminate_account",
        "verify_my_identity",
    ],
}
"""Agent name -> the BANKING77 intents it answers. Every intent appears exactly once."""

INTENT_TO_AGENT: dict[str, str] = {
    intent: name for name, intents in AGENT_INTENTS.items() for intent in intents
}


@cache
def banking77_rows(split: str = "train") -> tuple[tuple[str, str], ...]:
    """(text, intent) rows of `split` ("train" or "test"), read with a CSV parser (some texts hold
    newlines)."""
    with (BANKING77_DIR / f"{split}.csv").open(newline="", encoding="utf-8") as f:
        return tuple((row["text"].strip(), row["category"]) for row in csv.DictReader(f))
