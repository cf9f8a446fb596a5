"""Input records (ledger/records.py) against the record contract v1.

The contract's own example parses and round-trips; every way a record can be
refused gives the contract's reason and names the field at fault; several
problems in one record resolve by the stated precedence; canonical content
(and so the digest) ignores spelling differences that are not content.
"""

from __future__ import annotations

import copy
import pickle
import re
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pydantic
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` without an installed package
    sys.path.insert(0, str(ROOT))

from ledger import records  # noqa: E402
from ledger.ids import (  # noqa: E402
    USCC_ALPHABET,
    make_credit_code,
    make_resident_id,
    resident_check_char,
    resident_id_problem,
)
from ledger.money import fen_to_yuan, parse_fen  # noqa: E402
from ledger.records import (  # noqa: E402
    RECORD_TYPES,
    AttendanceRecord,
    ClaimRecord,
    Record,
    RecordError,
    parse_line,
    parse_record,
)

EXAMPLES_PATH = Path("/work/shared/spec/examples.jsonl")
if not EXAMPLES_PATH.exists():  # the spec also lives beside the repo in other checkouts
    EXAMPLES_PATH = ROOT.parent / "shared" / "spec" / "examples.jsonl"

EXAMPLE_LINES = [ln for ln in EXAMPLES_PATH.read_text(encoding="utf-8").splitlines() if ln.strip()]
EXAMPLES = {orjson.loads(ln)["id"]: orjson.loads(ln) for ln in EXAMPLE_LINES}

DELETE = object()  # in mut(): remove the field

TRAINEE = "320505199706010302"  # valid, from the example
TRAINEE_2 = "320505200109138880"
INSTITUTION = "91320505DC4MTWLHWT"  # valid credit code, from the example


def mut(example_id: str, **changes) -> dict:
    """A deep copy of an example record with fields changed (DELETE removes)."""
    obj = copy.deepcopy(EXAMPLES[example_id])
    for key, value in changes.items():
        if value is DELETE:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


def refused(obj) -> RecordError:
    with pytest.raises(RecordError) as info:
        if isinstance(obj, str | bytes):
            parse_line(obj)
        else:
            parse_record(obj)
    return info.value


def bad_check_char(rid: str) -> str:
    """The same resident id with a wrong check character."""
    wrong = "0" if rid[17] != "0" else "1"
    return rid[:17] + wrong


def bad_credit_code(code: str) -> str:
    wrong = "0" if code[17] != "0" else "1"
    return code[:17] + wrong


# --------------------------------------------------------------------------- API


def test_record_types_are_the_contract_types_in_contract_order():
    assert RECORD_TYPES == (
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
    assert set(records.RECORD_CLASSES) == set(RECORD_TYPES)
    for t, cls in records.RECORD_CLASSES.items():
        assert issubclass(cls, Record)
        assert cls.model_fields["type"].default == t


def test_record_error_shape():
    e = RecordError("invalid_id", "field x: bad", field="x", type="claim", id="c-1")
    assert (e.reason, e.field, e.detail, e.type, e.id) == ("invalid_id", "x", "field x: bad", "claim", "c-1")
    assert str(e) == "field x: bad"
    assert isinstance(e, Exception)
    plain = RecordError("malformed", "not JSON")
    assert (plain.field, plain.type, plain.id) == (None, None, None)
    back = pickle.loads(pickle.dumps(e))
    assert (back.reason, back.field, back.detail, back.type, back.id) == (e.reason, e.field, e.detail, e.type, e.id)


def test_parse_line_accepts_str_and_bytes():
    line = EXAMPLE_LINES[7]
    a = parse_line(line)
    b = parse_line(line.encode("utf-8"))
    assert isinstance(a, AttendanceRecord)
    assert a == b
    assert a.digest() == b.digest()


def test_records_are_immutable():
    rec = parse_record(EXAMPLES["claim-rec-0001"])
    with pytest.raises(pydantic.ValidationError):  # frozen instance
        rec.amount = 1  # type: ignore[misc]


def test_models_built_directly_are_strict_and_canonical():
    """Code that builds a record from Python values gets the same model (type
    filled in) and no lax coercion."""
    parsed = parse_record(EXAMPLES["recov-0001"])
    built = records.RecoveryRecord(
        id="recov-0001",
        at=parsed.at,
        recovery_id="rc-0001",
        claim_id="claim-0001",
        amount=30000,
        reason=parsed.reason,
    )
    assert built.type == "recovery"
    assert built == parsed and built.digest() == parsed.digest()
    with pytest.raises(pydantic.ValidationError):
        records.RecoveryRecord(
            id="recov-0001", at=parsed.at, recovery_id="rc-0001", claim_id="claim-0001", amount="300", reason="x"
        )
    with pytest.raises(pydantic.ValidationError):
        records.RecoveryRecord(
            id="recov-0001",
            at=datetime(2024, 3, 20, 10),  # naive
            recovery_id="rc-0001",
            claim_id="claim-0001",
            amount=30000,
            reason="x",
        )


# ------------------------------------------------------------------- the example


@pytest.mark.parametrize("line", EXAMPLE_LINES, ids=[orjson.loads(ln)["id"] for ln in EXAMPLE_LINES])
def test_every_example_parses_and_canonical_round_trips(line):
    rec = parse_line(line)
    raw = orjson.loads(line)
    assert rec.type == raw["type"] and rec.id == raw["id"]
    assert type(rec) is records.RECORD_CLASSES[raw["type"]]
    assert rec.at.tzinfo is not None and rec.at.utcoffset() == timedelta(hours=8)
    canon = rec.canonical()
    assert list(canon)[:3] == ["type", "id", "at"]
    # JSON-native: survives a JSON round trip unchanged
    assert orjson.loads(orjson.dumps(canon)) == canon
    again = parse_record(canon)
    assert again.digest() == rec.digest()
    assert again.canonical() == canon
    assert re.fullmatch(r"[0-9a-f]{32}", rec.digest())


def test_example_canonical_forms_match_the_source_where_already_canonical():
    # The example is written canonically (two-decimal money, +08:00): canonical()
    # reproduces every contract field of it, plus the defaults.
    for line in EXAMPLE_LINES:
        raw = orjson.loads(line)
        canon = parse_line(line).canonical()
        for key, value in raw.items():
            assert canon[key] == value, (raw["id"], key)


def test_example_digests_are_distinct():
    digests = [parse_line(ln).digest() for ln in EXAMPLE_LINES]
    assert len(set(digests)) == len(digests)


def test_money_is_int_fen_on_the_model_and_yuan_in_canonical():
    claim = parse_record(EXAMPLES["claim-rec-0001"])
    assert claim.amount == 60000 and type(claim.amount) is int
    assert claim.canonical()["amount"] == "600.00"
    appr = parse_record(mut("appr-0001", amount="1800"))
    assert appr.amount == 180000 and appr.canonical()["amount"] == "1800.00"
    proj = parse_record(EXAMPLES["proj-rec-0001"])
    assert proj.subsidy_per_trainee == 30000
    bank = parse_record(EXAMPLES["bank-0001"])
    assert bank.amount == -60000 and bank.canonical()["amount"] == "-600.00"
    money_in = parse_record(mut("bank-0001", amount="5000000"))
    assert money_in.amount == 500000000


def test_typed_fields():
    att = parse_record(EXAMPLES["att-0001"])
    assert att.sign_in == datetime(2024, 1, 15, 8, 17, 7, tzinfo=timezone(timedelta(hours=8)))
    assert att.sign_out > att.sign_in
    assert type(att.lat) is float and att.face_score == 0.937
    opened = parse_record(EXAMPLES["open-0001"])
    assert opened.start_date == date(2024, 1, 15) and opened.end_date == date(2024, 1, 16)
    assert [s.session_id for s in opened.sessions] == ["s-01", "s-02"]
    assert opened.sessions[1].start == datetime(2024, 1, 16, 8, 30, tzinfo=timezone(timedelta(hours=8)))
    inst = parse_record(EXAMPLES["inst-0001"])
    assert inst.venues[0].venue_id == "venue-01" and inst.venues[0].devices == ["dev-01", "dev-02"]
    assert inst.venues[0].capacity == 40 and inst.star == 4
    proj = parse_record(EXAMPLES["proj-rec-0001"])
    assert proj.level == 5 and proj.shortage is True and proj.class_hour_minutes == 45
    notice = parse_record(EXAMPLES["notice-0001"])
    assert notice.start == date(2024, 1, 30) and notice.objections == 0


def test_canonical_nested_objects_are_canonical():
    canon = parse_record(mut("open-0001", extra="x")).canonical()
    assert canon["sessions"][0] == {
        "session_id": "s-01",
        "start": "2024-01-15T08:30:00+08:00",
        "end": "2024-01-15T11:30:00+08:00",
        "teacher_id": "teacher-07",
        "mode": "onsite",
    }
    assert canon["start_date"] == "2024-01-15"
    inst = mut("inst-0001")
    inst["venues"][0]["lat"] = 31  # an int latitude is accepted and stored as float
    inst["venues"][0]["color"] = "blue"  # unknown nested field dropped
    canon = parse_record(inst).canonical()
    assert canon["venues"][0] == {
        "venue_id": "venue-01",
        "capacity": 40,
        "lat": 31.0,
        "lon": 120.5914,
        "devices": ["dev-01", "dev-02"],
    }
    assert type(canon["venues"][0]["lat"]) is float


def test_canonical_is_a_fresh_copy():
    rec = parse_record(EXAMPLES["claim-rec-0001"])
    canon = rec.canonical()
    canon["trainee_ids"].append("x")
    assert rec.canonical()["trainee_ids"] == [TRAINEE, TRAINEE_2]


def test_pack_property():
    assert parse_record(EXAMPLES["appr-0001"]).pack == "320500"
    assert parse_record(EXAMPLES["inst-0001"]).pack == "320500"  # 320505 -> 320500
    assert parse_record(EXAMPLES["claim-rec-0001"]).pack == "320500"
    assert parse_record(EXAMPLES["pay-rec-0001"]).pack == "320500"
    assert parse_record(EXAMPLES["enr-0001"]).pack is None  # hukou_region is not a region
    assert parse_record(EXAMPLES["att-0001"]).pack is None


# ------------------------------------------------------------- digest semantics


def test_money_spelling_is_not_content():
    a = parse_record(mut("claim-rec-0001", amount="25"))
    b = parse_record(mut("claim-rec-0001", amount="25.00"))
    c = parse_record(mut("claim-rec-0001", amount="25.0"))
    assert a.amount == b.amount == c.amount == 2500
    assert a.digest() == b.digest() == c.digest()
    assert a.canonical()["amount"] == "25.00"
    assert parse_record(mut("claim-rec-0001", amount="25.01")).digest() != a.digest()


def test_unknown_fields_are_ignored():
    plain = parse_record(EXAMPLES["pay-rec-0001"])
    extra = parse_record(mut("pay-rec-0001", source_system="TMIS-2", priority=3, nested={"a": [1]}))
    assert extra.digest() == plain.digest()
    assert "source_system" not in extra.canonical()
    assert not hasattr(extra, "source_system")


def test_key_order_is_not_content():
    raw = EXAMPLES["att-0001"]
    reordered = dict(reversed(list(raw.items())))
    assert parse_record(reordered).digest() == parse_record(raw).digest()


def test_defaults_are_filled_in():
    proj = parse_record(mut("proj-rec-0001", class_hour_minutes=DELETE))
    assert proj.class_hour_minutes == 45
    assert proj.canonical()["class_hour_minutes"] == 45
    assert proj.digest() == parse_record(EXAMPLES["proj-rec-0001"]).digest()
    assert parse_record(mut("proj-rec-0001", class_hour_minutes=60)).digest() != proj.digest()
    notice = parse_record(mut("notice-0001", objections=DELETE))
    assert notice.objections == 0 and notice.canonical()["objections"] == 0
    assert notice.digest() == parse_record(EXAMPLES["notice-0001"]).digest()


def test_absent_optional_fields_are_omitted():
    canon = parse_record(EXAMPLES["appr-0001"]).canonical()
    assert "note" not in canon
    att = parse_record(mut("att-0001", method="fingerprint", face_score=DELETE))
    assert att.face_score is None and "face_score" not in att.canonical()
    bank = parse_record(EXAMPLES["bank-0001"])
    assert bank.memo is None and "memo" not in bank.canonical()
    claim = parse_record(EXAMPLES["claim-rec-0001"])
    assert "months" not in claim.canonical()
    # present optional fields are kept
    assert parse_record(mut("appr-0001", note="第一批")).canonical()["note"] == "第一批"


def test_null_optional_is_absent():
    assert (
        parse_record(mut("appr-0001", note=None)).digest() == parse_record(EXAMPLES["appr-0001"]).digest()
    )
    assert parse_record(mut("notice-0001", objections=None)).objections == 0


def test_content_changes_change_the_digest():
    base = parse_record(EXAMPLES["att-0001"]).digest()
    assert parse_record(mut("att-0001", lat=31.445192)).digest() != base
    assert parse_record(mut("att-0001", face_score=0.938)).digest() != base
    assert parse_record(mut("att-0001", sign_out="2024-01-15T11:33:01+08:00")).digest() != base


def test_integral_standard_hours_spelling_is_not_content():
    a = parse_record(mut("proj-rec-0001", standard_hours=8))
    b = parse_record(mut("proj-rec-0001", standard_hours=8.0))
    assert a.digest() == b.digest()
    half = parse_record(mut("proj-rec-0001", standard_hours=7.5))
    assert half.standard_hours == 7.5 and half.canonical()["standard_hours"] == 7.5


def test_timestamps_keep_the_senders_offset():
    utc = parse_record(mut("att-0001", at="2024-01-15T00:17:07Z"))
    assert utc.canonical()["at"] == "2024-01-15T00:17:07+00:00"
    lower = parse_record(mut("att-0001", at="2024-01-15t00:17:07z"))
    assert lower.canonical()["at"] == "2024-01-15T00:17:07+00:00"
    assert lower.digest() == utc.digest()
    frac = parse_record(mut("att-0001", at="2024-01-15T08:17:07.25+08:00"))
    assert frac.canonical()["at"] == "2024-01-15T08:17:07.250000+08:00"
    assert parse_record(frac.canonical()).digest() == frac.digest()
    nano = parse_record(mut("att-0001", at="2024-01-15T08:17:07.123456789+08:00"))
    assert nano.at.microsecond == 123456


# ------------------------------------------------------------------ malformed

MALFORMED_CASES = [
    # (case id, record or line, field)
    ("missing id", mut("att-0001", id=DELETE), "id"),
    ("missing at", mut("att-0001", at=DELETE), "at"),
    ("missing class_id", mut("att-0001", class_id=DELETE), "class_id"),
    ("missing sessions", mut("open-0001", sessions=DELETE), "sessions"),
    ("null required", mut("att-0001", device_id=None), "device_id"),
    ("int for string id", mut("att-0001", class_id=1), "class_id"),
    ("int record id", mut("att-0001", id=17), "id"),
    ("string for int", mut("insp-0001", present_count="2"), "present_count"),
    ("float for int", mut("insp-0001", present_count=2.0), "present_count"),
    ("bool for int", mut("inst-0001", star=True), "star"),
    ("int for bool", mut("comp-0001", passed=1), "passed"),
    ("string for bool", mut("proj-rec-0001", shortage="true"), "shortage"),
    ("string for number", mut("att-0001", lat="31.445191"), "lat"),
    ("bool for number", mut("att-0001", lon=True), "lon"),
    ("int timestamp", mut("att-0001", sign_in=1705277827), "sign_in"),
    ("JSON number money", mut("claim-rec-0001", amount=600), "amount"),
    ("JSON float money", mut("claim-rec-0001", amount=600.0), "amount"),
    ("3-decimal money", mut("claim-rec-0001", amount="600.001"), "amount"),
    ("negative amount", mut("claim-rec-0001", amount="-600.00"), "amount"),
    ("zero amount", mut("pay-rec-0001", amount="0.00"), "amount"),
    ("exponent money", mut("appr-0001", amount="5e6"), "amount"),
    ("leading zero money", mut("appr-0001", amount="0600.00"), "amount"),
    ("money with space", mut("appr-0001", amount=" 600.00"), "amount"),
    ("money with newline", mut("appr-0001", amount="600.00\n"), "amount"),
    ("comma money", mut("appr-0001", amount="5,000,000.00"), "amount"),
    ("number subsidy", mut("proj-rec-0001", subsidy_per_trainee=300), "subsidy_per_trainee"),
    ("zero bank amount", mut("bank-0001", amount="-0.00"), "amount"),
    ("number bank amount", mut("bank-0001", amount=-600), "amount"),
    ("recovery negative", mut("recov-0001", amount="-300.00"), "amount"),
    ("timestamp without offset", mut("att-0001", sign_in="2024-01-15T08:17:07"), "sign_in"),
    ("at without offset", mut("att-0001", at="2024-01-15T08:17:07"), "at"),
    ("at date only", mut("att-0001", at="2024-01-15"), "at"),
    ("at space separator", mut("att-0001", at="2024-01-15 08:17:07+08:00"), "at"),
    ("at offset 24h", mut("att-0001", at="2024-01-15T08:17:07+24:00"), "at"),
    ("at offset minutes 60", mut("att-0001", at="2024-01-15T08:17:07+05:60"), "at"),
    ("at compact offset", mut("att-0001", at="2024-01-15T08:17:07+0800"), "at"),
    ("at not a real time", mut("att-0001", at="2024-01-15T25:17:07+08:00"), "at"),
    ("at not a real day", mut("att-0001", at="2023-02-29T08:17:07+08:00"), "at"),
    ("at trailing newline", mut("att-0001", at="2024-01-15T08:17:07+08:00\n"), "at"),
    ("at 10 fraction digits", mut("att-0001", at="2024-01-15T08:17:07.1234567890+08:00"), "at"),
    ("bad date", mut("open-0001", start_date="2024-02-30"), "start_date"),
    ("short date", mut("open-0001", end_date="2024-1-16"), "end_date"),
    ("compact date", mut("reg-0001", since="20240220"), "since"),
    ("datetime for date", mut("bank-0001", value_date="2024-02-09T00:00:00+08:00"), "value_date"),
    ("bad fund_source", mut("appr-0001", fund_source="ui"), "fund_source"),
    ("bad status", mut("inst-0001", status="active"), "status"),
    ("bad training_kind", mut("proj-rec-0001", training_kind="online"), "training_kind"),
    ("level 6", mut("proj-rec-0001", level=6), "level"),
    ("level 0", mut("proj-rec-0001", level=0), "level"),
    ("level string digit", mut("proj-rec-0001", level="5"), "level"),
    ("level SPECIAL", mut("proj-rec-0001", level="SPECIAL"), "level"),
    ("level bool", mut("proj-rec-0001", level=True), "level"),
    ("class decision returned", mut("rev-class-0001", decision="returned"), "decision"),
    ("claim decision bad", mut("rev-claim-0001", decision="ok"), "decision"),
    ("bad category", mut("enr-0001", category="student"), "category"),
    ("bad method", mut("att-0001", method="iris"), "method"),
    ("enum case", mut("att-0001", method="Face"), "method"),
    ("bad certificate_kind", mut("comp-0001", certificate_kind="diploma"), "certificate_kind"),
    ("bad person status", mut("reg-0001", status="emigrated"), "status"),
    ("bad claimant_kind", mut("claim-rec-0001", claimant_kind="school"), "claimant_kind"),
    ("bad subsidy_kind", mut("claim-rec-0001", subsidy_kind="bonus"), "subsidy_kind"),
    ("id with space", mut("att-0001", id="att 0001"), "id"),
    ("empty id", mut("att-0001", id=""), "id"),
    ("id 65 chars", mut("att-0001", id="a" * 65), "id"),
    ("id trailing newline", mut("att-0001", id="att-0001\n"), "id"),
    ("id non-ascii", mut("att-0001", id="考勤-0001"), "id"),
    ("device id slash", mut("att-0001", device_id="dev/01"), "device_id"),
    ("officer id", mut("claim-rec-0001", handled_by="officer 04"), "handled_by"),
    ("approved_by", mut("pay-rec-0001", approved_by=""), "approved_by"),
    ("face without face_score", mut("att-0001", face_score=DELETE), "face_score"),
    ("face with null face_score", mut("att-0001", face_score=None), "face_score"),
    ("face_score above 1", mut("att-0001", face_score=1.5), "face_score"),
    ("face_score negative", mut("att-0001", face_score=-0.1), "face_score"),
    ("face_score string", mut("att-0001", face_score="0.9"), "face_score"),
    ("lat 91", mut("att-0001", lat=91), "lat"),
    ("lon -181", mut("att-0001", lon=-181.0), "lon"),
    ("sign_out before sign_in", mut("att-0001", sign_out="2024-01-15T08:00:00+08:00"), "sign_out"),
    ("sign_out equals sign_in", mut("att-0001", sign_out="2024-01-15T08:17:07+08:00"), "sign_out"),
    (
        "sign_out equal instant other offset",
        mut("att-0001", sign_out="2024-01-15T00:17:07Z"),
        "sign_out",
    ),
    ("claim training without class_id", mut("claim-rec-0001", class_id=DELETE), "class_id"),
    (
        "claim appraisal without class_id",
        mut("claim-rec-0001", subsidy_kind="appraisal", class_id=DELETE),
        "class_id",
    ),
    (
        "claim living allowance without class_id",
        mut("claim-rec-0001", subsidy_kind="living_allowance", class_id=None),
        "class_id",
    ),
    (
        "work_for_training without months",
        mut("claim-rec-0001", subsidy_kind="work_for_training", claimant_kind="enterprise"),
        "months",
    ),
    ("months zero", mut("claim-rec-0001", subsidy_kind="work_for_training", months=0), "months"),
    ("months string", mut("claim-rec-0001", subsidy_kind="work_for_training", months="3"), "months"),
    ("trainee_ids empty for training", mut("claim-rec-0001", trainee_ids=[]), "trainee_ids"),
    ("trainee_ids not a list", mut("claim-rec-0001", trainee_ids=TRAINEE), "trainee_ids"),
    ("trainee_ids item not a string", mut("claim-rec-0001", trainee_ids=[TRAINEE, TRAINEE_2, 42]), "trainee_ids[2]"),
    ("trainee_id not a string", mut("att-0001", trainee_id=320505199706010302), "trainee_id"),
    ("claimant_id not a string", mut("claim-rec-0001", claimant_id=None), "claimant_id"),
    ("payee_id not a string", mut("pay-rec-0001", payee_id=91320505), "payee_id"),
    ("institution_id not a string", mut("inst-0001", institution_id=["x"]), "institution_id"),
    ("approved_amount not 0 when rejected", mut("rev-claim-0001", decision="rejected"), "approved_amount"),
    (
        "approved_amount not 0 when returned",
        mut("rev-claim-0001", decision="returned", approved_amount="0.01"),
        "approved_amount",
    ),
    ("approved_amount 0 when approved", mut("rev-claim-0001", approved_amount="0"), "approved_amount"),
    ("approved_amount number", mut("rev-claim-0001", decision="rejected", approved_amount=0), "approved_amount"),
    ("approved_amount negative", mut("rev-claim-0001", approved_amount="-600.00"), "approved_amount"),
    ("region 5 digits", mut("appr-0001", region="32050"), "region"),
    ("region as number", mut("appr-0001", region=320500), "region"),
    ("region letters", mut("pay-rec-0001", region="32050X"), "region"),
    ("region fullwidth digits", mut("claim-rec-0001", region="３２０５０５"), "region"),
    ("hukou_region 5 digits", mut("enr-0001", hukou_region="51130"), "hukou_region"),
    ("empty document", mut("appr-0001", document=""), "document"),
    ("blank name", mut("inst-0001", name="   "), "name"),
    ("empty reason", mut("recov-0001", reason=""), "reason"),
    ("reason not a string", mut("recov-0001", reason=7), "reason"),
    ("note not a string", mut("appr-0001", note=1), "note"),
    ("memo not a string", mut("bank-0001", memo=["x"]), "memo"),
    ("payee_account empty", mut("pay-rec-0001", payee_account=""), "payee_account"),
    ("payee_account 65 chars", mut("pay-rec-0001", payee_account="6" * 65), "payee_account"),
    ("payee_account number", mut("pay-rec-0001", payee_account=6222020000123456789), "payee_account"),
    ("bank_ref 65 chars", mut("pay-rec-0001", bank_ref="B" * 65), "bank_ref"),
    ("account empty", mut("bank-0001", account=""), "account"),
    ("counterparty_account long", mut("bank-0001", counterparty_account="6" * 65), "counterparty_account"),
    ("star 6", mut("inst-0001", star=6), "star"),
    ("star -1", mut("inst-0001", star=-1), "star"),
    ("star 4.0", mut("inst-0001", star=4.0), "star"),
    ("standard_hours 0", mut("proj-rec-0001", standard_hours=0), "standard_hours"),
    ("standard_hours negative", mut("proj-rec-0001", standard_hours=-8.5), "standard_hours"),
    ("standard_hours string", mut("proj-rec-0001", standard_hours="8"), "standard_hours"),
    ("class_hour_minutes 0", mut("proj-rec-0001", class_hour_minutes=0), "class_hour_minutes"),
    ("class_hour_minutes float", mut("proj-rec-0001", class_hour_minutes=45.0), "class_hour_minutes"),
    ("planned_headcount negative", mut("open-0001", planned_headcount=-1), "planned_headcount"),
    ("planned_headcount huge", mut("open-0001", planned_headcount=2**40), "planned_headcount"),
    ("present_count negative", mut("insp-0001", present_count=-2), "present_count"),
    ("objections negative", mut("notice-0001", objections=-1), "objections"),
    ("objections bool", mut("notice-0001", objections=False), "objections"),
    ("class end before start", mut("open-0001", end_date="2024-01-14"), "end_date"),
    ("notice end before start", mut("notice-0001", end="2024-01-29"), "end"),
    ("sessions empty", mut("open-0001", sessions=[]), "sessions"),
    ("sessions not a list", mut("open-0001", sessions={"session_id": "s-01"}), "sessions"),
    ("venues not a list", mut("inst-0001", venues=None), "venues"),
    ("completion certificate_no empty", mut("comp-0001", certificate_no=""), "certificate_no"),
]


def _nested_cases():
    cases = []
    o = mut("open-0001")
    o["sessions"][1]["start"] = "2024-01-16T11:30:00+08:00"
    cases.append(("session start not before end", o, "sessions[1].end"))
    o = mut("open-0001")
    o["sessions"][1]["start"] = "2024-01-16T08:30:00"
    cases.append(("session start without offset", o, "sessions[1].start"))
    o = mut("open-0001")
    o["sessions"][1]["session_id"] = "s-01"
    cases.append(("duplicate session_id", o, "sessions[1].session_id"))
    o = mut("open-0001")
    o["sessions"][1]["mode"] = "hybrid"
    cases.append(("bad session mode", o, "sessions[1].mode"))
    o = mut("open-0001")
    del o["sessions"][0]["teacher_id"]
    cases.append(("session missing teacher_id", o, "sessions[0].teacher_id"))
    o = mut("open-0001")
    o["sessions"][0] = "s-01"
    cases.append(("session not an object", o, "sessions[0]"))
    i = mut("inst-0001")
    i["venues"][0]["devices"] = ["dev-01", "dev 02", "dev-03"]
    cases.append(("bad device id", i, "venues[0].devices[1]"))
    i = mut("inst-0001")
    i["venues"][0]["devices"] = "dev-01"
    cases.append(("devices not a list", i, "venues[0].devices"))
    i = mut("inst-0001")
    i["venues"].append(dict(i["venues"][0]))
    cases.append(("duplicate venue_id", i, "venues[1].venue_id"))
    i = mut("inst-0001")
    i["venues"][0]["capacity"] = -1
    cases.append(("negative capacity", i, "venues[0].capacity"))
    i = mut("inst-0001")
    i["venues"][0]["capacity"] = "40"
    cases.append(("string capacity", i, "venues[0].capacity"))
    i = mut("inst-0001")
    i["venues"][0]["lat"] = 90.5
    cases.append(("venue lat out of range", i, "venues[0].lat"))
    i = mut("inst-0001")
    del i["venues"][0]["lon"]
    cases.append(("venue missing lon", i, "venues[0].lon"))
    return cases


@pytest.mark.parametrize(
    "record,field",
    [pytest.param(r, f, id=name) for name, r, f in MALFORMED_CASES + _nested_cases()],
)
def test_malformed_names_the_field(record, field):
    e = refused(record)
    assert e.reason == "malformed", e.detail
    assert e.field == field, e.detail
    assert e.detail.startswith(f"field {field}: ")
    assert str(e) == e.detail
    assert e.type == record["type"]
    assert e.id == (record.get("id") if isinstance(record.get("id"), str) else None)


def test_malformed_detail_says_what_is_wrong():
    e = refused(mut("att-0001", sign_in="2024-01-15T08:17:07"))
    assert e.detail == "field sign_in: timestamp without offset: '2024-01-15T08:17:07'"
    e = refused(mut("claim-rec-0001", amount=600))
    assert "JSON string" in e.detail
    e = refused(mut("att-0001", class_id=DELETE))
    assert e.detail == "field class_id: missing"
    e = refused(mut("att-0001", face_score=DELETE))
    assert "face" in e.detail and "missing" in e.detail
    e = refused(mut("att-0001", method="iris"))
    assert "face | fingerprint | manual" in e.detail and "'iris'" in e.detail


@pytest.mark.parametrize(
    "line,detail_start",
    [
        pytest.param("{", "not JSON", id="not JSON"),
        pytest.param("", "not JSON", id="empty"),
        pytest.param('{"type": "claim", ', "not JSON", id="truncated"),
        pytest.param(b"\xff\xfe{}", "not JSON", id="not UTF-8"),
        pytest.param("[1, 2]", "record is not a JSON object: got array", id="array"),
        pytest.param('"attendance"', "record is not a JSON object: got string", id="string"),
        pytest.param("42", "record is not a JSON object: got number", id="number"),
        pytest.param("null", "record is not a JSON object: got null", id="null"),
    ],
)
def test_whole_record_problems_have_no_field(line, detail_start):
    e = refused(line)
    assert e.reason == "malformed"
    assert e.field is None and e.type is None and e.id is None
    assert e.detail.startswith(detail_start)


def test_parse_record_refuses_non_objects():
    for value in ([EXAMPLES["att-0001"]], "x", 1, None, (1, 2)):
        e = refused(value) if not isinstance(value, str) else refused(orjson.dumps(value))
        assert e.reason == "malformed" and e.field is None


@pytest.mark.parametrize(
    "record,type_",
    [
        pytest.param(mut("att-0001", type="attendence"), "attendence", id="unknown"),
        pytest.param(mut("att-0001", type="Attendance"), "Attendance", id="case"),
        pytest.param(mut("att-0001", type=DELETE), None, id="missing"),
        pytest.param(mut("att-0001", type=7), None, id="number"),
        pytest.param(mut("att-0001", type=None), None, id="null"),
    ],
)
def test_type_problems(record, type_):
    e = refused(record)
    assert (e.reason, e.field, e.type, e.id) == ("malformed", "type", type_, "att-0001")
    assert e.detail.startswith("field type: ")


def test_error_id_only_when_a_string():
    e = refused(mut("att-0001", id=12, class_id=DELETE))
    assert e.id is None and e.type == "attendance"
    e = refused(mut("att-0001", id="bad id", class_id=DELETE))
    assert e.id == "bad id" and e.field == "id"


def test_no_lax_coercion_anywhere_in_the_example():
    """Every scalar field of every example, replaced by a JSON value of another
    kind, is refused as malformed at that field (strings stay strings, ints
    ints, bools bools)."""
    swaps = {str: [1, True, None], int: ["1", True, 1.5], float: ["0.5", True], bool: [1, "true", None]}
    optional = {
        t: {f.name for f in cls._fields if f.mode == records.OPT} for t, cls in records.RECORD_CLASSES.items()
    }
    assert optional["completion"] == {"certificate_no"}
    checked = 0
    for raw in EXAMPLES.values():
        for key, value in raw.items():
            if key == "type" or type(value) not in swaps:
                continue
            for other in swaps[type(value)]:
                if type(other) in (int, float) and key in ("standard_hours", "lat", "lon", "face_score"):
                    continue  # the contract lets these be any number
                if other is None and key in optional[raw["type"]]:
                    continue  # null for an optional field is absent
                e = refused({**raw, key: other})
                assert (e.reason, e.field) == ("malformed", key), (raw["id"], key, other, e.detail)
                checked += 1
    assert checked > 300


def test_unicode_free_text_is_accepted():
    rec = parse_record(mut("appr-0001", note="第一批 — 含“引号”"))
    assert rec.note == "第一批 — 含“引号”"


def test_lone_surrogate_text_is_malformed():
    e = refused(mut("recov-0001", reason="bad \ud800 text"))
    assert (e.reason, e.field) == ("malformed", "reason")


def test_valid_variants_are_accepted():
    # optional / boundary values the contract allows
    assert parse_record(mut("att-0001", method="manual", face_score=DELETE)).method == "manual"
    assert parse_record(mut("att-0001", method="fingerprint", face_score=0.5)).face_score == 0.5
    assert parse_record(mut("att-0001", face_score=0)).face_score == 0.0
    assert parse_record(mut("att-0001", face_score=1)).face_score == 1.0
    assert parse_record(mut("att-0001", lat=-90, lon=180)).lat == -90.0
    assert parse_record(mut("proj-rec-0001", level="special")).level == "special"
    assert parse_record(mut("proj-rec-0001", level=1)).level == 1
    assert parse_record(mut("inst-0001", star=0, venues=[])).venues == []
    assert parse_record(mut("inst-0001", status="delisted")).status == "delisted"
    assert parse_record(mut("open-0001", end_date="2024-01-15")).end_date == date(2024, 1, 15)
    assert parse_record(mut("notice-0001", end="2024-01-30")).end == date(2024, 1, 30)
    assert parse_record(mut("insp-0001", present_count=0, note="门锁着")).note == "门锁着"
    assert parse_record(mut("comp-0001", passed=False, certificate_kind="none", certificate_no=DELETE)).passed is False
    assert parse_record(mut("att-0001", id="a" * 64)).id == "a" * 64
    assert parse_record(mut("att-0001", id="A.b_c:d-9")).id == "A.b_c:d-9"
    assert parse_record(mut("open-0001", planned_headcount=0)).planned_headcount == 0
    assert parse_record(mut("pay-rec-0001", payee_account="6" * 64)).payee_account == "6" * 64
    assert parse_record(mut("reg-0001", status="deceased", since="2024-02-29")).since == date(2024, 2, 29)
    assert parse_record(mut("rev-class-0001", decision="rejected")).decision == "rejected"
    assert parse_record(mut("bank-0001", memo="")).memo == ""
    for kind in records.CLAIM_DECISIONS:
        amount = "600.00" if kind == "approved" else "0"
        assert parse_record(mut("rev-claim-0001", decision=kind, approved_amount=amount)).decision == kind
    assert parse_record(mut("rev-claim-0001", decision="rejected", approved_amount="0.00")).approved_amount == 0


def test_claim_kinds():
    award = parse_record(
        mut("claim-rec-0001", subsidy_kind="award", class_id=DELETE, trainee_ids=[], amount="5000")
    )
    assert award.trainee_ids == [] and award.class_id is None
    assert "class_id" not in award.canonical()
    wft = parse_record(
        mut("claim-rec-0001", subsidy_kind="work_for_training", claimant_kind="enterprise", class_id=DELETE, months=3)
    )
    assert wft.months == 3 and wft.canonical()["months"] == 3
    upgrade = parse_record(mut("claim-rec-0001", subsidy_kind="skill_upgrade", class_id=DELETE))
    assert upgrade.class_id is None
    person = parse_record(
        mut(
            "claim-rec-0001",
            subsidy_kind="skill_upgrade",
            claimant_kind="individual",
            claimant_id=TRAINEE,
            class_id=DELETE,
            trainee_ids=[TRAINEE],
        )
    )
    assert person.claimant_id == TRAINEE
    assert isinstance(person, ClaimRecord)


# ------------------------------------------------------------------ invalid_id


def test_resident_id_bad_check_char():
    e = refused(mut("att-0001", trainee_id=bad_check_char(TRAINEE)))
    assert (e.reason, e.field, e.type, e.id) == ("invalid_id", "trainee_id", "attendance", "att-0001")
    assert "check character" in e.detail and e.detail.startswith("field trainee_id: ")


def test_resident_id_bad_birth_date():
    first17 = "320505" + "19970230" + "030"  # 30 February
    rid = first17 + resident_check_char(first17)
    assert resident_id_problem(rid) is not None
    for example_id in ("enr-0001", "att-0001", "comp-0001", "reg-0001"):
        e = refused(mut(example_id, trainee_id=rid))
        assert (e.reason, e.field) == ("invalid_id", "trainee_id")
        assert "birth date" in e.detail


@pytest.mark.parametrize(
    "value",
    ["32050519970601030", "3205051997060103021", "32050519970601030x", "320505199706010302\n", "", "ABCDEFGHIJKLMNOPQR"],
)
def test_resident_id_bad_shape_is_invalid_id(value):
    e = refused(mut("enr-0001", trainee_id=value))
    assert (e.reason, e.field) == ("invalid_id", "trainee_id")


def test_claim_trainee_ids_item():
    e = refused(mut("claim-rec-0001", trainee_ids=[TRAINEE, bad_check_char(TRAINEE_2)]))
    assert (e.reason, e.field) == ("invalid_id", "trainee_ids[1]")
    # the first bad item in order wins
    e = refused(mut("claim-rec-0001", trainee_ids=["x", TRAINEE, "y"]))
    assert (e.reason, e.field) == ("invalid_id", "trainee_ids[0]")


def test_credit_code_bad():
    bad = bad_credit_code(INSTITUTION)
    e = refused(mut("inst-0001", institution_id=bad))
    assert (e.reason, e.field) == ("invalid_id", "institution_id")
    assert "check character" in e.detail
    e = refused(mut("open-0001", institution_id=bad))
    assert (e.reason, e.field) == ("invalid_id", "institution_id")
    e = refused(mut("inst-0001", institution_id="91320505DC4MTWLHWI"))  # I is not in the alphabet
    assert (e.reason, e.field) == ("invalid_id", "institution_id")
    e = refused(mut("inst-0001", institution_id="91320505dc4mtwlhwt"))  # lower case
    assert e.reason == "invalid_id"


def test_claimant_id_follows_claimant_kind():
    e = refused(mut("claim-rec-0001", claimant_kind="individual"))  # a credit code for a person
    assert (e.reason, e.field) == ("invalid_id", "claimant_id")
    e = refused(mut("claim-rec-0001", claimant_kind="enterprise", claimant_id=TRAINEE))
    assert (e.reason, e.field) == ("invalid_id", "claimant_id")
    e = refused(mut("claim-rec-0001", claimant_id=bad_credit_code(INSTITUTION)))
    assert (e.reason, e.field) == ("invalid_id", "claimant_id")
    enterprise = make_credit_code("91420106MA4K0000X")
    assert parse_record(mut("claim-rec-0001", claimant_kind="enterprise", claimant_id=enterprise)).claimant_id == enterprise


def test_payee_id_credit_code_or_resident_id():
    assert parse_record(mut("pay-rec-0001", payee_id=TRAINEE)).payee_id == TRAINEE
    assert parse_record(EXAMPLES["pay-rec-0001"]).payee_id == INSTITUTION
    for bad in (bad_check_char(TRAINEE), bad_credit_code(INSTITUTION), "officer-15", ""):
        e = refused(mut("pay-rec-0001", payee_id=bad))
        assert (e.reason, e.field) == ("invalid_id", "payee_id"), bad
        assert "credit code" in e.detail and "resident id" in e.detail


# --------------------------------------------------------------- unknown_region


def test_unknown_region():
    for example_id in ("appr-0001", "inst-0001", "proj-rec-0001", "claim-rec-0001", "pay-rec-0001"):
        e = refused(mut(example_id, region="110000"))
        assert (e.reason, e.field, e.id) == ("unknown_region", "region", example_id)
        assert "110000" in e.detail


@pytest.mark.parametrize(
    "region,pack",
    [
        ("420106", "420100"),
        ("420100", "420100"),
        ("450000", "450000"),
        ("450321", "450000"),
        ("370306", "370306"),
        ("320500", "320500"),
        ("320583", "320500"),
        ("230000", "230000"),
        ("230104", "230000"),
    ],
)
def test_district_inherits_its_pack(region, pack):
    rec = parse_record(mut("appr-0001", region=region))
    assert rec.region == region  # the record keeps the sender's code
    assert rec.pack == pack
    assert rec.canonical()["region"] == region


@pytest.mark.parametrize("region", ["110000", "370305", "370300", "420200", "320600", "000000", "999999"])
def test_regions_under_no_pack(region):
    e = refused(mut("claim-rec-0001", region=region))
    assert (e.reason, e.field) == ("unknown_region", "region")


def test_hukou_region_is_never_unknown_region():
    for hukou in ("110000", "000000", "511302"):
        rec = parse_record(mut("enr-0001", hukou_region=hukou))
        assert rec.hukou_region == hukou and rec.pack is None


# ------------------------------------------------------------------- precedence


def test_malformed_beats_invalid_id_beats_unknown_region():
    bad_rid = bad_check_char(TRAINEE)
    both = mut("claim-rec-0001", region="110000", trainee_ids=[TRAINEE, bad_rid])
    e = refused(both)
    assert (e.reason, e.field) == ("invalid_id", "trainee_ids[1]")  # region comes first but ranks lower
    all_three = dict(both, handled_by="officer 04")  # last field in the contract, malformed
    e = refused(all_three)
    assert (e.reason, e.field) == ("malformed", "handled_by")
    e = refused(mut("pay-rec-0001", region="110000", payee_id="nobody"))
    assert (e.reason, e.field) == ("invalid_id", "payee_id")


def test_cross_field_malformed_beats_invalid_id():
    e = refused(mut("att-0001", trainee_id=bad_check_char(TRAINEE), face_score=DELETE))
    assert (e.reason, e.field) == ("malformed", "face_score")
    e = refused(mut("claim-rec-0001", claimant_kind="individual", class_id=DELETE))
    assert (e.reason, e.field) == ("malformed", "class_id")


def test_first_field_in_contract_order_within_a_reason():
    e = refused(mut("att-0001", lat=200, class_id=DELETE, device_id="x y"))
    assert e.field == "class_id"
    e = refused(mut("att-0001", lat=200, device_id="x y"))
    assert e.field == "device_id"
    # common fields come before the type's own
    e = refused(mut("att-0001", at="yesterday", class_id=DELETE))
    assert e.field == "at"
    e = refused(mut("att-0001", id="", at="yesterday"))
    assert e.field == "id"
    # a cross-field problem sits at its field's place in the contract
    e = refused(mut("claim-rec-0001", class_id=DELETE, amount=600))
    assert e.field == "class_id"
    e = refused(mut("claim-rec-0001", trainee_ids=[], amount=600))
    assert e.field == "trainee_ids"
    e = refused(mut("att-0001", sign_out="2024-01-15T08:00:00+08:00", method="face", face_score=DELETE))
    assert e.field == "sign_out"
    # nested problems sit at their top-level field's place, in item order
    o = mut("open-0001", planned_headcount=-1)
    o["sessions"][0]["mode"] = "x"
    e = refused(o)
    assert e.field == "planned_headcount"
    o = mut("open-0001")
    o["sessions"][1]["mode"] = "x"
    o["sessions"][0]["end"] = "2024-01-15T08:00:00+08:00"
    e = refused(o)
    assert e.field == "sessions[0].end"
    e = refused(mut("claim-rec-0001", trainee_ids=[TRAINEE, "bad", 7]))
    assert (e.reason, e.field) == ("malformed", "trainee_ids[2]")  # malformed outranks the earlier invalid_id


def test_several_invalid_ids_first_in_contract_order():
    e = refused(
        mut(
            "claim-rec-0001",
            claimant_id=bad_credit_code(INSTITUTION),
            trainee_ids=[bad_check_char(TRAINEE)],
        )
    )
    assert (e.reason, e.field) == ("invalid_id", "claimant_id")


# ------------------------------------------------------------- property tests


def _spellings(fen: int) -> list[str]:
    """Every way the contract lets one write ``fen`` yuan."""
    whole, frac = divmod(fen, 100)
    out = [f"{whole}.{frac:02d}"]
    if frac % 10 == 0:
        out.append(f"{whole}.{frac // 10}")
    if frac == 0:
        out.append(f"{whole}")
    return out


@settings(max_examples=300, deadline=None)
@given(fen=st.integers(min_value=1, max_value=10**17 - 1))
def test_money_round_trip_and_digest_stability(fen):
    yuan = fen_to_yuan(fen)
    assert parse_fen(yuan) == fen
    assert fen_to_yuan(parse_fen(yuan)) == yuan
    digests = set()
    for spelling in _spellings(fen):
        assert parse_fen(spelling) == fen
        rec = parse_record(mut("claim-rec-0001", amount=spelling))
        assert rec.amount == fen
        assert rec.canonical()["amount"] == yuan
        assert parse_record(rec.canonical()).digest() == rec.digest()
        digests.add(rec.digest())
    assert len(digests) == 1


@settings(max_examples=200, deadline=None)
@given(fen=st.integers(min_value=-(10**17 - 1), max_value=10**17 - 1).filter(bool))
def test_signed_bank_amounts(fen):
    rec = parse_record(mut("bank-0001", amount=fen_to_yuan(fen)))
    assert rec.amount == fen
    assert parse_record(rec.canonical()).digest() == rec.digest()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lat=st.floats(min_value=-90, max_value=90, allow_nan=False),
    lon=st.floats(min_value=-180, max_value=180, allow_nan=False),
    score=st.floats(min_value=0, max_value=1, allow_nan=False),
    minutes=st.integers(min_value=1, max_value=600),
    offset=st.integers(min_value=-12 * 60, max_value=14 * 60),
    micro=st.integers(min_value=0, max_value=999_999),
)
def test_attendance_canonical_round_trip(lat, lon, score, minutes, offset, micro):
    tz = timezone(timedelta(minutes=offset))
    sign_in = datetime(2024, 1, 15, 8, 17, 7, micro, tzinfo=tz)
    raw = mut(
        "att-0001",
        lat=lat,
        lon=lon,
        face_score=score,
        at=sign_in.isoformat(),
        sign_in=sign_in.isoformat(),
        sign_out=(sign_in + timedelta(minutes=minutes)).isoformat(),
    )
    rec = parse_record(raw)
    assert rec.sign_in == sign_in and rec.sign_in.utcoffset() == timedelta(minutes=offset)
    canon = rec.canonical()
    again = parse_line(orjson.dumps(canon))  # through JSON, as the ledger stores it
    assert again.digest() == rec.digest()
    assert again.canonical() == canon


@settings(max_examples=300, deadline=None)
@given(
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
    seq=st.integers(min_value=0, max_value=999),
    region=st.sampled_from(["320505", "420106", "450321", "110101"]),
)
def test_generated_resident_ids_are_accepted_and_mutations_refused(birth, seq, region):
    rid = make_resident_id(region, birth, seq)
    assert parse_record(mut("enr-0001", trainee_id=rid)).trainee_id == rid
    e = refused(mut("enr-0001", trainee_id=bad_check_char(rid)))
    assert (e.reason, e.field) == ("invalid_id", "trainee_id")


@settings(max_examples=500, deadline=None)
@given(
    value=st.one_of(
        st.text(alphabet="0123456789X", min_size=18, max_size=18),
        st.builds(
            lambda s: s + resident_check_char(s),
            st.text(alphabet="0123456789", min_size=17, max_size=17),
        ),
        st.text(min_size=0, max_size=20),
    )
)
def test_fast_resident_id_check_agrees_with_ids(value):
    """records' fast path accepts exactly what ids.resident_id_problem accepts."""
    expected_ok = resident_id_problem(value) is None and len(value) == 18
    assert records._resident_id_ok(value) == expected_ok


@settings(max_examples=200, deadline=None)
@given(stem=st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
def test_generated_credit_codes(stem):
    code = make_credit_code(stem)
    assert parse_record(mut("inst-0001", institution_id=code)).institution_id == code
    assume(code[17] != "0")
    e = refused(mut("inst-0001", institution_id=code[:17] + "0"))
    assert (e.reason, e.field) == ("invalid_id", "institution_id")
