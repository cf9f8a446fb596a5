"""Input records: the record contract (../shared/spec/records.md) as code.

``parse_line`` / ``parse_record`` turn one JSON Lines record into a typed,
immutable pydantic model, or raise ``RecordError`` with a reason
(``malformed`` | ``invalid_id`` | ``unknown_region``), the dotted path of the
field at fault and a sentence saying what is wrong.

Validation is hand-written against a per-type field table rather than left
to pydantic's coercions: the contract is stricter than any stock type (money
is a JSON *string* of yuan, timestamps must carry an offset, ids have check
characters) and it fixes which problem wins when there are several:
``malformed`` beats ``invalid_id`` beats ``unknown_region``, and within one
reason the first field in contract order. Every problem is collected, then
the winner is reported. The validated values are then handed to the strict
pydantic model of the type.

``Record.canonical()`` is the contract fields only, JSON-native, with money as
canonical yuan strings and defaults filled in; ``Record.digest()`` hashes it,
so the same content always has the same digest (idempotent re-send) and
different content a different one (``conflict``).
"""

from __future__ import annotations

import hashlib
import math
import re
from operator import mul as _mul
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ClassVar, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict

from ledger.ids import credit_code_problem, resident_id_problem
from ledger.money import MoneyError, fen_to_yuan, parse_fen
from ledger.policy import FUND_SOURCES, SUBSIDY_KINDS, pack_code_for

__all__ = [
    "RECORD_TYPES",
    "RECORD_CLASSES",
    "REASONS",
    "RecordError",
    "Record",
    "Venue",
    "Session",
    "AppropriationRecord",
    "InstitutionRecord",
    "ProjectRecord",
    "ClassOpenedRecord",
    "ClassReviewedRecord",
    "EnrollmentRecord",
    "AttendanceRecord",
    "InspectionRecord",
    "CompletionRecord",
    "PersonStatusRecord",
    "ClaimRecord",
    "ClaimReviewedRecord",
    "NoticeRecord",
    "PaymentRecord",
    "RecoveryRecord",
    "BankStatementRecord",
    "parse_line",
    "parse_record",
]

RECORD_TYPES: tuple[str, ...] = (
    "appropriation",
    "institution",
    "project",
    "class_opened",
    "class_reviewed",
    "enrollment",
    "attendance",
    "inspection",
    "completion",
    "person_status",
    "claim",
    "claim_reviewed",
    "notice",
    "payment",
    "recovery",
    "bank_statement",
)

# Reasons this module raises, strongest first (the precedence order).
REASONS: tuple[str, ...] = ("malformed", "invalid_id", "unknown_region")
_RANK = {r: i for i, r in enumerate(REASONS)}

# --- enumerations, exactly as the contract lists them -----------------------

INSTITUTION_STATUSES = ("listed", "suspended", "delisted")
TRAINING_KINDS = (
    "employment_skills",
    "post_skills",
    "entrepreneurship",
    "work_for_training",
    "apprenticeship",
    "safety",
)
SESSION_MODES = ("onsite", "online")
CLASS_DECISIONS = ("approved", "rejected")
CATEGORIES = (
    "migrant_worker",
    "unemployed",
    "poverty",
    "graduate",
    "two_after",
    "veteran",
    "disabled",
    "employee",
    "other",
)
METHODS = ("face", "fingerprint", "manual")
CERTIFICATE_KINDS = (
    "qualification",
    "skill_level",
    "special_ability",
    "special_operation",
    "training_certificate",
    "none",
)
PERSON_STATUSES = ("deceased", "pensioner")
CLAIMANT_KINDS = ("institution", "enterprise", "individual")
CLAIM_DECISIONS = ("approved", "rejected", "returned")
CLASS_ID_REQUIRED_FOR = frozenset({"training", "appraisal", "living_allowance"})
DEFAULT_CLASS_HOUR_MINUTES = 45

# --- precompiled shapes (fullmatch: "$" would let a trailing newline in) ----

_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TS_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_TS_NO_OFFSET_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REGION_RE = re.compile(r"[0-9]{6}")

_INT_MAX = 2**31 - 1  # counts, stars, months, minutes: far above anything real
_ACCOUNT_MAX = 64

_fromisoformat = datetime.fromisoformat
_date_fromisoformat = date.fromisoformat


# --- the error ----------------------------------------------------------------


