"""Public disclosure of fund use (定期向社会公开资金使用情况, 武政办〔2020〕10号 二(二)4).

For one pack region and one period (``2024Q3``, ``2024`` or ``2024-03``), from
the 台账 views (payments and recoveries by their transaction date):

* totals per subsidy kind and fund source: payments, amount paid, amount
  recovered, net;
* totals per institution (培训机构, by the claim's class, or the claimant when
  the claimant is an institution); enterprise claimants by their credit
  code; claims filed by individuals are summed in one row, never listed;
* the number of distinct trainees named on claims paid in the period;
* the recoveries (追回) of the period, each with its claim and reason.

Nothing here may name a person: the output has counts of trainees, never
their ids; any payee or claimant who is a person is masked
(``ledger.ids.mask_party``); and as a last guard every text cell is scrubbed
so that anything shaped like a resident id (``\\d{17}[\\dX]``) is masked
(``420106********123X``), whatever free text (a recovery reason) carried it.
"""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

from ledger.ids import mask_party
from ledger.money import fen_to_yuan
from projections.balances import pack_region
from projections.disbursements import scrub
from projections.reports import Period, parse_period
from projections.store import ViewStore

INDIVIDUALS = "个人申领 individual claimants"


def disclosure(store: ViewStore, *, region: str, period: str | Period) -> dict[str, Any]:
    """The disclosure figures (money in int fen) for one pack region and period."""
    per = parse_period(period) if isinstance(period, str) else period
    rg = pack_region(region)
    span = (rg, per.start, per.end)
    inst_key = "COALESCE(k.institution_id, CASE WHEN c.claimant_kind = 'institution' THEN c.claimant_id END)"
    joins = (
        " JOIN view_ledger_claim c ON c.claim_id = x.claim_id"
        " LEFT JOIN view_ledger_class k ON k.class_id = c.class_id"
    )
    in_period = " WHERE x.region = ? AND x.date >= ? AND x.date <= ?"
    with store.transaction() as tx:
        paid = tx.query(
            "SELECT c.subsidy_kind, x.fund_source, COUNT(*), SUM(x.amount) FROM view_ledger_payment x"
            f"{joins}{in_period} GROUP BY c.subsidy_kind, x.fund_source",
            span,
        )
        recovered = tx.query(
            "SELECT c.subsidy_kind, x.fund_source, COUNT(*), SUM(x.amount) FROM view_ledger_recovery x"
            f"{joins}{in_period} GROUP BY c.subsidy_kind, x.fund_source",
            span,
        )
        per_inst_paid = tx.query(
            f"SELECT {inst_key}, c.claimant_kind, c.claimant_id, COUNT(DISTINCT x.claim_id), COUNT(*), SUM(x.amount) "
            f"FROM view_ledger_payment x{joins}{in_period} GROUP BY {inst_key}, c.claimant_kind, c.claimant_id",
            span,
        )
        per_inst_trainees = tx.query(
            f"SELECT {inst_key}, c.claimant_kind, c.claimant_id, COUNT(DISTINCT t.trainee_id) "
            "FROM view_ledger_claim_trainee t JOIN view_ledger_claim c ON c.claim_id = t.claim_id "
            "LEFT JOIN view_ledger_class k ON k.class_id = c.class_id "
            "WHERE t.claim_id IN (SELECT x.claim_id FROM view_ledger_payment x"
            f"{in_period}) GROUP BY {inst_key}, c.claimant_kind, c.claimant_id",
            span,
        )
        per_inst_rec = tx.query(
            f"SELECT {inst_key}, c.claimant_kind, c.claimant_id, SUM(x.amount) "
            f"FROM view_ledger_recovery x{joins}{in_period} GROUP BY {inst_key}, c.claimant_kind, c.claimant_id",
            span,
        )
        trainees = tx.query(
            "SELECT COUNT(DISTINCT t.trainee_id) FROM view_ledger_claim_trainee t "
            f"WHERE t.claim_id IN (SELECT x.claim_id FROM view_ledger_payment x{in_period})",
            span,
        )[0][0]
        names = dict(tx.query("SELECT institution_id, name FROM view_ledger_institution"))
        recs = tx.query(
            "SELECT x.date, x.recovery_id, x.claim_id, c.subsidy_kind, x.fund_source, "
            f"{inst_key}, c.claimant_kind, c.claimant_id, x.amount, x.reason FROM view_ledger_recovery x{joins}"
            f"{in_period} ORDER BY x.date, x.position",
            span,
        )

    # per subsidy kind x fund source
    kinds: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, fs, n, amt in paid:
        row = kinds.setdefault((kind, fs), _kind_row(kind, fs))
        row["payments"] += int(n)
        row["paid"] += int(amt or 0)
    for kind, fs, n, amt in recovered:
        row = kinds.setdefault((kind, fs), _kind_row(kind, fs))
        row["recoveries"] += int(n)
        row["recovered"] += int(amt or 0)
    by_kind = [kinds[k] for k in sorted(kinds)]
    for row in by_kind:
        row["net"] = row["paid"] - row["recovered"]

    # per institution
    insts: dict[str, dict[str, Any]] = {}

    def inst_row(inst_id: str | None, claimant_kind: str | None, claimant_id: str | None) -> dict[str, Any]:
        if inst_id:
            key, label, code = inst_id, names.get(inst_id) or "", mask_party(inst_id)
        elif claimant_kind == "enterprise" and claimant_id:
            key, label, code = f"enterprise:{claimant_id}", "企业 enterprise", mask_party(claimant_id)
        else:
            key, label, code = "individuals", INDIVIDUALS, ""
        row = insts.get(key)
        if row is None:
            row = insts[key] = {"institution": label, "code": code, "claims": 0, "payments": 0, "trainees": 0,
                                "paid": 0, "recovered": 0}
        return row

    for inst_id, ck, cid, claims, n, amt in per_inst_paid:
        row = inst_row(inst_id, ck, cid)
        row["claims"] += int(claims)
        row["payments"] += int(n)
        row["paid"] += int(amt or 0)
    for inst_id, ck, cid, n in per_inst_trainees:
        inst_row(inst_id, ck, cid)["trainees"] += int(n)
    for inst_id, ck, cid, amt in per_inst_rec:
        inst_row(inst_id, ck, cid)["recovered"] += int(amt or 0)
    by_inst = sorted(insts.values(), key=lambda r: (r["institution"] == INDIVIDUALS, -r["paid"], r["code"], r["institution"]))
    for row in by_inst:
        row["net"] = row["paid"] - row["recovered"]

    recoveries = []
    for d, rid, cid, kind, fs, inst_id, ck, claimant, amt, reason in recs:
        if inst_id:
            who = names.get(inst_id) or mask_party(inst_id)
        elif ck == "enterprise":
            who = mask_party(claimant)
        else:
            who = INDIVIDUALS
        recoveries.append({"date": d, "recovery_id": rid, "claim_id": cid, "subsidy_kind": kind, "fund_source": fs,
                           "institution": who, "amount": int(amt), "reason": scrub(reason)})

    return {
        "region": rg,
        "period": per.label,
        "from": per.start,
        "to": per.end,
        "paid_total": sum(r["paid"] for r in by_kind),
        "recovered_total": sum(r["recovered"] for r in by_kind),
        "payments": sum(r["payments"] for r in by_kind),
        "trainees": int(trainees or 0),
        "by_kind_and_fund": by_kind,
        "by_institution": by_inst,
        "recoveries": recoveries,
    }


