"""Why the exchange refuses a command: :class:`RejectCode` and :class:`OrderRejected`.

Every refusal of an order, amend, cancel, account or asset command is an :class:`OrderRejected`
whose ``code`` is a :class:`RejectCode`: a stable machine-readable reason (a ``str`` enum, so the
REST API answers its value unchanged). Risk refusals (:mod:`drakewell.exchange.risk`) and asset
registrations refused against the chain (:mod:`drakewell.exchange.assets`) are subclasses with
their own codes, so callers branch on ``exc.code`` (or the class), never on the message.
"""

from __future__ import annotations

import enum

from drakewell.core.errors import ExchangeError


class RejectCode(enum.StrEnum):
    """A refusal reason; its value is what the REST API answers as ``code``."""

    # input the request could have got right (the REST API answers 400)
    BAD_ACCOUNT = "bad_account"
    BAD_AMEND = "bad_amend"
    BAD_AMOUNT = "bad_amount"
    BAD_ASSET = "bad_asset"
    BAD_CLIENT_ORDER_ID = "bad_client_order_id"
    BAD_ESCROW = "bad_escrow"
    BAD_INSTRUMENT = "bad_instrument"
    BAD_KEY_HASH = "bad_key_hash"
    BAD_ORDER_TYPE = "bad_order_type"
    BAD_PRICE = "bad_price"
    BAD_QUANTITY = "bad_quantity"
    BAD_SIDE = "bad_side"
    BAD_TIF = "bad_tif"
    BAD_TIME = "bad_time"
    MISSING_PROTECTION = "missing_protection"
    # refusals by the market or account state (409)
    ACCOUNT_EXISTS = "account_exists"
    ASSET_EXISTS = "asset_exists"
    ASSET_WITHOUT_ESCROW = "asset_without_escrow"
    BELOW_FLOOR = "below_floor"
    CLIENT_ORDER_ID_IN_USE = "client_order_id_in_use"
    ESCROW_REGISTERED = "escrow_registered"
    FOK_NOT_FILLABLE = "fok_not_fillable"
    INSTRUMENT_CLOSED = "instrument_closed"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    INSUFFICIENT_CAPACITY = "insufficient_capacity"
    KEY_IN_USE = "key_in_use"
    ORDER_CLOSED = "order_closed"
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    UNKNOWN_ACCOUNT = "unknown_account"
    # no such order of the account (404)
    UNKNOWN_ORDER = "unknown_order"
    # an asset registration that does not match the chain (409)
    ASSET_ID_MISMATCH = "asset_id_mismatch"
    CAPACITY_EXCEEDS_DECLARED = "capacity_exceeds_declared"
    NOT_MARKET = "not_market"
    SHARE_MISMATCH = "share_mismatch"
    UNDECLARED_ASSET = "undeclared_asset"
    UNKNOWN_ESCROW = "unknown_escrow"
    # the engine stopped after a failed journal commit (503)
    ENGINE_HALTED = "engine_halted"

    @property
    def is_bad_input(self) -> bool:
        """Whether the command itself is malformed (not refused by the state it met)."""
        return self in _BAD_INPUT


_BAD_INPUT = frozenset(
    {
        RejectCode.BAD_ACCOUNT,
        RejectCode.BAD_AMEND,
        RejectCode.BAD_AMOUNT,
        RejectCode.BAD_ASSET,
        RejectCode.BAD_CLIENT_ORDER_ID,
        RejectCode.BAD_ESCROW,
        RejectCode.BAD_INSTRUMENT,
        RejectCode.BAD_KEY_HASH,
        RejectCode.BAD_ORDER_TYPE,
        RejectCode.BAD_PRICE,
        RejectCode.BAD_QUANTITY,
        RejectCode.BAD_SIDE,
        RejectCode.BAD_TIF,
        RejectCode.BAD_TIME,
        RejectCode.MISSING_PROTECTION,
    }
)


class OrderRejected(ExchangeError):
    """A command was refused and changed nothing; ``code`` is its :class:`RejectCode`."""

    code: RejectCode

    def __init__(self, code: RejectCode | str, message: str, *, hint: str) -> None:
        self.code = RejectCode(code)
        super().__init__(message, hint=hint)


class FixedCodeRejection(OrderRejected):
    """A refusal kind with one code of its own (set as the class attribute ``code``)."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(type(self).code, message, hint=hint)


__all__ = ["FixedCodeRejection", "OrderRejected", "RejectCode"]
