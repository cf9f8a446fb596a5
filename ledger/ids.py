"""Identity numbers: GB 11643 resident ids and GB 32100 credit codes.

Check-character algorithms as the record contract states them, generators
for the simulator and tests, and masking for readers without need to know.
"""

from __future__ import annotations

import re
from datetime import date

_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_CHECK = "10X98765432"
_RID_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def resident_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _RID_WEIGHTS, strict=True))
    return _RID_CHECK[total % 11]


def resident_id_problem(value: str) -> str | None:
    """None when ``value`` is a valid GB 11643 number, else why not."""
    if not isinstance(value, str) or not _RID_SHAPE.fullmatch(value):
        return "a resident id is 17 digits and a check character (0-9 or X)"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"birth date {value[6:14]} is not a real date"
    expected = resident_check_char(value[:17])
    if value[17] != expected:
        return f"check character is {value[17]}, expected {expected}"
    return None


def make_resident_id(region6: str, birth: date, seq3: int) -> str:
    """A valid resident id for the simulator and tests."""
    first17 = f"{region6}{birth:%Y%m%d}{seq3 % 1000:03d}"
    return first17 + resident_check_char(first17)


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    value = 31 - total % 31
    return USCC_ALPHABET[0 if value == 31 else value]


def credit_code_problem(value: str) -> str | None:
    """None when ``value`` is a valid GB 32100 unified social credit code."""
    if not isinstance(value, str) or len(value) != 18:
        return "a unified social credit code has 18 characters"
    bad = [c for c in value if c not in _USCC_VALUE]
    if bad:
        return f"character {bad[0]!r} is not in the GB 32100 alphabet"
    expected = uscc_check_char(value[:17])
    if value[17] != expected:
        return f"check character is {value[17]}, expected {expected}"
    return None


def make_credit_code(first17: str) -> str:
    if len(first17) != 17 or any(c not in _USCC_VALUE for c in first17):
        raise ValueError(f"bad credit code stem: {first17!r}")
    return first17 + uscc_check_char(first17)


def is_resident_id(value: str) -> bool:
    return resident_id_problem(value) is None


def mask_resident_id(value: str) -> str:
    """420106********123X: region kept, birth date and sequence hidden."""
    if isinstance(value, str) and len(value) == 18 and _RID_SHAPE.fullmatch(value):
        return value[:6] + "********" + value[14:]
    return value


def mask_party(value: str) -> str:
    """Mask a payee/claimant that is a person; organisations stay readable."""
    return mask_resident_id(value) if isinstance(value, str) and _RID_SHAPE.fullmatch(value) else value