class RecordError(Exception):
    """A record the ledger refuses before any rule runs.

    ``reason``: ``malformed`` | ``invalid_id`` | ``unknown_region``;
    ``field``: dotted path of the field at fault (``sessions[1].start``), or
    None for whole-record problems; ``detail``: a sentence naming the field;
    ``type`` / ``id``: the record's own, when they are strings.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        field: str | None = None,
        type: str | None = None,  # noqa: A002 - the contract's name
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.field = field
        self.detail = detail
        self.type = type
        self.id = id

    def __str__(self) -> str:
        return self.detail

    def __repr__(self) -> str:
        return (
            f"RecordError(reason={self.reason!r}, field={self.field!r}, "
            f"type={self.type!r}, id={self.id!r}, detail={self.detail!r})"
        )

    def __reduce__(self):  # keyword-only args: make pickling (xdist, multiprocessing) work
        return (
            _rebuild_error,
            (self.reason, self.detail, self.field, self.type, self.id),
        )


def _rebuild_error(reason, detail, field, type_, id_):
    return RecordError(reason, detail, field=field, type=type_, id=id_)


# --- leaf checkers: value -> stored value, or raise _Bad ---------------------


class _Bad(Exception):
    __slots__ = ("reason", "msg")

    def __init__(self, reason: str, msg: str) -> None:
        self.reason = reason
        self.msg = msg


_BAD = object()  # stands for a value that failed its check
_MISSING = object()


def _jtype(v: object) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list | tuple):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _show(v: object) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def _want(what: str, v: object) -> _Bad:
    return _Bad("malformed", f"expected {what}, got {_jtype(v)} {_show(v)}")


def _opaque(v: object) -> str:
    if not isinstance(v, str):
        raise _want("an id string", v)
    if _ID_RE.fullmatch(v) is None:
        raise _Bad("malformed", f"not 1-64 characters of [A-Za-z0-9._:-]: {_show(v)}")
    return v


def _text(v: object) -> str:
    """Required free text: a non-blank string that can be written as UTF-8."""
    if not isinstance(v, str):
        raise _want("a string", v)
    if not v.strip():
        raise _Bad("malformed", f"must not be empty: {_show(v)}")
    if not v.isascii():
        _utf8(v)
    return v


def _free_text(v: object) -> str:
    """Optional free text (note, memo): any string."""
    if not isinstance(v, str):
        raise _want("a string", v)
    if not v.isascii():
        _utf8(v)
    return v


def _utf8(v: str) -> None:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad("malformed", "string is not valid Unicode (lone surrogate)") from None


def _account(v: object) -> str:
    """Bank accounts and references: non-blank, at most 64 characters."""
    if not isinstance(v, str):
        raise _want("a string", v)
    if not v.strip():
        raise _Bad("malformed", f"must not be empty: {_show(v)}")
    if len(v) > _ACCOUNT_MAX:
        raise _Bad("malformed", f"longer than {_ACCOUNT_MAX} characters ({len(v)})")
    if not v.isascii():
        _utf8(v)
    return v


def _timestamp(v: object) -> datetime:
    if not isinstance(v, str):
        raise _want("an RFC 3339 timestamp string with offset", v)
    if _TS_RE.fullmatch(v) is None:
        if _TS_NO_OFFSET_RE.fullmatch(v) is not None:
            raise _Bad("malformed", f"timestamp without offset: {_show(v)}")
        raise _Bad("malformed", f"not an RFC 3339 timestamp with offset: {_show(v)}")
    s = v if v.isupper() else v.upper()  # 't' / 'z' are RFC 3339, fromisoformat wants T / Z
    try:
        return _fromisoformat(s)
    except ValueError as e:
        raise _Bad("malformed", f"not a real timestamp: {_show(v)} ({e})") from None


def _date(v: object) -> date:
    if not isinstance(v, str):
        raise _want("a YYYY-MM-DD date string", v)
    if _DATE_RE.fullmatch(v) is None:
        raise _Bad("malformed", f"not a YYYY-MM-DD date: {_show(v)}")
    try:
        return _date_fromisoformat(v)
    except ValueError as e:
        raise _Bad("malformed", f"not a real date: {_show(v)} ({e})") from None


def _money_pos(v: object) -> int:
    if not isinstance(v, str):
        raise _want("money as a JSON string of yuan", v)
    if v[-1:] == "\n":  # money.py's pattern ends in "$", which allows one
        raise _Bad("malformed", f"not money: {_show(v)}")
    try:
        fen = parse_fen(v)
    except MoneyError as e:
        raise _Bad("malformed", str(e)) from None
    if fen <= 0:
        raise _Bad("malformed", f"amount must be positive: {_show(v)}")
    return fen


def _money_nonneg(v: object) -> int:
    if not isinstance(v, str):
        raise _want("money as a JSON string of yuan", v)
    if v[-1:] == "\n":
        raise _Bad("malformed", f"not money: {_show(v)}")
    try:
        return parse_fen(v)
    except MoneyError as e:
        raise _Bad("malformed", str(e)) from None


def _money_signed_nonzero(v: object) -> int:
    if not isinstance(v, str):
        raise _want("money as a JSON string of yuan", v)
    if v[-1:] == "\n":
        raise _Bad("malformed", f"not money: {_show(v)}")
    try:
        fen = parse_fen(v, signed=True)
    except MoneyError as e:
        raise _Bad("malformed", str(e)) from None
    if fen == 0:
        raise _Bad("malformed", f"amount must not be zero: {_show(v)}")
    return fen


def _region(v: object) -> str:
    if not isinstance(v, str):
        raise _want("a 6-digit region code string", v)
    if _REGION_RE.fullmatch(v) is None:
        raise _Bad("malformed", f"not a 6-digit region code: {_show(v)}")
    if pack_code_for(v) is None:
        raise _Bad("unknown_region", f"region {v} is under no policy pack")
    return v


def _any_region(v: object) -> str:
    if not isinstance(v, str):
        raise _want("a 6-digit region code string", v)
    if _REGION_RE.fullmatch(v) is None:
        raise _Bad("malformed", f"not a 6-digit region code: {_show(v)}")
    return v


_RID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_OFFSET = 48 * sum(_RID_WEIGHTS)  # the weighted sum of ASCII "0"s
_RID_CHECK = "10X98765432"


def _resident_id_ok(v: str) -> bool:
    """Fast path of GB 11643 (same rule as ids.resident_id_problem, which stays
    the authority: anything this refuses is re-checked there for the reason)."""
    if len(v) != 18 or _RID_SHAPE.fullmatch(v) is None:
        return False
    b = v.encode("ascii")
    if v[17] != _RID_CHECK[(sum(map(_mul, b, _RID_WEIGHTS)) - _RID_OFFSET) % 11]:
        return False
    try:
        date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    return True


def _resident_id(v: object) -> str:
    if not isinstance(v, str):
        raise _want("a resident id string", v)
    if _resident_id_ok(v):
        return v
    # ids.py's shape pattern ends in "$" (lets a trailing newline through): check length here.
    problem = resident_id_problem(v) if len(v) == 18 else "a resident id has 18 characters"
    if problem is not None:
        raise _Bad("invalid_id", f"not a valid resident id (GB 11643): {_show(v)}: {problem}")
    return v


def _credit_code(v: object) -> str:
    if not isinstance(v, str):
        raise _want("a unified social credit code string", v)
    problem = credit_code_problem(v)
    if problem is not None:
        raise _Bad("invalid_id", f"not a valid credit code (GB 32100): {_show(v)}: {problem}")
    return v


def _party_string(v: object) -> str:
    """claimant_id before its kind is known: just a string (checked in _post_claim)."""
    if not isinstance(v, str):
        raise _want("an id string", v)
    return v


def _payee(v: object) -> str:
    if not isinstance(v, str):
        raise _want("a credit code or resident id string", v)
    cc = credit_code_problem(v)
    if cc is None:
        return v
    if _resident_id_ok(v):
        return v
    rid = resident_id_problem(v) if len(v) == 18 else "a resident id has 18 characters"
    if rid is None:
        return v
    raise _Bad(
        "invalid_id",
        f"neither a valid credit code (GB 32100: {cc}) nor a valid resident id "
        f"(GB 11643: {rid}): {_show(v)}",
    )


def _strict_bool(v: object) -> bool:
    if v is True or v is False:
        return v
    raise _want("true or false", v)


def _int_range(lo: int, hi: int = _INT_MAX) -> Callable[[object], int]:
    def check(v: object) -> int:
        if type(v) is not int:
            raise _want("an integer", v)
        if v < lo or v > hi:
            if hi == _INT_MAX:
                bound = f">= {lo}" if v < lo else f"<= {_INT_MAX}"
            else:
                bound = f"between {lo} and {hi}"
            raise _Bad("malformed", f"must be an integer {bound}, got {v}")
        return v

    return check


def _float_range(lo: float, hi: float) -> Callable[[object], float]:
    def check(v: object) -> float:
        t = type(v)
        if t is not float and t is not int:
            raise _want("a number", v)
        f = float(v)
        if not lo <= f <= hi:  # also refuses NaN
            raise _Bad("malformed", f"must be between {lo:g} and {hi:g}, got {v!r}")
        return f

    return check


def _positive_number(v: object) -> int | float:
    t = type(v)
    if t is int:
        if v <= 0:
            raise _Bad("malformed", f"must be > 0, got {v}")
        return v
    if t is float:
        if not (v > 0 and math.isfinite(v)):
            raise _Bad("malformed", f"must be a finite number > 0, got {v!r}")
        # 8 and 8.0 are the same content: integral floats become ints.
        return int(v) if v.is_integer() and v < 2**53 else v
    raise _want("a number", v)


def _level(v: object) -> int | str:
    if type(v) is int and 1 <= v <= 5:
        return v
    if v == "special" and isinstance(v, str):
        return "special"
    raise _Bad("malformed", f"expected an integer 1-5 or \"special\", got {_jtype(v)} {_show(v)}")


def _enum(values: tuple[str, ...]) -> Callable[[object], str]:
    allowed = frozenset(values)
    listing = " | ".join(values)

    def check(v: object) -> str:
        if isinstance(v, str) and v in allowed:
            return v
        if not isinstance(v, str):
            raise _want(f"one of {listing}", v)
        raise _Bad("malformed", f"expected one of {listing}, got {_show(v)}")

    return check


# --- field tables --------------------------------------------------------------

REQ, OPT = 0, 1  # required / optional (absent or null -> None, or the default)


class _F:
    """One contract field: name, checker, required?, default, canonical encoder."""

    __slots__ = ("name", "check", "compound", "mode", "default", "encode")

    def __init__(self, name, check, *, mode=REQ, default=None, encode=None, compound=False):
        self.name = name
        self.check = check
        self.compound = compound
        self.mode = mode
        self.default = default
        self.encode = encode


def _list_copy(v: list) -> list:
    return list(v)


def _nested_canonical(v: list) -> list:
    return [x.canonical() for x in v]


def F_id(name, **kw):
    return _F(name, _opaque, **kw)


def F_money(name, check=_money_pos):
    return _F(name, check, encode=fen_to_yuan)


def F_ts(name):
    return _F(name, _timestamp, encode=datetime.isoformat)


def F_date(name):
    return _F(name, _date, encode=date.isoformat)


_Plan = tuple[tuple[str, Callable[..., Any], bool, bool, Any], ...]


def _plan(fields: tuple[_F, ...]) -> _Plan:
    """The field table as plain tuples (faster to unpack than attributes)."""
    return tuple((f.name, f.check, f.compound, f.mode == OPT, f.default) for f in fields)


def _run(plan: _Plan, obj: dict, prefix: str, errs: list, top: int | None, base: int = 0) -> dict:
    """Check the fields of ``obj``; problems go to ``errs`` as (reason, index, path, msg).

    ``index`` orders problems in contract order: the field's position for a
    record, the enclosing top-level field's position (``top``) for nested ones.
    """
    out = {}
    for i, (name, check, compound, optional, default) in enumerate(plan, base):
        v = obj.get(name, _MISSING)
        if v is _MISSING or (v is None and optional):
            if optional:
                out[name] = default
            else:
                errs.append(("malformed", i if top is None else top, prefix + name, "missing"))
                out[name] = _BAD
            continue
        try:
            if compound:
                out[name] = check(v, prefix + name, i if top is None else top, errs)
            else:
                out[name] = check(v)
        except _Bad as b:
            errs.append((b.reason, i if top is None else top, prefix + name, b.msg))
            out[name] = _BAD
    return out


def _list_of(item: Callable[[object], Any], *, nonempty: bool = False):
    """A compound checker for a JSON array whose items are checked by ``item``."""

    def check(v: object, path: str, idx: int, errs: list) -> list | object:
        if type(v) is not list:
            raise _want("an array", v)
        if nonempty and not v:
            raise _Bad("malformed", "must not be empty")
        out = []
        bad = False
        for j, x in enumerate(v):
            try:
                out.append(item(x))
            except _Bad as b:
                errs.append((b.reason, idx, f"{path}[{j}]", b.msg))
                bad = True
        return _BAD if bad else out

    return check


def _objects_of(model: type[BaseModel], fields: tuple[_F, ...], key: str, *, nonempty: bool):
    """A compound checker for an array of nested objects, unique by ``key``."""
    plan = _plan(fields)

    def check(v: object, path: str, idx: int, errs: list) -> list | object:
        if type(v) is not list:
            raise _want("an array", v)
        if nonempty and not v:
            raise _Bad("malformed", "must not be empty")
        out = []
        seen: set[str] = set()
        before = len(errs)
        for j, x in enumerate(v):
            where = f"{path}[{j}]"
            if type(x) is not dict:
                errs.append(("malformed", idx, where, f"expected an object, got {_jtype(x)} {_show(x)}"))
                continue
            vals = _run(plan, x, where + ".", errs, idx)
            k = vals[key]
            if k is not _BAD:
                if k in seen:
                    errs.append(("malformed", idx, f"{where}.{key}", f"duplicate {key} {k!r}"))
                    continue
                seen.add(k)
            if _BAD not in vals.values():
                extra = _nested_post.get(model)
                if extra is not None and not extra(vals, where + ".", idx, errs):
                    continue
                out.append(_build(model, vals))
        return _BAD if len(errs) > before else out

    return check


# --- models --------------------------------------------------------------------

_CONFIG = ConfigDict(strict=True, extra="ignore", frozen=True)


def _build(cls: type[BaseModel], values: dict) -> BaseModel:
    """Instantiate a model from values this module has already validated.

    The values are already of the declared Python types, so pydantic's strict
    pass is a cheap second check (and, being in Rust, faster than
    ``model_construct``).
    """
    return cls.model_validate(values)


class _Canonical(BaseModel):
    model_config = _CONFIG
    _fields: ClassVar[tuple[_F, ...]] = ()

    _encoders: ClassVar[tuple[tuple[str, Callable[[Any], Any] | None], ...]] = ()

    def canonical(self) -> dict[str, Any]:
        d = self.__dict__
        out: dict[str, Any] = {}
        for name, enc in self._encoders:
            v = d[name]
            if v is None:
                continue  # an absent optional field
            out[name] = v if enc is None else enc(v)
        return out


class Venue(_Canonical):
    venue_id: str
    capacity: int
    lat: float
    lon: float
    devices: list[str]


class Session(_Canonical):
    session_id: str
    start: AwareDatetime
    end: AwareDatetime
    teacher_id: str
    mode: Literal[SESSION_MODES]  # type: ignore[valid-type]


ClassSession = Session

Venue._fields = (
    F_id("venue_id"),
    _F("capacity", _int_range(0)),
    _F("lat", _float_range(-90.0, 90.0)),
    _F("lon", _float_range(-180.0, 180.0)),
    _F("devices", _list_of(_opaque), compound=True, encode=_list_copy),
)
Session._fields = (
    F_id("session_id"),
    F_ts("start"),
    F_ts("end"),
    F_id("teacher_id"),
    _F("mode", _enum(SESSION_MODES)),
)


def _post_session(vals: dict, prefix: str, idx: int, errs: list) -> bool:
    if not vals["start"] < vals["end"]:
        errs.append(("malformed", idx, prefix + "end", "session end must be after its start"))
        return False
    return True


_nested_post: dict[type, Callable[[dict, str, int, list], bool]] = {Session: _post_session}


class Record(_Canonical):
    """Base of the 16 record models. ``type``, ``id``, ``at`` are common."""

    type: str
    id: str
    at: AwareDatetime

    _has_region: ClassVar[bool] = False
    _field_plan: ClassVar[_Plan] = ()
    # cross-field checks: (values, errs) -> None; values hold _BAD for failed fields
    _post: ClassVar[Callable[[dict, list], None] | None] = None

    @property
    def pack(self) -> str | None:
        """The policy pack of the record's own ``region``, or None."""
        if self._has_region:
            return pack_code_for(self.__dict__["region"])
        return None

    def canonical(self) -> dict[str, Any]:
        """The contract fields only, JSON-native; ``type``, ``id``, ``at`` first."""
        d = self.__dict__
        out: dict[str, Any] = {"type": d["type"], "id": d["id"], "at": d["at"].isoformat()}
        for name, enc in self._encoders:
            v = d[name]
            if v is None:
                continue  # an absent optional field
            out[name] = v if enc is None else enc(v)
        return out

    def digest(self) -> str:
        """First 32 hex chars of sha256 over the canonical record with sorted keys."""
        return digest_of(self.canonical())


