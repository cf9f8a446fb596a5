"""季报 / 年报: quarterly and annual figures per pack region.

周政办发〔2020〕2号 (四) 建立统一的工作季报和年报制度. For a region and a
period (``2024Q1`` … ``2024Q4``, a year ``2024``, or a month ``2024-03``):

* classes opened (开班数): classes whose ``start_date`` falls in the period,
  and how many of them were approved at review;
* trainees enrolled (参训人次 and distinct persons 人数): enrollments whose
  record date falls in the period (a trainee enrolled twice in one class
  counts once);
* completions (结业) and passes (合格) by the completion record's date, the
  latest result per trainee and class counting;
* certificates by kind (取证): passed completions with a certificate other
  than ``none``;
* money paid per subsidy kind and recoveries per kind, from the balances
  view (transaction dates).

Record dates are the local date of each record's ``at`` (its own offset).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from typing import Any

from ledger.money import fen_to_yuan
from projections import feed
from projections.balances import pack_region
from projections.runner import Projection
from projections.store import Tx, ViewStore

_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Period:
    label: str
    start: str  # inclusive YYYY-MM-DD
    end: str  # inclusive YYYY-MM-DD
    kind: str  # quarter | year | month


def parse_period(text: str) -> Period:
    """``2024Q3`` (quarter), ``2024`` (year) or ``2024-03`` (month)."""
    s = text.strip()
    m = _QUARTER.match(s)
    if m:
        y, q = int(m.group(1)), int(m.group(2))
        first, last = 3 * q - 2, 3 * q
        return Period(f"{y}Q{q}", f"{y:04d}-{first:02d}-01", f"{y:04d}-{last:02d}-{calendar.monthrange(y, last)[1]:02d}", "quarter")
    m = _YEAR.match(s)
    if m:
        y = int(m.group(1))
        return Period(f"{y}", f"{y:04d}-01-01", f"{y:04d}-12-31", "year")
    m = _MONTH.match(s)
    if m:
        y, mo = int(m.group(1)), int(m.group(2))
        return Period(s, f"{y:04d}-{mo:02d}-01", f"{y:04d}-{mo:02d}-{calendar.monthrange(y, mo)[1]:02d}", "month")
    raise ValueError(f"period must look like 2024Q3, 2024 or 2024-03, not {text!r}")


class ReportsProjection(Projection):
    name = "reports"
    version = "1"
    tables = ("view_report_class", "view_report_enrollment", "view_report_completion")
    accepted_types = frozenset({"class_opened", "class_reviewed", "enrollment", "completion"})

    def __init__(self) -> None:
        self.reset()

    def ddl(self, store: ViewStore) -> list[str]:
        b = store.bigint
        return [
            "CREATE TABLE IF NOT EXISTS view_report_class (class_id TEXT PRIMARY KEY, pack TEXT, start_date TEXT, "
            f"opened_date TEXT, institution_id TEXT, project_id TEXT, decision TEXT, position {b} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS view_report_enrollment (class_id TEXT NOT NULL, trainee_id TEXT NOT NULL, "
            "pack TEXT, date TEXT NOT NULL, category TEXT, PRIMARY KEY (class_id, trainee_id))",
            "CREATE INDEX IF NOT EXISTS view_report_enrollment_pack_date ON view_report_enrollment (pack, date)",
            "CREATE TABLE IF NOT EXISTS view_report_completion (class_id TEXT NOT NULL, trainee_id TEXT NOT NULL, "
            f"pack TEXT, date TEXT NOT NULL, passed {b} NOT NULL, certificate_kind TEXT, "
            "PRIMARY KEY (class_id, trainee_id))",
            "CREATE INDEX IF NOT EXISTS view_report_completion_pack_date ON view_report_completion (pack, date)",
        ]

    def reset(self) -> None:
        self._classes: list[tuple] = []
        self._reviews: dict[str, str] = {}
        self._enr: dict[tuple[str, str], tuple] = {}
        self._comp: dict[tuple[str, str], tuple] = {}

    def on_accepted(self, item: feed.Accepted) -> None:
        r = item.record
        t = item.type
        if t == "enrollment":
            key = (r["class_id"], r["trainee_id"])
            if key not in self._enr:  # the first enrollment counts
                self._enr[key] = (item.pack, r["at"][:10], r.get("category"))
        elif t == "completion":
            self._comp[(r["class_id"], r["trainee_id"])] = (
                item.pack, r["at"][:10], 1 if r.get("passed") else 0, r.get("certificate_kind")
            )
        elif t == "class_opened":
            self._classes.append(
                (r["class_id"], item.pack, r["start_date"], r["at"][:10], r["institution_id"], r["project_id"], item.position)
            )
        elif t == "class_reviewed":
            self._reviews[r["class_id"]] = r["decision"]

    def flush(self, tx: Tx) -> None:
        tx.executemany(
            "INSERT INTO view_report_class (class_id, pack, start_date, opened_date, institution_id, project_id, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            self._classes,
        )
        tx.executemany(
            "UPDATE view_report_class SET decision = ? WHERE class_id = ?", [(d, c) for c, d in self._reviews.items()]
        )
        tx.executemany(
            "INSERT INTO view_report_enrollment (class_id, trainee_id, pack, date, category) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (class_id, trainee_id) DO NOTHING",
            [(*k, *v) for k, v in self._enr.items()],
        )
        tx.executemany(
            "INSERT INTO view_report_completion (class_id, trainee_id, pack, date, passed, certificate_kind) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (class_id, trainee_id) DO UPDATE SET pack = excluded.pack, "
            "date = excluded.date, passed = excluded.passed, certificate_kind = excluded.certificate_kind",
            [(*k, *v) for k, v in self._comp.items()],
        )


# ---------------------------------------------------------------- the report


def report(store: ViewStore, *, region: str, period: str | Period) -> dict[str, Any]:
    """The 季报/年报 figures for one pack region and period (money in int fen)."""
    per = parse_period(period) if isinstance(period, str) else period
    rg = pack_region(region)
    span = (rg, per.start, per.end)
    with store.transaction() as tx:
        classes, approved = tx.query(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN decision = 'approved' THEN 1 ELSE 0 END), 0) "
            "FROM view_report_class WHERE pack = ? AND start_date >= ? AND start_date <= ?",
            span,
        )[0]
        enrolled, persons = tx.query(
            "SELECT COUNT(*), COUNT(DISTINCT trainee_id) FROM view_report_enrollment "
            "WHERE pack = ? AND date >= ? AND date <= ?",
            span,
        )[0]
        completed, passed = tx.query(
            "SELECT COUNT(*), COALESCE(SUM(passed), 0) FROM view_report_completion "
            "WHERE pack = ? AND date >= ? AND date <= ?",
            span,
        )[0]
        certs = tx.query(
            "SELECT certificate_kind, COUNT(*) FROM view_report_completion WHERE pack = ? AND date >= ? AND date <= ? "
            "AND passed = 1 AND certificate_kind IS NOT NULL AND certificate_kind <> 'none' "
            "GROUP BY certificate_kind ORDER BY certificate_kind",
            span,
        )
        money = tx.query(
            "SELECT subsidy_kind, SUM(paid), SUM(recovered), SUM(CASE WHEN paid > 0 THEN txns ELSE 0 END) "
            "FROM view_balance_daily WHERE region = ? AND date >= ? AND date <= ? AND subsidy_kind <> '' "
            "GROUP BY subsidy_kind ORDER BY subsidy_kind",
            span,
        )
    by_kind = [
        {"subsidy_kind": k, "paid": int(p or 0), "recovered": int(r or 0), "net": int(p or 0) - int(r or 0)}
        for k, p, r, _ in money
    ]
    return {
        "region": rg,
        "period": per.label,
        "from": per.start,
        "to": per.end,
        "classes_opened": int(classes),
        "classes_approved": int(approved or 0),
        "enrollments": int(enrolled),
        "trainees_enrolled": int(persons),
        "completions": int(completed),
        "completions_passed": int(passed or 0),
        "certificates": {k: int(n) for k, n in certs},
        "money_by_subsidy_kind": by_kind,
        "paid_total": sum(r["paid"] for r in by_kind),
        "recovered_total": sum(r["recovered"] for r in by_kind),
    }


def report_json(rep: dict[str, Any]) -> dict[str, Any]:
    out = dict(rep)
    out["money_by_subsidy_kind"] = [
        {**r, "paid": fen_to_yuan(r["paid"]), "recovered": fen_to_yuan(r["recovered"]), "net": fen_to_yuan(r["net"])}
        for r in rep["money_by_subsidy_kind"]
    ]
    out["paid_total"] = fen_to_yuan(rep["paid_total"])
    out["recovered_total"] = fen_to_yuan(rep["recovered_total"])
    return out


def report_table(rep: dict[str, Any]) -> str:
    lines = [
        f"季报/年报 report — region {rep['region']}, period {rep['period']} ({rep['from']} .. {rep['to']})",
        "",
        f"  开班数 classes opened            {rep['classes_opened']:>10}",
        f"  审核通过 classes approved        {rep['classes_approved']:>10}",
        f"  参训人次 enrollments             {rep['enrollments']:>10}",
        f"  参训人数 trainees (distinct)     {rep['trainees_enrolled']:>10}",
        f"  结业 completions                 {rep['completions']:>10}",
        f"  合格 completions passed          {rep['completions_passed']:>10}",
        "",
        "  取证 certificates by kind",
    ]
    if rep["certificates"]:
        for k, n in rep["certificates"].items():
            lines.append(f"    {k:<28} {n:>10}")
    else:
        lines.append("    (none)")
    lines += ["", f"  {'补贴类别 subsidy kind':<24} {'支付 paid':>16} {'追回 recovered':>16} {'净额 net':>16}"]
    for r in rep["money_by_subsidy_kind"]:
        lines.append(
            f"  {r['subsidy_kind']:<24} {fen_to_yuan(r['paid']):>16} {fen_to_yuan(r['recovered']):>16} {fen_to_yuan(r['net']):>16}"
        )
    lines.append(
        f"  {'合计 total':<24} {fen_to_yuan(rep['paid_total']):>16} {fen_to_yuan(rep['recovered_total']):>16} "
        f"{fen_to_yuan(rep['paid_total'] - rep['recovered_total']):>16}"
    )
    return "\n".join(lines) + "\n"
