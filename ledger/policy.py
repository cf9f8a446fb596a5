"""Policy packs: one data file per seed region, every rule with its citation.

A pack is data (``ledger/packs/<code>.json``), not code, so that a region can
change a threshold without a code change. Each rule in a file is
``{"value": ..., "cite": "<文号> <clause>"}``; a rule a document is silent on
is cited as the record contract's default (``DEFAULT_CITE``). Loading checks
that every rule the ledger and detectors use is present, typed and cited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

PACK_CODES = ("420100", "450000", "370306", "320500", "230000")
DEFAULT_CITE = "skillfund record contract v1, Policy defaults"
FUND_SOURCES = (
    "ui_surplus",
    "employment_subsidy",
    "ui_fund",
    "local_talent",
    "industry_development",
    "education_surcharge",
)
SUBSIDY_KINDS = (
    "training",
    "appraisal",
    "living_allowance",
    "work_for_training",
    "skill_upgrade",
    "new_technician",
    "competition",
    "entrepreneurship",
    "award",
)

# name -> python type of "value"; Decimal rules are written as strings.
RULE_TYPES: dict[str, type] = {
    "yearly_training_subsidy_limit": int,
    "same_occupation_level_once": bool,
    "work_for_training_months_max": int,
    "notice_days_min": int,
    "notice_blocks_on_objections": bool,
    "split_payment_threshold_yuan": Decimal,
    "split_payment_window_days": int,
    "fund_permissions": dict,
    "verified_hours_share_min": Decimal,
    "hours_tolerance": Decimal,
    "session_length_ratio_min": Decimal,
    "inspection_ratio_min": Decimal,
    "face_score_min": Decimal,
    "venue_radius_m": int,
    "device_burst_trainees": int,
    "device_burst_seconds": int,
    "proxy_min_count": int,
    "proxy_min_share": Decimal,
    "pensioners_excluded": bool,
    "appraisal_first_pass_real_certificate": bool,
}

ALERT_KINDS = (
    "inflated_headcount",
    "shortened_hours",
    "proxy_sign_in",
    "overlapping_enrollment",
    "repeat_subsidy",
    "ineligible_trainee",
    "excess_claim",
    "duplicate_payment",
    "split_payment",
    "segregation_of_duties",
    "unlisted_institution",
    "notice_skipped",
    "work_for_training_overrun",
    "teacher_double_booked",
    "venue_over_capacity",
    "unreconciled_outflow",
    "anomalous_class",
)


class PolicyError(ValueError):
    """A pack file that is missing a rule, mistypes it, or cites nothing."""


@dataclass(frozen=True)
class Rule:
    name: str
    value: Any
    cite: str


@dataclass(frozen=True)
class PolicyPack:
    code: str
    name: str
    documents: tuple[str, ...]
    rules: dict[str, Rule]
    alert_citations: dict[str, tuple[str, ...]]

    def value(self, name: str) -> Any:
        return self.rules[name].value

    def cite(self, name: str) -> str:
        return self.rules[name].cite

    def may_pay(self, fund_source: str, subsidy_kind: str) -> bool:
        """专款专用: whether this fund source may pay this subsidy kind."""
        allowed = self.rules["fund_permissions"].value.get(subsidy_kind, ())
        return fund_source in allowed

    def citations(self, kind: str) -> list[str]:
        """The policy clauses an alert of ``kind`` cites in this region."""
        return list(self.alert_citations.get(kind, ()))


def pack_code_for(region: str) -> str | None:
    """The pack a 6-digit region code falls under, or None (unknown_region).

    4201xx → 420100, 45xxxx → 450000, 370306 → 370306, 3205xx → 320500,
    23xxxx → 230000, as the record contract says.
    """
    if (
        not isinstance(region, str)
        or len(region) != 6
        or not region.isascii()  # str.isdigit() also accepts "４" and "٤"
        or not region.isdigit()
    ):
        return None
    if region[:4] == "4201":
        return "420100"
    if region[:2] == "45":
        return "450000"
    if region == "370306":
        return "370306"
    if region[:4] == "3205":
        return "320500"
    if region[:2] == "23":
        return "230000"
    return None


_PACK_DIR = Path(__file__).with_name("packs")


def _coerce(name: str, raw: Any, where: str) -> Any:
    want = RULE_TYPES[name]
    if want is Decimal:
        if not isinstance(raw, str):
            raise PolicyError(f"{where}: rule {name} must be a decimal string, got {raw!r}")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise PolicyError(f"{where}: rule {name} is not a decimal: {raw!r}") from None
        if not value.is_finite():
            raise PolicyError(f"{where}: rule {name} must be a finite decimal, got {raw!r}")
        return value
    if want is int and (not isinstance(raw, int) or isinstance(raw, bool)):
        raise PolicyError(f"{where}: rule {name} must be an integer, got {raw!r}")
    if want is bool and not isinstance(raw, bool):
        raise PolicyError(f"{where}: rule {name} must be true or false, got {raw!r}")
    if want is dict:
        if not isinstance(raw, dict):
            raise PolicyError(f"{where}: rule {name} must be an object")
        for kind, sources in raw.items():
            if kind not in SUBSIDY_KINDS:
                raise PolicyError(f"{where}: {name} names unknown subsidy kind {kind!r}")
            # a bare string would otherwise be iterated character by character
            if not isinstance(sources, list):
                raise PolicyError(f"{where}: {name}.{kind} must be a list of fund sources")
            for s in sources:
                if s not in FUND_SOURCES:
                    raise PolicyError(f"{where}: {name} names unknown fund source {s!r}")
        # 专款专用 is a hard rule: a kind left out would silently refuse every
        # payment of that kind, so each kind must be listed (possibly empty).
        missing = [k for k in SUBSIDY_KINDS if k not in raw]
        if missing:
            raise PolicyError(f"{where}: {name} does not list subsidy kinds {missing}")
        return {k: tuple(v) for k, v in raw.items()}
    return raw


def load_pack(path: Path) -> PolicyPack:
    where = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{where}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: a pack must be a JSON object")
    rules: dict[str, Rule] = {}
    raw_rules = data.get("rules", {})
    if not isinstance(raw_rules, dict):
        raise PolicyError(f"{where}: rules must be an object")
    for name in RULE_TYPES:
        entry = raw_rules.get(name)
        if not isinstance(entry, dict) or "value" not in entry:
            raise PolicyError(f"{where}: rule {name} is missing")
        cite = entry.get("cite")
        if not isinstance(cite, str) or not cite.strip():
            raise PolicyError(f"{where}: rule {name} cites nothing")
        rules[name] = Rule(name, _coerce(name, entry["value"], where), cite)
    unknown = set(raw_rules) - set(RULE_TYPES)
    if unknown:
        raise PolicyError(f"{where}: unknown rules {sorted(unknown)}")
    raw_alerts = data.get("alert_citations", {})
    if not isinstance(raw_alerts, dict):
        raise PolicyError(f"{where}: alert_citations must be an object")
    alert_citations = {}
    for kind, cites in raw_alerts.items():
        if kind not in ALERT_KINDS:
            raise PolicyError(f"{where}: alert_citations names unknown kind {kind!r}")
        # a bare string would otherwise pass as a tuple of single characters
        if not isinstance(cites, list):
            raise PolicyError(f"{where}: alert kind {kind} must cite a list of clauses")
        if not cites or not all(isinstance(c, str) and c.strip() for c in cites):
            raise PolicyError(f"{where}: alert kind {kind} cites nothing")
        alert_citations[kind] = tuple(cites)
    missing = set(ALERT_KINDS) - set(alert_citations)
    if missing:
        raise PolicyError(f"{where}: no citations for alert kinds {sorted(missing)}")
    code = data.get("code")
    if code not in PACK_CODES:
        raise PolicyError(f"{where}: code {code!r} is not one of {PACK_CODES}")
    documents = data.get("documents", [])
    if not isinstance(documents, list) or not all(
        isinstance(d, str) and d.strip() for d in documents
    ):
        raise PolicyError(f"{where}: documents must be a list of strings")
    return PolicyPack(
        code=code,
        name=str(data.get("name", code)),
        documents=tuple(documents),
        rules=rules,
        alert_citations=alert_citations,
    )


@cache
def all_packs() -> dict[str, PolicyPack]:
    packs = {}
    for code in PACK_CODES:
        pack = load_pack(_PACK_DIR / f"{code}.json")
        if pack.code != code:
            raise PolicyError(f"{code}.json declares code {pack.code}")
        packs[code] = pack
    return packs


def pack_for(region: str) -> PolicyPack | None:
    code = pack_code_for(region)
    return None if code is None else all_packs()[code]