def digest_of(canonical: dict[str, Any]) -> str:
    """The content digest of a canonical record: same digest, same content."""
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


class AppropriationRecord(Record):
    type: Literal["appropriation"] = "appropriation"
    fund_source: Literal[FUND_SOURCES]  # type: ignore[valid-type]
    region: str
    amount: int
    document: str
    note: str | None = None


class InstitutionRecord(Record):
    type: Literal["institution"] = "institution"
    institution_id: str
    name: str
    region: str
    status: Literal[INSTITUTION_STATUSES]  # type: ignore[valid-type]
    star: int
    venues: list[Venue]


class ProjectRecord(Record):
    type: Literal["project"] = "project"
    project_id: str
    region: str
    occupation_code: str
    occupation_name: str
    level: int | Literal["special"]
    training_kind: Literal[TRAINING_KINDS]  # type: ignore[valid-type]
    standard_hours: int | float
    class_hour_minutes: int = DEFAULT_CLASS_HOUR_MINUTES
    subsidy_per_trainee: int
    shortage: bool


class ClassOpenedRecord(Record):
    type: Literal["class_opened"] = "class_opened"
    class_id: str
    institution_id: str
    project_id: str
    venue_id: str
    start_date: date
    end_date: date
    planned_headcount: int
    sessions: list[Session]