def _kind_row(kind: str, fs: str) -> dict[str, Any]:
    return {"subsidy_kind": kind, "fund_source": fs, "payments": 0, "paid": 0, "recoveries": 0, "recovered": 0}


# ---------------------------------------------------------------- rendering

_Y = fen_to_yuan


def _sections(d: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, all cells already text."""
    return [
        (
            "汇总 summary",
            ["统筹区 region", "期间 period", "起 from", "止 to", "支付笔数 payments", "支付金额 paid",
             "追回金额 recovered", "净支出 net", "受益人数 trainees"],
            [[d["region"], d["period"], d["from"], d["to"], str(d["payments"]), _Y(d["paid_total"]),
              _Y(d["recovered_total"]), _Y(d["paid_total"] - d["recovered_total"]), str(d["trainees"])]],
        ),
        (
            "按补贴类别和资金来源 by subsidy kind and fund source",
            ["补贴类别 subsidy_kind", "资金来源 fund_source", "支付笔数 payments", "支付金额 paid",
             "追回笔数 recoveries", "追回金额 recovered", "净支出 net"],
            [[r["subsidy_kind"], r["fund_source"], str(r["payments"]), _Y(r["paid"]), str(r["recoveries"]),
              _Y(r["recovered"]), _Y(r["net"])] for r in d["by_kind_and_fund"]],
        ),
        (
            "按培训机构 by institution",
            ["培训机构 institution", "代码 code", "申领数 claims", "支付笔数 payments", "人数 trainees",
             "支付金额 paid", "追回金额 recovered", "净支出 net"],
            [[r["institution"], r["code"], str(r["claims"]), str(r["payments"]), str(r["trainees"]), _Y(r["paid"]),
              _Y(r["recovered"]), _Y(r["net"])] for r in d["by_institution"]],
        ),
        (
            "追回 recoveries",
            ["日期 date", "追回单号 recovery_id", "申领单号 claim_id", "补贴类别 subsidy_kind", "资金来源 fund_source",
             "培训机构 institution", "金额 amount", "原因 reason"],
            [[r["date"], r["recovery_id"], r["claim_id"], r["subsidy_kind"], r["fund_source"] or "",
              r["institution"], _Y(r["amount"]), r["reason"]] for r in d["recoveries"]],
        ),
    ]


def to_csv(d: dict[str, Any]) -> str:
    """All tables in one CSV, a title row before each (write it as UTF-8 with BOM)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([scrub(f"职业技能提升行动专账资金使用情况公开 fund use disclosure — {d['region']} {d['period']}")])
    for title, header, rows in _sections(d):
        w.writerow([])
        w.writerow([scrub(title)])
        w.writerow([scrub(h) for h in header])
        for row in rows:
            w.writerow([scrub(c) for c in row])
    return buf.getvalue()


_CSS = (
    "body{font-family:sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:0 0 2em 0}"
    "th,td{border:1px solid #999;padding:4px 8px;text-align:left}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "caption{text-align:left;font-weight:bold;margin:0 0 .5em 0}"
)
_NUMERIC = re.compile(r"^-?\d+(\.\d{2})?$")


def to_html(d: dict[str, Any]) -> str:
    """A self-contained UTF-8 page; every text is escaped (and scrubbed)."""
    e = html.escape
    title = f"职业技能提升行动专账资金使用情况公开 — {d['region']} {d['period']}"
    parts = [
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<title>{e(scrub(title))}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
        f"<h1>{e(scrub(title))}</h1>\n",
        f"<p>期间 period: {e(d['from'])} — {e(d['to'])}. 金额单位: 元 (CNY). "
        "个人信息已脱敏 personal data masked.</p>\n",
    ]
    for caption, header, rows in _sections(d):
        parts.append(f"<table>\n<caption>{e(scrub(caption))}</caption>\n<thead><tr>")
        parts.extend(f"<th>{e(scrub(h))}</th>" for h in header)
        parts.append("</tr></thead>\n<tbody>\n")
        if not rows:
            parts.append(f"<tr><td colspan=\"{len(header)}\">无 none</td></tr>\n")
        for row in rows:
            parts.append("<tr>")
            for c in row:
                cls = ' class="n"' if _NUMERIC.match(c) else ""
                parts.append(f"<td{cls}>{e(scrub(c))}</td>")
            parts.append("</tr>\n")
        parts.append("</tbody>\n</table>\n")
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def to_json(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    for k in ("paid_total", "recovered_total"):
        out[k] = _Y(d[k])
    out["by_kind_and_fund"] = [{**r, **{m: _Y(r[m]) for m in ("paid", "recovered", "net")}} for r in d["by_kind_and_fund"]]
    out["by_institution"] = [{**r, **{m: _Y(r[m]) for m in ("paid", "recovered", "net")}} for r in d["by_institution"]]
    out["recoveries"] = [{**r, "amount": _Y(r["amount"])} for r in d["recoveries"]]
    return out
