"""Money as integer fen (分). Never float.

The contract writes money as a JSON string of yuan with at most two decimals
("1800.00", "25"). Inside skillfund every amount is an ``int`` of fen; it is
turned back into a yuan string only at the edges (reports, exports, JSON).
"""

from __future__ import annotations

import re
from decimal import Decimal

# Yuan with at most two decimals; an optional sign only where a field allows it.
_UNSIGNED = re.compile(r"^(0|[1-9][0-9]{0,14})(?:\.([0-9]{1,2}))?$")
_SIGNED = re.compile(r"^(-?)(0|[1-9][0-9]{0,14})(?:\.([0-9]{1,2}))?$")

# 10^15 yuan is far above any fund; a bound keeps arithmetic honest.
FEN_MAX = 10**17 - 1  # the largest amount the 15-digit yuan pattern can write


class MoneyError(ValueError):
    """A string that is not money as the contract writes it."""


def parse_fen(text: object, *, signed: bool = False) -> int:
    """Parse a contract money string into integer fen.

    Raises MoneyError for anything else: JSON numbers, exponents, three
    decimals, leading zeros, a sign where none is allowed.
    """
    if not isinstance(text, str):
        raise MoneyError(f"money must be a JSON string of yuan, got {type(text).__name__}")
    if signed:
        m = _SIGNED.fullmatch(text)
        if m is None:
            raise MoneyError(f"not money with at most two decimals: {text!r}")
        sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    else:
        m = _UNSIGNED.fullmatch(text)
        if m is None:
            raise MoneyError(f"not a positive amount of yuan with at most two decimals: {text!r}")
        sign, whole, frac = "", m.group(1), m.group(2) or ""
    fen = int(whole) * 100 + int((frac + "00")[:2])
    if fen > FEN_MAX:
        raise MoneyError(f"amount out of range: {text!r}")
    return -fen if sign else fen


def fen_to_yuan(fen: int) -> str:
    """Integer fen to the canonical yuan string, always two decimals."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError(f"fen must be int, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, frac = divmod(abs(fen), 100)
    return f"{sign}{whole}.{frac:02d}"


def fen_to_decimal(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)