class ClassReviewedRecord(Record):
    type: Literal["class_reviewed"] = "class_reviewed"
    class_id: str
    reviewer_id: str
    decision: Literal[CLASS_DECISIONS]  # type: ignore[valid-type]


class EnrollmentRecord(Record):
    type: Literal["enrollment"] = "enrollment"
    class_id: str
    trainee_id: str
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    hukou_region: str


class AttendanceRecord(Record):
    type: Literal["attendance"] = "attendance"
    class_id: str
    session_id: str
    trainee_id: str
    sign_in: AwareDatetime
    sign_out: AwareDatetime
    method: Literal[METHODS]  # type: ignore[valid-type]
    device_id: str
    lat: float
    lon: float
    face_score: float | None = None


class InspectionRecord(Record):
    type: Literal["inspection"] = "inspection"
    class_id: str
    session_id: str
    inspector_id: str
    present_count: int
    note: str | None = None


class CompletionRecord(Record):
    type: Literal["completion"] = "completion"
    class_id: str
    trainee_id: str
    passed: bool
    certificate_kind: Literal[CERTIFICATE_KINDS]  # type: ignore[valid-type]
    certificate_no: str | None = None


class PersonStatusRecord(Record):
    type: Literal["person_status"] = "person_status"
    trainee_id: str
    status: Literal[PERSON_STATUSES]  # type: ignore[valid-type]
    since: date


