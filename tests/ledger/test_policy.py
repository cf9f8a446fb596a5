"""Policy packs: the five region files load, every rule and alert kind is cited,
citations name the region's own document (or the contract default), and a
broken pack is refused with PolicyError."""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` without an installed package
    sys.path.insert(0, str(ROOT))

from ledger import policy  # noqa: E402
from ledger.policy import (  # noqa: E402
    ALERT_KINDS,
    DEFAULT_CITE,
    FUND_SOURCES,
    PACK_CODES,
    RULE_TYPES,
    SUBSIDY_KINDS,
    PolicyError,
    all_packs,
    load_pack,
    pack_code_for,
    pack_for,
)

PACK_DIR = ROOT / "ledger" / "packs"
DOCS = ROOT / "docs" / "policy-packs.md"

# The 文号 (Heilongjiang's plan has none: it is cited by title and year).
DOCNO = {
    "420100": "武政办〔2020〕10号",
    "450000": "桂政发〔2019〕16号",
    "370306": "周政办发〔2020〕2号",
    "320500": "苏府办〔2017〕372号",
    "230000": "黑龙江省农民工技能素质提升工程方案(2024)",
}
SEED_FILE = {
    "420100": "000_e031f6ab8d613513.txt",
    "450000": "001_e1cdfcc74d85af08.txt",
    "370306": "002_1538a88f80e46062.txt",
    "320500": "003_d71275581ef2a667.txt",
    "230000": "004_2bf9ff5c4683a242.txt",
}

# The contract's "Policy defaults"; no seed document changes a value.
EXPECTED_VALUES = {
    "yearly_training_subsidy_limit": 3,
    "same_occupation_level_once": True,
    "work_for_training_months_max": 6,
    "notice_days_min": 7,
    "notice_blocks_on_objections": True,
    "split_payment_threshold_yuan": Decimal("50000.00"),
    "split_payment_window_days": 7,
    "verified_hours_share_min": Decimal("0.5"),
    "hours_tolerance": Decimal("0.9"),
    "session_length_ratio_min": Decimal("0.9"),
    "inspection_ratio_min": Decimal("0.8"),
    "face_score_min": Decimal("0.7"),
    "venue_radius_m": 1000,
    "device_burst_trainees": 3,
    "device_burst_seconds": 2,
    "proxy_min_count": 3,
    "proxy_min_share": Decimal("0.05"),
    "pensioners_excluded": True,
    "appraisal_first_pass_real_certificate": True,
}
EXPECTED_FUNDS = {
    "training": {"ui_surplus", "employment_subsidy", "education_surcharge"},
    "appraisal": {"ui_surplus", "employment_subsidy"},
    "living_allowance": {"employment_subsidy"},
    "work_for_training": {"ui_surplus", "employment_subsidy"},
    "skill_upgrade": {"ui_fund", "ui_surplus"},
    "new_technician": {"ui_surplus", "employment_subsidy"},
    "competition": {"ui_surplus", "employment_subsidy"},
    "entrepreneurship": {"ui_surplus", "employment_subsidy"},
    "award": {"employment_subsidy", "local_talent", "industry_development", "education_surcharge"},
}


def cite_parts(cite: str) -> list[str]:
    return [p.strip() for p in cite.split(";")]


def all_citations(pack) -> list[str]:
    """Every single citation in a pack: rule cites split on ';', alert cites."""
    out = []
    for rule in pack.rules.values():
        out.extend(cite_parts(rule.cite))
    for kind in ALERT_KINDS:
        out.extend(pack.citations(kind))
    return out


# ------------------------------------------------------------------ loading


def test_all_five_packs_load():
    packs = all_packs()
    assert tuple(packs) == PACK_CODES
    for code, pack in packs.items():
        assert pack.code == code
        assert pack.name and pack.name != code
        assert pack.documents and pack.documents[0].startswith(DOCNO[code])


@pytest.mark.parametrize("code", PACK_CODES)
def test_every_rule_present_typed_and_cited(code):
    pack = all_packs()[code]
    assert set(pack.rules) == set(RULE_TYPES)
    for name, want in RULE_TYPES.items():
        rule = pack.rules[name]
        assert rule.cite.strip(), f"{code} {name} cites nothing"
        assert pack.cite(name) == rule.cite
        if want is bool:
            assert isinstance(rule.value, bool)
        elif want is int:
            assert isinstance(rule.value, int) and not isinstance(rule.value, bool)
        else:
            assert isinstance(rule.value, want), (code, name, rule.value)


@pytest.mark.parametrize("code", PACK_CODES)
def test_every_alert_kind_cited(code):
    pack = all_packs()[code]
    assert set(pack.alert_citations) == set(ALERT_KINDS)
    for kind in ALERT_KINDS:
        cites = pack.citations(kind)
        assert cites and all(c.strip() for c in cites), f"{code} {kind}"


@pytest.mark.parametrize("code", PACK_CODES)
def test_values_are_the_contract_defaults(code):
    pack = all_packs()[code]
    for name, want in EXPECTED_VALUES.items():
        assert pack.value(name) == want, (code, name)
    perms = pack.value("fund_permissions")
    assert {k: set(v) for k, v in perms.items()} == EXPECTED_FUNDS


def test_pack_files_match_their_codes():
    for code in PACK_CODES:
        raw = json.loads((PACK_DIR / f"{code}.json").read_text(encoding="utf-8"))
        assert raw["code"] == code
        # Decimal rules are strings in the file, never JSON numbers
        for name, want in RULE_TYPES.items():
            if want is Decimal:
                assert isinstance(raw["rules"][name]["value"], str), (code, name)


# ------------------------------------------------------------------ regions


@pytest.mark.parametrize(
    ("region", "code"),
    [
        ("420106", "420100"),
        ("420100", "420100"),
        ("450103", "450000"),
        ("450000", "450000"),
        ("370306", "370306"),
        ("370305", None),  # another Zibo district: Zhoucun's pack is Zhoucun only
        ("370300", None),
        ("320505", "320500"),
        ("320500", "320500"),
        ("230102", "230000"),
        ("230000", "230000"),
        ("110000", None),
        ("420206", None),  # Huangshi, not Wuhan
        ("abc", None),
        ("", None),
        ("42010", None),
        ("4201066", None),
        ("４２０１０６", None),  # full-width digits
        ("4201٠٦", None),  # Arabic-Indic digits pass str.isdigit()
        (420106, None),
        (None, None),
    ],
)
def test_pack_code_for(region, code):
    assert pack_code_for(region) == code


def test_pack_for():
    assert pack_for("420106") is all_packs()["420100"]
    assert pack_for("230102").code == "230000"
    assert pack_for("110000") is None


# ------------------------------------------------------------------ 专款专用


@pytest.mark.parametrize("code", PACK_CODES)
def test_may_pay_matrix(code):
    pack = all_packs()[code]
    assert pack.may_pay("ui_surplus", "training")
    assert pack.may_pay("employment_subsidy", "training")
    for source in FUND_SOURCES:
        assert pack.may_pay(source, "living_allowance") == (source == "employment_subsidy"), source
    assert not pack.may_pay("ui_surplus", "award")
    assert pack.may_pay("employment_subsidy", "award")
    assert pack.may_pay("ui_fund", "skill_upgrade")
    assert not pack.may_pay("ui_fund", "training")
    assert pack.may_pay("education_surcharge", "training")
    assert pack.may_pay("education_surcharge", "award")
    assert not pack.may_pay("education_surcharge", "living_allowance")
    assert not pack.may_pay("ui_surplus", "no_such_kind")
    assert not pack.may_pay("no_such_source", "training")
    for kind in SUBSIDY_KINDS:
        for source in FUND_SOURCES:
            assert pack.may_pay(source, kind) == (source in EXPECTED_FUNDS[kind]), (kind, source)


def test_fund_matrix_identical_in_all_packs():
    mats = [
        {k: set(v) for k, v in p.value("fund_permissions").items()} for p in all_packs().values()
    ]
    assert all(m == mats[0] for m in mats)


# ------------------------------------------------------------------ citations


@pytest.mark.parametrize("code", PACK_CODES)
def test_citations_name_own_document_or_default(code):
    pack = all_packs()[code]
    own = DOCNO[code] + " "
    known = tuple(d + " " for d in DOCNO.values())
    for part in all_citations(pack):
        assert part == DEFAULT_CITE or part.startswith(own), (code, part)
        assert part == DEFAULT_CITE or part.startswith(known)


def test_default_cite_is_the_contract_string():
    assert DEFAULT_CITE == "skillfund record contract v1, Policy defaults"


@pytest.mark.parametrize(
    ("code", "where", "name", "cite"),
    [
        ("420100", "rule", "work_for_training_months_max", "武政办〔2020〕10号 二(一)4"),
        ("420100", "rule", "yearly_training_subsidy_limit", "武政办〔2020〕10号 二(二)3"),
        ("420100", "rule", "same_occupation_level_once", "武政办〔2020〕10号 二(二)3"),
        ("420100", "rule", "appraisal_first_pass_real_certificate", "武政办〔2020〕10号 二(二)3"),
        ("420100", "rule", "fund_permissions", "武政办〔2020〕10号 二(二)4"),
        ("420100", "rule", "fund_permissions", "武政办〔2020〕10号 二(一)4"),
        ("420100", "alert", "repeat_subsidy", "武政办〔2020〕10号 二(二)3"),
        ("420100", "alert", "work_for_training_overrun", "武政办〔2020〕10号 二(一)4"),
        ("420100", "alert", "inflated_headcount", "武政办〔2020〕10号 二(二)4"),
        ("450000", "alert", "unlisted_institution", "桂政发〔2019〕16号 (八)"),
        ("450000", "alert", "inflated_headcount", "桂政发〔2019〕16号 (十五)"),
        ("370306", "rule", "yearly_training_subsidy_limit", "周政办发〔2020〕2号 二(四)"),
        ("370306", "rule", "same_occupation_level_once", "周政办发〔2020〕2号 二(四)"),
        ("370306", "rule", "pensioners_excluded", "周政办发〔2020〕2号 二(四)"),
        ("370306", "alert", "repeat_subsidy", "周政办发〔2020〕2号 二(四)"),
        ("370306", "alert", "ineligible_trainee", "周政办发〔2020〕2号 二(四)"),
        ("370306", "alert", "inflated_headcount", "周政办发〔2020〕2号 三(二)"),
        ("320500", "rule", "inspection_ratio_min", "苏府办〔2017〕372号 七(四)"),
        ("320500", "rule", "fund_permissions", "苏府办〔2017〕372号 七(二)"),
        ("320500", "alert", "inflated_headcount", "苏府办〔2017〕372号 七(四)"),
        ("230000", "alert", "inflated_headcount", "黑龙江省农民工技能素质提升工程方案(2024) 五(十二)"),
        ("230000", "alert", "shortened_hours", "黑龙江省农民工技能素质提升工程方案(2024) 五(十二)"),
        ("230000", "alert", "segregation_of_duties", "黑龙江省农民工技能素质提升工程方案(2024) 五(十二)"),
        ("230000", "alert", "unlisted_institution", "黑龙江省农民工技能素质提升工程方案(2024) 五(十二)"),
        ("230000", "rule", "notice_days_min", "黑龙江省农民工技能素质提升工程方案(2024) 五(十一)"),
    ],
)
def test_region_clause_is_cited(code, where, name, cite):
    pack = all_packs()[code]
    got = cite_parts(pack.cite(name)) if where == "rule" else pack.citations(name)
    assert cite in got, (code, name, got)


def test_silent_rules_cite_only_the_default():
    # documents that say nothing on the yearly limit fall back to the contract
    for code in ("450000", "320500", "230000"):
        assert all_packs()[code].cite("yearly_training_subsidy_limit") == DEFAULT_CITE
    # 以工代训 is Wuhan's text; elsewhere the contract default carries it
    for code in ("450000", "370306", "320500", "230000"):
        assert all_packs()[code].cite("work_for_training_months_max") == DEFAULT_CITE
    # numbers never come from a document: a threshold that cites a clause cites the default too
    for pack in all_packs().values():
        for name in ("face_score_min", "inspection_ratio_min", "split_payment_threshold_yuan"):
            assert DEFAULT_CITE in cite_parts(pack.cite(name)), (pack.code, name)


# ---------------------------------------------- cited clauses exist in the seeds

_SEEDS = Path(os.environ.get("SKILLFUND_SEEDS_DIR", ROOT.parent / "shared" / "seeds"))
_NUMS = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二",
         "十三", "十四", "十五", "十六", "十七", "十八", "十九", "二十"]
_CLAUSE = re.compile(
    r"^(?P<sec>[一二三四五六七八九十]+)?(?:\((?P<sub>[一二三四五六七八九十]+)\))?(?P<item>\d+)?$"
)


def _norm(text: str) -> str:
    for a, b in (("（", "("), ("）", ")"), ("．", ".")):
        text = text.replace(a, b)
    return re.sub(r"\s+", "", text)


def _clause_found(text: str, clause: str) -> bool:
    """'二(二)3' = item 3. of sub-clause (二) of section 二、, in that order and
    within the enclosing part; '(十五)' = sub-clause (十五)."""
    m = _CLAUSE.match(clause)
    if not m or not any(m.groups()):
        return False
    start, end = 0, len(text)
    if m["sec"]:
        start = text.find(m["sec"] + "、")
        if start < 0:
            return False
        nxt = text.find(_NUMS[_NUMS.index(m["sec"]) + 1] + "、", start)
        end = nxt if nxt >= 0 else end
    if m["sub"]:
        i = text.find("(" + m["sub"] + ")", start, end)
        if i < 0:
            return False
        nxt = text.find("(" + _NUMS[_NUMS.index(m["sub"]) + 1] + ")", i, end)
        start, end = i, (nxt if nxt >= 0 else end)
    if m["item"]:
        if not re.compile(r"(?<!\d)" + m["item"] + r"\.").search(text, start, end):
            return False
    return True


def test_clause_locator_rejects_made_up_clauses():
    text = _norm("一、总则\n（一）甲。1．乙\n二、任务\n(一)丙 2.丁 (二)戊")
    assert _clause_found(text, "一(一)1")
    assert _clause_found(text, "二(二)")
    assert not _clause_found(text, "一(二)")
    assert not _clause_found(text, "一(一)2")
    assert not _clause_found(text, "三(一)")
    assert not _clause_found(text, "7.1")


@pytest.mark.parametrize("code", PACK_CODES)
def test_cited_clauses_exist_in_the_seed_text(code):
    seed = _SEEDS / SEED_FILE[code]
    if not seed.is_file():
        pytest.skip(f"seed documents not available at {_SEEDS}")
    text = _norm(seed.read_text(encoding="utf-8"))
    own = DOCNO[code] + " "
    for part in all_citations(all_packs()[code]):
        if part == DEFAULT_CITE:
            continue
        clause = part[len(own) :]
        assert _clause_found(text, clause), f"{code}: {part} not found in {seed.name}"


# ------------------------------------------------------------------ docs


def test_docs_cover_every_region_rule_and_alert_kind():
    text = DOCS.read_text(encoding="utf-8")
    for code in PACK_CODES:
        assert code in text and DOCNO[code] in text
    for name in RULE_TYPES:
        assert f"`{name}`" in text, name
    for kind in ALERT_KINDS:
        assert f"`{kind}`" in text, kind
    assert DEFAULT_CITE in text


# ------------------------------------------------------------------ broken packs


def _good() -> dict:
    return json.loads((PACK_DIR / "420100.json").read_text(encoding="utf-8"))


def _del_rule(d):
    del d["rules"]["face_score_min"]


def _del_cite(d):
    del d["rules"]["notice_days_min"]["cite"]


def _blank_cite(d):
    d["rules"]["notice_days_min"]["cite"] = "  "


def _del_value(d):
    del d["rules"]["venue_radius_m"]["value"]


def _int_as_string(d):
    d["rules"]["yearly_training_subsidy_limit"]["value"] = "3"


def _int_as_bool(d):
    d["rules"]["notice_days_min"]["value"] = True


def _bool_as_int(d):
    d["rules"]["pensioners_excluded"]["value"] = 1


def _decimal_as_number(d):
    d["rules"]["face_score_min"]["value"] = 0.7


def _decimal_not_a_number(d):
    d["rules"]["hours_tolerance"]["value"] = "ninety percent"


def _decimal_nan(d):
    d["rules"]["hours_tolerance"]["value"] = "NaN"


def _unknown_fund_source(d):
    d["rules"]["fund_permissions"]["value"]["training"].append("lottery_fund")


def _unknown_subsidy_kind(d):
    d["rules"]["fund_permissions"]["value"]["travel"] = ["ui_surplus"]


def _sources_as_string(d):
    d["rules"]["fund_permissions"]["value"]["living_allowance"] = "employment_subsidy"


def _subsidy_kind_left_out(d):
    del d["rules"]["fund_permissions"]["value"]["award"]


def _permissions_not_object(d):
    d["rules"]["fund_permissions"]["value"] = [["training", "ui_surplus"]]


def _unknown_rule(d):
    d["rules"]["max_trainees"] = {"value": 40, "cite": DEFAULT_CITE}


def _alert_kind_missing(d):
    del d["alert_citations"]["split_payment"]


def _alert_cites_empty(d):
    d["alert_citations"]["split_payment"] = []


def _alert_cites_string(d):
    d["alert_citations"]["split_payment"] = "武政办〔2020〕10号 二(二)4"


def _alert_cite_blank(d):
    d["alert_citations"]["split_payment"] = [""]


def _unknown_alert_kind(d):
    d["alert_citations"]["bribery"] = ["武政办〔2020〕10号 二(二)4"]


def _bad_code(d):
    d["code"] = "420106"


def _rules_not_object(d):
    d["rules"] = []


def _documents_not_list(d):
    d["documents"] = "武政办〔2020〕10号"


BREAKERS = [
    _del_rule,
    _del_cite,
    _blank_cite,
    _del_value,
    _int_as_string,
    _int_as_bool,
    _bool_as_int,
    _decimal_as_number,
    _decimal_not_a_number,
    _decimal_nan,
    _unknown_fund_source,
    _unknown_subsidy_kind,
    _sources_as_string,
    _subsidy_kind_left_out,
    _permissions_not_object,
    _unknown_rule,
    _alert_kind_missing,
    _alert_cites_empty,
    _alert_cites_string,
    _alert_cite_blank,
    _unknown_alert_kind,
    _bad_code,
    _rules_not_object,
    _documents_not_list,
]


def test_good_copy_loads(tmp_path):
    path = tmp_path / "420100.json"
    path.write_text(json.dumps(_good(), ensure_ascii=False), encoding="utf-8")
    pack = load_pack(path)
    assert pack.value("work_for_training_months_max") == 6


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__.strip("_"))
def test_broken_pack_raises_policy_error(tmp_path, breaker):
    data = copy.deepcopy(_good())
    breaker(data)
    path = tmp_path / "420100.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(PolicyError):
        load_pack(path)


@pytest.mark.parametrize("raw", ["{not json", "[]", '"420100"'])
def test_non_object_file_raises_policy_error(tmp_path, raw):
    path = tmp_path / "broken.json"
    path.write_text(raw, encoding="utf-8")
    with pytest.raises(PolicyError):
        load_pack(path)


def test_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)
    assert policy.PolicyError is PolicyError
