"""补贴资金发放台账: the disbursement ledger, one row per payment and per recovery.

武政办〔2020〕10号 二(二)4 asks for 建立完善补贴资金发放台账: every subsidy paid,
with what it was for and who decided it. A row of the 台账 joins:

* the payment (拨付): date, fund source, pack region, amount, payee (masked
  when a person), bank reference, ``approved_by`` (批准人);
* its claim (补贴申领): subsidy kind, claimed and approved amounts, number of
  trainees, ``handled_by`` (经办人), and the review's ``reviewer_id`` (审核人);
* the class (班次), its project (occupation name and level) and institution
  (name);
* recoveries (追回) appear as their own rows against the same claim, so that
  the money columns add up.

The projection keeps one table per entity (``view_ledger_*``), rows per
payment and recovery, and joins them at query time: a later institution
record (a new name) shows on every row, and nothing has to be held in memory
between chunks.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from ledger.ids import mask_party, mask_resident_id
from ledger.money import fen_to_decimal, fen_to_yuan, parse_fen
from projections import feed
from projections.runner import Projection
from projections.store import Tx, ViewStore, where

TYPES = frozenset(
    {"institution", "project", "class_opened", "claim", "claim_reviewed", "payment", "recovery"}
)

ENTRY_PAYMENT = "payment"
ENTRY_RECOVERY = "recovery"
ENTRY_LABEL = {ENTRY_PAYMENT: "拨付", ENTRY_RECOVERY: "追回"}
_RESIDENT_ANYWHERE = re.compile(r"\d{17}[\dXx]")


def scrub(text: Any) -> str:
    """Free text with anything shaped like a resident id masked (420106********123X)."""
    if text is None:
        return ""
    return _RESIDENT_ANYWHERE.sub(lambda m: mask_resident_id(m.group(0).upper()), str(text))


class DisbursementsProjection(Projection):
    name = "disbursements"
    version = "1"
    tables = (
        "view_ledger_institution",
        "view_ledger_project",
        "view_ledger_class",
        "view_ledger_claim",
        "view_ledger_claim_trainee",
        "view_ledger_payment",
        "view_ledger_recovery",
    )
    accepted_types = TYPES
    wants_posted = True

    def __init__(self) -> None:
        self.reset()

    def ddl(self, store: ViewStore) -> list[str]:
        b = store.bigint
        return [
            "CREATE TABLE IF NOT EXISTS view_ledger_institution (institution_id TEXT PRIMARY KEY, "
            f"name TEXT NOT NULL, region TEXT NOT NULL, pack TEXT, status TEXT NOT NULL, position {b} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS view_ledger_project (project_id TEXT PRIMARY KEY, occupation_code TEXT, "
            "occupation_name TEXT, level TEXT, training_kind TEXT, pack TEXT, "
            f"subsidy_per_trainee {b}, position {b} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS view_ledger_class (class_id TEXT PRIMARY KEY, institution_id TEXT, "
            "project_id TEXT, pack TEXT, start_date TEXT, end_date TEXT, opened_date TEXT, "
            f"planned_headcount {b}, position {b} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS view_ledger_claim (claim_id TEXT PRIMARY KEY, record_id TEXT NOT NULL, "
            "pack TEXT, region TEXT, subsidy_kind TEXT, class_id TEXT, claimant_id TEXT, claimant_kind TEXT, "
            f"amount {b} NOT NULL, trainees {b} NOT NULL, handled_by TEXT, date TEXT, "
            f"reviewer_id TEXT, decision TEXT, approved {b}, reviewed_date TEXT, position {b} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS view_ledger_claim_trainee (claim_id TEXT NOT NULL, trainee_id TEXT NOT NULL, "
            "PRIMARY KEY (claim_id, trainee_id))",
            "CREATE TABLE IF NOT EXISTS view_ledger_payment (record_id TEXT PRIMARY KEY, payment_id TEXT NOT NULL, "
            "claim_id TEXT NOT NULL, fund_source TEXT NOT NULL, region TEXT NOT NULL, region_code TEXT NOT NULL, "
            f"date TEXT NOT NULL, at TEXT NOT NULL, amount {b} NOT NULL, payee_id TEXT, payee_account TEXT, "
            f"approved_by TEXT, bank_ref TEXT, position {b} NOT NULL)",
            "CREATE INDEX IF NOT EXISTS view_ledger_payment_region_date ON view_ledger_payment (region, date)",
            "CREATE INDEX IF NOT EXISTS view_ledger_payment_claim ON view_ledger_payment (claim_id)",
            # A recovery's record (Accepted) and its posting (Posted) come in the
            # same ledger batch but in either order: each upserts its columns.
            "CREATE TABLE IF NOT EXISTS view_ledger_recovery (record_id TEXT PRIMARY KEY, recovery_id TEXT, "
            f"claim_id TEXT NOT NULL, date TEXT NOT NULL, amount {b} NOT NULL, reason TEXT, "
            f"fund_source TEXT, region TEXT, position {b})",
            "CREATE INDEX IF NOT EXISTS view_ledger_recovery_claim ON view_ledger_recovery (claim_id)",
        ]

    def reset(self) -> None:
        self._inst: dict[str, tuple] = {}
        self._proj: dict[str, tuple] = {}
        self._cls: list[tuple] = []
        self._claims: list[tuple] = []
        self._trainees: list[tuple[str, str]] = []
        self._reviews: dict[str, tuple] = {}
        self._pays: list[tuple] = []
        self._recs: list[tuple] = []
        self._rec_funds: list[tuple] = []

    def on_accepted(self, item: feed.Accepted) -> None:
        r = item.record
        t = item.type
        pos = item.position
        if t == "class_opened":
            self._cls.append(
                (r["class_id"], r["institution_id"], r["project_id"], item.pack, r["start_date"], r["end_date"],
                 r["at"][:10], r.get("planned_headcount"), pos)
            )
        elif t == "claim":
            tids = r.get("trainee_ids") or []
            self._claims.append(
                (r["claim_id"], item.id, item.pack, r["region"], r["subsidy_kind"], r.get("class_id"),
                 r["claimant_id"], r["claimant_kind"], parse_fen(r["amount"]), len(set(tids)), r["handled_by"],
                 r["at"][:10], pos)
            )
            cid = r["claim_id"]
            self._trainees.extend((cid, tid) for tid in dict.fromkeys(tids))
        elif t == "claim_reviewed":
            self._reviews[r["claim_id"]] = (
                r["reviewer_id"], r["decision"], parse_fen(r.get("approved_amount") or "0"), r["at"][:10]
            )
        elif t == "payment":
            self._pays.append(
                (item.id, r["payment_id"], r["claim_id"], r["fund_source"], item.pack, r["region"], r["at"][:10],
                 r["at"], parse_fen(r["amount"]), r.get("payee_id"), r.get("payee_account"), r.get("approved_by"),
                 r.get("bank_ref"), pos)
            )
        elif t == "recovery":
            self._recs.append(
                (item.id, r["recovery_id"], r["claim_id"], r["at"][:10], parse_fen(r["amount"]), r.get("reason"), pos)
            )
        elif t == "institution":
            self._inst[r["institution_id"]] = (r["name"], r["region"], item.pack, r["status"], pos)
        elif t == "project":
            spt = r.get("subsidy_per_trainee")
            self._proj[r["project_id"]] = (
                r.get("occupation_code"), r.get("occupation_name"), str(r.get("level")), r.get("training_kind"),
                item.pack, parse_fen(spt) if spt else None, pos,
            )

    def on_posted(self, item: feed.Posted) -> None:
        t = item.txn
        if t["kind"] == "recovery":
            fund_acct = f"assets:fund:{t['fund_source']}:{t['region']}"
            fen = sum(p["fen"] for p in t["postings"] if p["account"] == fund_acct)
            self._rec_funds.append((t["record_id"], t["claim_id"], t["date"], fen, t["fund_source"], t["region"]))

    def flush(self, tx: Tx) -> None:
        tx.executemany(
            "INSERT INTO view_ledger_institution (institution_id, name, region, pack, status, position) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (institution_id) DO UPDATE SET name = excluded.name, "
            "region = excluded.region, pack = excluded.pack, status = excluded.status, position = excluded.position",
            [(k, *v) for k, v in self._inst.items()],
        )
        tx.executemany(
            "INSERT INTO view_ledger_project (project_id, occupation_code, occupation_name, level, training_kind, "
            "pack, subsidy_per_trainee, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id) DO UPDATE "
            "SET occupation_code = excluded.occupation_code, occupation_name = excluded.occupation_name, "
            "level = excluded.level, training_kind = excluded.training_kind, pack = excluded.pack, "
            "subsidy_per_trainee = excluded.subsidy_per_trainee, position = excluded.position",
            [(k, *v) for k, v in self._proj.items()],
        )
        tx.executemany(
            "INSERT INTO view_ledger_class (class_id, institution_id, project_id, pack, start_date, end_date, "
            "opened_date, planned_headcount, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._cls,
        )
        tx.executemany(
            "INSERT INTO view_ledger_claim (claim_id, record_id, pack, region, subsidy_kind, class_id, claimant_id, "
            "claimant_kind, amount, trainees, handled_by, date, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._claims,
        )
        tx.executemany(
            "INSERT INTO view_ledger_claim_trainee (claim_id, trainee_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            self._trainees,
        )
        tx.executemany(
            "UPDATE view_ledger_claim SET reviewer_id = ?, decision = ?, approved = ?, reviewed_date = ? WHERE claim_id = ?",
            [(*v, k) for k, v in self._reviews.items()],
        )
        tx.executemany(
            "INSERT INTO view_ledger_payment (record_id, payment_id, claim_id, fund_source, region, region_code, date, "
            "at, amount, payee_id, payee_account, approved_by, bank_ref, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._pays,
        )
        tx.executemany(
            "INSERT INTO view_ledger_recovery (record_id, recovery_id, claim_id, date, amount, reason, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO UPDATE SET recovery_id = excluded.recovery_id, "
            "reason = excluded.reason, position = excluded.position",
            self._recs,
        )
        tx.executemany(
            "INSERT INTO view_ledger_recovery (record_id, claim_id, date, amount, fund_source, region) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO UPDATE SET fund_source = excluded.fund_source, "
            "region = excluded.region",
            self._rec_funds,
        )


# ---------------------------------------------------------------- queries

# (key, header "中文 english") in the order the 台账 shows them.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("date", "日期 date"),
    ("entry", "类型 entry"),
    ("region", "统筹区 region"),
    ("fund_source", "资金来源 fund_source"),
    ("reference_id", "支付/追回单号 payment_or_recovery_id"),
    ("claim_id", "申领单号 claim_id"),
    ("subsidy_kind", "补贴类别 subsidy_kind"),
    ("claimed_amount", "申领金额 claimed_amount"),
    ("approved_amount", "审核金额 approved_amount"),
    ("paid_amount", "支付金额 paid_amount"),
    ("recovered_amount", "追回金额 recovered_amount"),
    ("class_id", "班次 class_id"),
    ("occupation", "职业(工种) occupation"),
    ("level", "等级 level"),
    ("institution", "培训机构 institution"),
    ("trainees", "人数 trainees"),
    ("payee", "收款人 payee"),
    ("bank_ref", "银行流水号 bank_ref"),
    ("handled_by", "经办人 handled_by"),
    ("reviewer_id", "审核人 reviewer_id"),
    ("approved_by", "批准人 approved_by"),
    ("note", "备注 note"),
)
MONEY_COLUMNS = frozenset({"claimed_amount", "approved_amount", "paid_amount", "recovered_amount"})

_CLAIM_JOIN = (
    " JOIN view_ledger_claim c ON c.claim_id = x.claim_id"
    " LEFT JOIN view_ledger_class k ON k.class_id = c.class_id"
    " LEFT JOIN view_ledger_project j ON j.project_id = k.project_id"
    " LEFT JOIN view_ledger_institution i ON i.institution_id ="
    " COALESCE(k.institution_id, CASE WHEN c.claimant_kind = 'institution' THEN c.claimant_id END)"
)
_CLAIM_COLS = (
    "c.subsidy_kind, c.amount, c.approved, c.class_id, j.occupation_name, j.level, i.name, "
    "COALESCE(k.institution_id, CASE WHEN c.claimant_kind = 'institution' THEN c.claimant_id END), "
    "c.trainees, c.handled_by, c.reviewer_id"
)


def _filters(region: str | None, date_from: str | None, date_to: str | None) -> tuple[str, list[Any]]:
    return where(("x.region = ?", region), ("x.date >= ?", date_from), ("x.date <= ?", date_to))


def ledger_rows(
    store: ViewStore, *, region: str | None = None, date_from: str | None = None, date_to: str | None = None
) -> list[dict[str, Any]]:
    """The 台账 rows (money in int fen), ordered by date and log position.

    ``region`` is a pack region code; ``date_from`` / ``date_to`` are
    inclusive ``YYYY-MM-DD`` dates of the payment or recovery.
    """
    where, params = _filters(region, date_from, date_to)
    pays = store.query(
        "SELECT x.date, x.position, x.region, x.fund_source, x.payment_id, x.claim_id, x.amount, x.payee_id, "
        f"x.bank_ref, x.approved_by, {_CLAIM_COLS} FROM view_ledger_payment x{_CLAIM_JOIN}{where}",
        params,
    )
    recs = store.query(
        "SELECT x.date, x.position, x.region, x.fund_source, x.recovery_id, x.claim_id, x.amount, x.reason, "
        f"{_CLAIM_COLS} FROM view_ledger_recovery x{_CLAIM_JOIN}{where}",
        params,
    )
    out: list[tuple[tuple[str, int], dict[str, Any]]] = []
    for (date, pos, rg, fs, pid, cid, amt, payee, bref, appr, kind, claimed, approved, class_id, occ, level,
         inst_name, inst_id, trainees, handled, reviewer) in pays:
        out.append(((date, int(pos or 0)), {
            "date": date, "entry": ENTRY_PAYMENT, "region": rg, "fund_source": fs, "reference_id": pid,
            "claim_id": cid, "subsidy_kind": kind, "claimed_amount": _int(claimed), "approved_amount": _int(approved),
            "paid_amount": int(amt), "recovered_amount": None, "class_id": class_id, "occupation": occ,
            "level": level, "institution": inst_name or (mask_party(inst_id) if inst_id else None),
            "trainees": _int(trainees), "payee": mask_party(payee) if payee else None, "bank_ref": bref,
            "handled_by": handled, "reviewer_id": reviewer, "approved_by": appr, "note": None,
        }))
    for (date, pos, rg, fs, rid, cid, amt, reason, kind, claimed, approved, class_id, occ, level, inst_name,
         inst_id, trainees, handled, reviewer) in recs:
        out.append(((date, int(pos or 0)), {
            "date": date, "entry": ENTRY_RECOVERY, "region": rg, "fund_source": fs, "reference_id": rid,
            "claim_id": cid, "subsidy_kind": kind, "claimed_amount": _int(claimed), "approved_amount": _int(approved),
            "paid_amount": None, "recovered_amount": int(amt), "class_id": class_id, "occupation": occ,
            "level": level, "institution": inst_name or (mask_party(inst_id) if inst_id else None),
            "trainees": _int(trainees), "payee": None, "bank_ref": None,
            "handled_by": handled, "reviewer_id": reviewer, "approved_by": None,
            "note": scrub(reason) if reason else None,
        }))
    out.sort(key=lambda t: t[0])
    return [row for _, row in out]


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _text(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in MONEY_COLUMNS:
        return fen_to_yuan(value)
    if key == "entry":
        return f"{ENTRY_LABEL[value]} {value}"
    return str(value)


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """CSV for Excel users: the caller opens ``out`` with encoding ``utf-8-sig``."""
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([h for _, h in COLUMNS])
    n = 0
    for row in rows:
        w.writerow([_text(k, row.get(k)) for k, _ in COLUMNS])
        n += 1
    return n


def csv_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    write_csv(rows, buf)
    return buf.getvalue().encode("utf-8-sig")


def write_xlsx(rows: Iterable[dict[str, Any]], path: Path | str, *, title: str = "补贴资金发放台账") -> int:
    """An .xlsx workbook (openpyxl, write-only): money as numbers formatted 0.00."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31])
    bold = Font(bold=True)
    header = []
    for _, h in COLUMNS:
        c = WriteOnlyCell(ws, value=h)
        c.font = bold
        header.append(c)
    ws.append(header)
    n = 0
    for row in rows:
        cells = []
        for k, _ in COLUMNS:
            v = row.get(k)
            if k in MONEY_COLUMNS and v is not None:
                c = WriteOnlyCell(ws, value=Decimal(fen_to_decimal(v)))
                c.number_format = "0.00"
            else:
                c = WriteOnlyCell(ws, value=_text(k, v) if k not in ("trainees",) else v)
            cells.append(c)
        ws.append(cells)
        n += 1
    wb.save(str(path))
    return n