class ClaimRecord(Record):
    type: Literal["claim"] = "claim"
    claim_id: str
    region: str
    claimant_id: str
    claimant_kind: Literal[CLAIMANT_KINDS]  # type: ignore[valid-type]
    subsidy_kind: Literal[SUBSIDY_KINDS]  # type: ignore[valid-type]
    class_id: str | None = None
    trainee_ids: list[str]
    months: int | None = None
    amount: int
    handled_by: str


class ClaimReviewedRecord(Record):
    type: Literal["claim_reviewed"] = "claim_reviewed"
    claim_id: str
    reviewer_id: str
    decision: Literal[CLAIM_DECISIONS]  # type: ignore[valid-type]
    approved_amount: int


class NoticeRecord(Record):
    type: Literal["notice"] = "notice"
    claim_id: str
    start: date
    end: date
    objections: int = 0


class PaymentRecord(Record):
    type: Literal["payment"] = "payment"
    payment_id: str
    claim_id: str
    fund_source: Literal[FUND_SOURCES]  # type: ignore[valid-type]
    region: str
    amount: int
    payee_id: str
    payee_account: str
    approved_by: str
    bank_ref: str


class RecoveryRecord(Record):
    type: Literal["recovery"] = "recovery"
    recovery_id: str
    claim_id: str
    amount: int
    reason: str


