"""One plain handler function per record type: check the hard rules, then act.

A handler checks everything before it changes anything: it raises
``RuleViolation`` with the contract's reason, or it mutates aggregates through
the unit of work. It returns the pack region the record belongs to (None when
it has none), which travels with the record's Fact for downstream readers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ledger.aggregates import Claim, Class, EntityKey, FundAccount, Institution, Project, RuleViolation
from ledger.money import fen_to_yuan
from ledger.policy import pack_code_for, pack_for
from ledger.postings import Transaction, appropriation_postings, payment_postings, recovery_postings

if TYPE_CHECKING:
    from ledger.unit_of_work import UnitOfWork

Handler = Callable[["UnitOfWork", Any], "str | None"]


def _unknown(what: str, value: str, field: str) -> RuleViolation:
    return RuleViolation("unknown_reference", f"{what} {value} was not introduced by an earlier record", field=field)


def _require_pack(region: str) -> str:
    code = pack_code_for(region)
    if code is None:  # records.py already refuses these; a second guard costs nothing
        raise RuleViolation("unknown_region", f"region {region} is under no policy pack", field="region")
    return code


def _local_date(rec: Any) -> str:
    return rec.at.date().isoformat()


def _fund(uow: UnitOfWork, fund_source: str, region: str, *, create: bool) -> FundAccount | None:
    acct = uow.get(FundAccount, FundAccount.create_id(fund_source, region))
    if acct is None and create:
        acct = uow.add(FundAccount(fund_source=fund_source, region=region))
    return acct


def _class(uow: UnitOfWork, class_id: str) -> Class:
    cls = uow.get(Class, Class.create_id(class_id))
    if cls is None:
        raise _unknown("class", class_id, "class_id")
    return cls


def _claim(uow: UnitOfWork, claim_id: str) -> Claim:
    claim = uow.get(Claim, Claim.create_id(claim_id))
    if claim is None:
        raise _unknown("claim", claim_id, "claim_id")
    return claim


def _claim_key(uow: UnitOfWork, kind: str, value: str, rec: Any) -> None:
    """Refuse a second record introducing the same payment_id / recovery_id."""
    key_id = EntityKey.create_id(kind, value)
    existing = uow.get(EntityKey, key_id)
    if existing is not None:
        raise RuleViolation(
            "conflict", f"{kind} {value} was already introduced by {rec.type} {existing.record_id}", field=kind
        )


def appropriation(uow: UnitOfWork, rec: Any) -> str | None:
    pack = _require_pack(rec.region)
    acct = _fund(uow, rec.fund_source, pack, create=True)
    txn = Transaction(
        txn_id=f"appropriation:{rec.id}",
        kind="appropriation",
        date=_local_date(rec),
        at=rec.at.isoformat(),
        record_type=rec.type,
        record_id=rec.id,
        fund_source=rec.fund_source,
        region=pack,
        document=rec.document,
        postings=appropriation_postings(rec.fund_source, pack, rec.amount),
    )
    acct.post(txn)
    return pack


def institution(uow: UnitOfWork, rec: Any) -> str | None:
    pack = _require_pack(rec.region)
    venue_ids = [v.venue_id for v in rec.venues]
    inst = uow.get(Institution, Institution.create_id(rec.institution_id))
    if inst is None:
        uow.add(Institution(institution_id=rec.institution_id, region=rec.region, pack=pack, status=rec.status, venue_ids=venue_ids))
    else:
        inst.update(region=rec.region, pack=pack, status=rec.status, venue_ids=venue_ids)
    return pack


def project(uow: UnitOfWork, rec: Any) -> str | None:
    pack = _require_pack(rec.region)
    proj = uow.get(Project, Project.create_id(rec.project_id))
    if proj is None:
        uow.add(Project(project_id=rec.project_id, region=rec.region, pack=pack))
    else:
        proj.update(region=rec.region, pack=pack)
    return pack


def class_opened(uow: UnitOfWork, rec: Any) -> str | None:
    inst = uow.get(Institution, Institution.create_id(rec.institution_id))
    if inst is None:
        raise _unknown("institution", rec.institution_id, "institution_id")
    if uow.get(Project, Project.create_id(rec.project_id)) is None:
        raise _unknown("project", rec.project_id, "project_id")
    if rec.venue_id not in inst.venue_ids:
        raise _unknown(f"venue of institution {rec.institution_id}:", rec.venue_id, "venue_id")
    existing = uow.get(Class, Class.create_id(rec.class_id))
    if existing is not None:
        raise RuleViolation(
            "conflict", f"class {rec.class_id} was already opened by class_opened {existing.record_id}", field="class_id"
        )
    uow.add(
        Class(
            class_id=rec.class_id,
            record_id=rec.id,
            institution_id=rec.institution_id,
            project_id=rec.project_id,
            venue_id=rec.venue_id,
            pack=inst.pack,
            session_ids=[s.session_id for s in rec.sessions],
        )
    )
    return inst.pack


def class_reviewed(uow: UnitOfWork, rec: Any) -> str | None:
    cls = _class(uow, rec.class_id)
    cls.review(decision=rec.decision, reviewer_id=rec.reviewer_id)
    return cls.pack


def enrollment(uow: UnitOfWork, rec: Any) -> str | None:
    cls = _class(uow, rec.class_id)
    if rec.trainee_id not in cls.trainees:
        cls.enroll(trainee_id=rec.trainee_id)
    return cls.pack


def _enrolled_class(uow: UnitOfWork, rec: Any) -> Class:
    cls = _class(uow, rec.class_id)
    if rec.trainee_id not in cls.trainees:
        raise _unknown(f"enrollment in class {rec.class_id} of trainee", rec.trainee_id, "trainee_id")
    return cls


def _session(cls: Class, session_id: str) -> None:
    if session_id not in cls.session_ids:
        raise _unknown(f"session of class {cls.class_id}:", session_id, "session_id")


def attendance(uow: UnitOfWork, rec: Any) -> str | None:
    cls = _class(uow, rec.class_id)
    _session(cls, rec.session_id)
    if rec.trainee_id not in cls.trainees:
        raise _unknown(f"enrollment in class {rec.class_id} of trainee", rec.trainee_id, "trainee_id")
    return cls.pack


def inspection(uow: UnitOfWork, rec: Any) -> str | None:
    cls = _class(uow, rec.class_id)
    _session(cls, rec.session_id)
    return cls.pack


def completion(uow: UnitOfWork, rec: Any) -> str | None:
    return _enrolled_class(uow, rec).pack


def person_status(uow: UnitOfWork, rec: Any) -> str | None:
    return None


def claim(uow: UnitOfWork, rec: Any) -> str | None:
    pack = _require_pack(rec.region)
    if rec.class_id is not None:
        _class(uow, rec.class_id)
    if uow.get(Claim, Claim.create_id(rec.claim_id)) is not None:
        raise RuleViolation("conflict", f"claim {rec.claim_id} was already filed", field="claim_id")
    uow.add(
        Claim(
            claim_id=rec.claim_id,
            region=rec.region,
            pack=pack,
            subsidy_kind=rec.subsidy_kind,
            class_id=rec.class_id,
            amount_fen=rec.amount,
            handled_by=rec.handled_by,
            claimant_id=rec.claimant_id,
        )
    )
    return pack


def claim_reviewed(uow: UnitOfWork, rec: Any) -> str | None:
    c = _claim(uow, rec.claim_id)
    c.review(decision=rec.decision, approved_fen=rec.approved_amount, reviewer_id=rec.reviewer_id)
    return c.pack


def notice(uow: UnitOfWork, rec: Any) -> str | None:
    return _claim(uow, rec.claim_id).pack


def payment(uow: UnitOfWork, rec: Any) -> str | None:
    pack_code = _require_pack(rec.region)
    c = _claim(uow, rec.claim_id)
    _claim_key(uow, "payment_id", rec.payment_id, rec)
    # The contract's order of reasons: claim_not_approved, fund_not_permitted,
    # exceeds_approved, overdraft.
    c.check_payment(rec.amount)
    pack = pack_for(rec.region)
    if not pack.may_pay(rec.fund_source, c.subsidy_kind):
        raise RuleViolation(
            "fund_not_permitted",
            f"{pack_code} pack does not let {rec.fund_source} pay {c.subsidy_kind} "
            f"({pack.cite('fund_permissions')})",
            field="fund_source",
        )
    c.check_within_approved(rec.amount)
    acct = _fund(uow, rec.fund_source, pack_code, create=False)
    balance = 0 if acct is None else acct.balance_fen
    if acct is None or balance < rec.amount:
        raise RuleViolation(
            "overdraft",
            f"payment of {fen_to_yuan(rec.amount)} exceeds the balance {fen_to_yuan(balance)} of {rec.fund_source} in {pack_code}",
            field="amount",
        )
    txn = Transaction(
        txn_id=f"payment:{rec.id}",
        kind="payment",
        date=_local_date(rec),
        at=rec.at.isoformat(),
        record_type=rec.type,
        record_id=rec.id,
        fund_source=rec.fund_source,
        region=pack_code,
        subsidy_kind=c.subsidy_kind,
        claim_id=rec.claim_id,
        payee_id=rec.payee_id,
        postings=payment_postings(rec.fund_source, pack_code, c.subsidy_kind, rec.amount),
    )
    acct.post(txn)
    c.paid(payment_id=rec.payment_id, fen=rec.amount, fund_source=rec.fund_source, region=pack_code)
    uow.add(EntityKey(kind="payment_id", value=rec.payment_id, record_id=rec.id))
    return pack_code


def recovery(uow: UnitOfWork, rec: Any) -> str | None:
    c = _claim(uow, rec.claim_id)
    _claim_key(uow, "recovery_id", rec.recovery_id, rec)
    c.check_recovery(rec.amount)
    if c.last_fund is None:  # check_recovery already refuses when nothing was paid
        raise RuntimeError(f"claim {c.claim_id} has payments but no fund")
    fund_source, region = c.last_fund
    acct = _fund(uow, fund_source, region, create=False)
    if acct is None:
        raise RuntimeError(f"claim {c.claim_id} was paid from {fund_source}/{region}, which has no account")
    txn = Transaction(
        txn_id=f"recovery:{rec.id}",
        kind="recovery",
        date=_local_date(rec),
        at=rec.at.isoformat(),
        record_type=rec.type,
        record_id=rec.id,
        fund_source=fund_source,
        region=region,
        subsidy_kind=c.subsidy_kind,
        claim_id=rec.claim_id,
        postings=recovery_postings(fund_source, region, c.subsidy_kind, rec.amount),
    )
    acct.post(txn)
    c.recovered(recovery_id=rec.recovery_id, fen=rec.amount)
    uow.add(EntityKey(kind="recovery_id", value=rec.recovery_id, record_id=rec.id))
    return region


def bank_statement(uow: UnitOfWork, rec: Any) -> str | None:
    return None


HANDLERS: dict[str, Handler] = {
    "appropriation": appropriation,
    "institution": institution,
    "project": project,
    "class_opened": class_opened,
    "class_reviewed": class_reviewed,
    "enrollment": enrollment,
    "attendance": attendance,
    "inspection": inspection,
    "completion": completion,
    "person_status": person_status,
    "claim": claim,
    "claim_reviewed": claim_reviewed,
    "notice": notice,
    "payment": payment,
    "recovery": recovery,
    "bank_statement": bank_statement,
}