class BankStatementRecord(Record):
    type: Literal["bank_statement"] = "bank_statement"
    account: str
    amount: int
    counterparty_account: str
    bank_ref: str
    value_date: date
    memo: str | None = None


# --- the contract, type by type (field order = contract order) --------------

_VENUES = _objects_of(Venue, Venue._fields, "venue_id", nonempty=False)
_SESSIONS = _objects_of(Session, Session._fields, "session_id", nonempty=True)

AppropriationRecord._fields = (
    _F("fund_source", _enum(FUND_SOURCES)),
    _F("region", _region),
    F_money("amount"),
    _F("document", _text),
    _F("note", _free_text, mode=OPT),
)
InstitutionRecord._fields = (
    _F("institution_id", _credit_code),
    _F("name", _text),
    _F("region", _region),
    _F("status", _enum(INSTITUTION_STATUSES)),
    _F("star", _int_range(0, 5)),
    _F("venues", _VENUES, compound=True, encode=_nested_canonical),
)
ProjectRecord._fields = (
    F_id("project_id"),
    _F("region", _region),
    _F("occupation_code", _text),
    _F("occupation_name", _text),
    _F("level", _level),
    _F("training_kind", _enum(TRAINING_KINDS)),
    _F("standard_hours", _positive_number),
    _F("class_hour_minutes", _int_range(1), mode=OPT, default=DEFAULT_CLASS_HOUR_MINUTES),
    F_money("subsidy_per_trainee"),
    _F("shortage", _strict_bool),
)
ClassOpenedRecord._fields = (
    F_id("class_id"),
    _F("institution_id", _credit_code),
    F_id("project_id"),
    F_id("venue_id"),
    F_date("start_date"),
    F_date("end_date"),
    _F("planned_headcount", _int_range(0)),
    _F("sessions", _SESSIONS, compound=True, encode=_nested_canonical),
)
ClassReviewedRecord._fields = (
    F_id("class_id"),
    F_id("reviewer_id"),
    _F("decision", _enum(CLASS_DECISIONS)),
)
EnrollmentRecord._fields = (
    F_id("class_id"),
    _F("trainee_id", _resident_id),
    _F("category", _enum(CATEGORIES)),
    _F("hukou_region", _any_region),
)
AttendanceRecord._fields = (
    F_id("class_id"),
    F_id("session_id"),
    _F("trainee_id", _resident_id),
    F_ts("sign_in"),
    F_ts("sign_out"),
    _F("method", _enum(METHODS)),
    F_id("device_id"),
    _F("lat", _float_range(-90.0, 90.0)),
    _F("lon", _float_range(-180.0, 180.0)),
    _F("face_score", _float_range(0.0, 1.0), mode=OPT),
)
InspectionRecord._fields = (
    F_id("class_id"),
    F_id("session_id"),
    F_id("inspector_id"),
    _F("present_count", _int_range(0)),
    _F("note", _free_text, mode=OPT),
)
CompletionRecord._fields = (
    F_id("class_id"),
    _F("trainee_id", _resident_id),
    _F("passed", _strict_bool),
    _F("certificate_kind", _enum(CERTIFICATE_KINDS)),
    _F("certificate_no", _text, mode=OPT),
)
PersonStatusRecord._fields = (
    _F("trainee_id", _resident_id),
    _F("status", _enum(PERSON_STATUSES)),
    F_date("since"),
)
ClaimRecord._fields = (
    F_id("claim_id"),
    _F("region", _region),
    _F("claimant_id", _party_string),
    _F("claimant_kind", _enum(CLAIMANT_KINDS)),
    _F("subsidy_kind", _enum(SUBSIDY_KINDS)),
    F_id("class_id", mode=OPT),
    _F("trainee_ids", _list_of(_resident_id), compound=True, encode=_list_copy),
    _F("months", _int_range(1), mode=OPT),
    F_money("amount"),
    F_id("handled_by"),
)
ClaimReviewedRecord._fields = (
    F_id("claim_id"),
    F_id("reviewer_id"),
    _F("decision", _enum(CLAIM_DECISIONS)),
    F_money("approved_amount", _money_nonneg),
)
NoticeRecord._fields = (
    F_id("claim_id"),
    F_date("start"),
    F_date("end"),
    _F("objections", _int_range(0), mode=OPT, default=0),
)
PaymentRecord._fields = (
    F_id("payment_id"),
    F_id("claim_id"),
    _F("fund_source", _enum(FUND_SOURCES)),
    _F("region", _region),
    F_money("amount"),
    _F("payee_id", _payee),
    _F("payee_account", _account),
    F_id("approved_by"),
    _F("bank_ref", _account),
)
RecoveryRecord._fields = (
    F_id("recovery_id"),
    F_id("claim_id"),
    F_money("amount"),
    _F("reason", _text),
)
BankStatementRecord._fields = (
    _F("account", _account),
    F_money("amount", _money_signed_nonzero),
    _F("counterparty_account", _account),
    _F("bank_ref", _account),
    F_date("value_date"),
    _F("memo", _free_text, mode=OPT),
)


# --- cross-field rules (each problem is reported at the field it concerns) ---


def _pos(cls: type[Record], name: str) -> int:
    """Contract-order index of a field (after type, id, at)."""
    return 3 + [f.name for f in cls._fields].index(name)


def _post_attendance(v: dict, errs: list) -> None:
    si, so = v["sign_in"], v["sign_out"]
    if si is not _BAD and so is not _BAD and not so > si:
        errs.append(("malformed", _P_ATT_SO, "sign_out", "sign_out must be after sign_in"))
    if v["method"] == "face" and v["face_score"] is None:
        errs.append(("malformed", _P_ATT_FS, "face_score", "missing (required when method is face)"))


def _post_class_opened(v: dict, errs: list) -> None:
    s, e = v["start_date"], v["end_date"]
    if s is not _BAD and e is not _BAD and e < s:
        errs.append(("malformed", _P_CO_END, "end_date", f"end_date {e} is before start_date {s}"))


def _post_notice(v: dict, errs: list) -> None:
    s, e = v["start"], v["end"]
    if s is not _BAD and e is not _BAD and e < s:
        errs.append(("malformed", _P_NO_END, "end", f"end {e} is before start {s}"))


def _post_claim(v: dict, errs: list) -> None:
    kind = v["subsidy_kind"]
    if kind in CLASS_ID_REQUIRED_FOR and v["class_id"] is None:
        errs.append(("malformed", _P_CL_CLASS, "class_id", f"missing (required for subsidy_kind {kind})"))
    if kind == "work_for_training" and v["months"] is None:
        errs.append(("malformed", _P_CL_MONTHS, "months", "missing (required for subsidy_kind work_for_training)"))
    ids = v["trainee_ids"]
    if ids is not _BAD and not ids and kind is not _BAD and kind != "award":
        errs.append(("malformed", _P_CL_TIDS, "trainee_ids", f"must not be empty for subsidy_kind {kind}"))
    claimant, ck = v["claimant_id"], v["claimant_kind"]
    if claimant is not _BAD and ck is not _BAD:
        try:
            _resident_id(claimant) if ck == "individual" else _credit_code(claimant)
        except _Bad as b:
            errs.append((b.reason, _P_CL_CLAIMANT, "claimant_id", b.msg))


def _post_claim_reviewed(v: dict, errs: list) -> None:
    d, amt = v["decision"], v["approved_amount"]
    if d is _BAD or amt is _BAD:
        return
    if d == "approved" and amt <= 0:
        errs.append(("malformed", _P_CR_AMT, "approved_amount", "must be positive when decision is approved"))
    elif d != "approved" and amt != 0:
        errs.append(
            ("malformed", _P_CR_AMT, "approved_amount", f"must be \"0\" when decision is {d}, got {fen_to_yuan(amt)}")
        )


_P_ATT_SO = _pos(AttendanceRecord, "sign_out")
_P_ATT_FS = _pos(AttendanceRecord, "face_score")
_P_CO_END = _pos(ClassOpenedRecord, "end_date")
_P_NO_END = _pos(NoticeRecord, "end")
_P_CL_CLASS = _pos(ClaimRecord, "class_id")
_P_CL_MONTHS = _pos(ClaimRecord, "months")
_P_CL_TIDS = _pos(ClaimRecord, "trainee_ids")
_P_CL_CLAIMANT = _pos(ClaimRecord, "claimant_id")
_P_CR_AMT = _pos(ClaimReviewedRecord, "approved_amount")

AttendanceRecord._post = staticmethod(_post_attendance)
ClassOpenedRecord._post = staticmethod(_post_class_opened)
NoticeRecord._post = staticmethod(_post_notice)
ClaimRecord._post = staticmethod(_post_claim)
ClaimReviewedRecord._post = staticmethod(_post_claim_reviewed)

RECORD_CLASSES: dict[str, type[Record]] = {
    "appropriation": AppropriationRecord,
    "institution": InstitutionRecord,
    "project": ProjectRecord,
    "class_opened": ClassOpenedRecord,
    "class_reviewed": ClassReviewedRecord,
    "enrollment": EnrollmentRecord,
    "attendance": AttendanceRecord,
    "inspection": InspectionRecord,
    "completion": CompletionRecord,
    "person_status": PersonStatusRecord,
    "claim": ClaimRecord,
    "claim_reviewed": ClaimReviewedRecord,
    "notice": NoticeRecord,
    "payment": PaymentRecord,
    "recovery": RecoveryRecord,
    "bank_statement": BankStatementRecord,
}


def _check_tables() -> None:
    """The field tables and the pydantic models must name the same fields in the same order."""
    if tuple(RECORD_CLASSES) != RECORD_TYPES:
        raise RuntimeError("RECORD_CLASSES and RECORD_TYPES disagree")
    for t, cls in RECORD_CLASSES.items():
        names = [f.name for f in cls._fields]
        model = [n for n in cls.model_fields if n not in ("type", "id", "at")]
        if names != model or cls.model_fields["type"].default != t:
            raise RuntimeError(f"{t}: field table {names} and model {model} disagree")
        cls._has_region = "region" in names
        cls._field_plan = _plan(cls._fields)
    for cls in (*RECORD_CLASSES.values(), Venue, Session):
        cls._encoders = tuple((f.name, f.encode) for f in cls._fields)
    for cls in (Venue, Session):
        if [f.name for f in cls._fields] != list(cls.model_fields):
            raise RuntimeError(f"{cls.__name__}: field table and model disagree")


_check_tables()

_TS_CHECK = _timestamp
_ID_CHECK = _opaque


# --- entry points ----------------------------------------------------------------


def parse_line(text: str | bytes) -> Record:
    """One JSON Lines record to a Record, or RecordError."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise RecordError("malformed", f"not JSON: {e}") from None
    return parse_record(obj)


def parse_record(obj: object) -> Record:
    """Validate one decoded JSON value against the contract."""
    if type(obj) is not dict:
        if isinstance(obj, dict):
            obj = dict(obj)
        else:
            raise RecordError("malformed", f"record is not a JSON object: got {_jtype(obj)}")
    t = obj.get("type", _MISSING)
    rid = obj.get("id")
    rid = rid if isinstance(rid, str) else None
    cls = RECORD_CLASSES.get(t) if isinstance(t, str) else None
    if cls is None:
        if t is _MISSING:
            msg = "missing"
        elif isinstance(t, str):
            msg = f"unknown record type {_show(t)}"
        else:
            msg = f"expected a record type string, got {_jtype(t)} {_show(t)}"
        raise RecordError(
            "malformed",
            f"field type: {msg}",
            field="type",
            type=t if isinstance(t, str) else None,
            id=rid,
        )

    errs: list[tuple[str, int, str, str]] = []
    values: dict[str, Any] = {"type": t}
    # id and at (index 1, 2), then the type's own fields (index 3...)
    for idx, name, check in ((1, "id", _ID_CHECK), (2, "at", _TS_CHECK)):
        v = obj.get(name, _MISSING)
        if v is _MISSING:
            errs.append(("malformed", idx, name, "missing"))
            continue
        try:
            values[name] = check(v)
        except _Bad as b:
            errs.append((b.reason, idx, name, b.msg))
    values.update(_run(cls._field_plan, obj, "", errs, None, 3))
    post = cls._post
    if post is not None:
        post(values, errs)
    if errs:
        reason, _, path, msg = min(errs, key=_err_key)
        raise RecordError(reason, f"field {path}: {msg}", field=path, type=t, id=rid)
    return _build(cls, values)


def _err_key(e: tuple[str, int, str, str]) -> tuple[int, int]:
    return (_RANK[e[0]], e[1])
