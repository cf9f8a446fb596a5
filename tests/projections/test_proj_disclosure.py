"""Public disclosure (csv and html) and the 季报/年报 report."""

from __future__ import annotations

import csv
import html.parser
import io
import re

import pytest
from projhelp import PERSON, PERSON2, individual_lines

from projections.balances import balances
from projections.disclosure import disclosure, to_csv, to_html, to_json
from projections.reports import parse_period, report, report_json, report_table

RESIDENT = re.compile(r"\b\d{17}[\dX]\b")


@pytest.fixture
def books(books_factory, sim_lines):
    b = books_factory()
    b.submit(individual_lines())
    b.catch_up()
    return b


def test_disclosure_totals(books):
    d = disclosure(books.store, region="320500", period="2024")
    assert (d["region"], d["period"], d["from"], d["to"]) == ("320500", "2024", "2024-01-01", "2024-12-31")
    assert d["paid_total"] == 60_000 + 150_000 and d["recovered_total"] == 30_000 + 50_000
    assert d["payments"] == 2
    assert d["trainees"] == 2  # PERSON is on both claims: counted once
    kinds = {(r["subsidy_kind"], r["fund_source"]): r for r in d["by_kind_and_fund"]}
    assert kinds[("training", "ui_surplus")]["paid"] == 60_000
    assert kinds[("skill_upgrade", "ui_surplus")]["recovered"] == 50_000
    inst = {r["institution"]: r for r in d["by_institution"]}
    school = inst["苏州市高新区某职业培训学校"]
    assert (school["claims"], school["trainees"], school["paid"], school["recovered"], school["net"]) == (1, 2, 60_000, 30_000, 30_000)
    assert inst["个人申领 individual claimants"]["paid"] == 150_000
    assert [r["recovery_id"] for r in d["recoveries"]] == ["rc-0001", "rc-ind-1"]
    # the disclosure agrees with the books
    [bal] = balances(books.store)
    assert (bal["paid"], bal["recovered"]) == (d["paid_total"], d["recovered_total"])


def test_disclosure_by_quarter(books):
    q1 = disclosure(books.store, region="320500", period="2024Q1")
    assert q1["paid_total"] == 60_000 and q1["recovered_total"] == 30_000 and q1["trainees"] == 2
    q3 = disclosure(books.store, region="320500", period="2024Q3")
    assert q3["paid_total"] == 150_000 and q3["trainees"] == 1
    assert disclosure(books.store, region="320500", period="2024Q4")["paid_total"] == 0
    assert disclosure(books.store, region="420100", period="2024")["by_institution"] == []


@pytest.mark.parametrize("render", [to_csv, to_html])
def test_no_unmasked_resident_id_anywhere(books, render):
    text = render(disclosure(books.store, region="320500", period="2024"))
    assert not RESIDENT.search(text), RESIDENT.search(text)
    assert PERSON not in text and PERSON2 not in text
    assert "320505********0302" in text  # the recovery reason, masked


def test_no_unmasked_resident_id_in_a_simulated_year(books_factory, sim_lines):
    b = books_factory()
    b.submit(sim_lines(seed=9, classes=8, region="420100"))
    b.catch_up()
    d = disclosure(b.store, region="420100", period="2024")
    assert d["paid_total"] > 0 and d["trainees"] > 0
    for text in (to_csv(d), to_html(d), str(to_json(d))):
        assert not RESIDENT.search(text)


def test_csv_layout(books):
    text = to_csv(disclosure(books.store, region="320500", period="2024Q3"))
    rows = list(csv.reader(io.StringIO(text)))
    titles = [r[0] for r in rows if len(r) == 1]
    assert titles[1:] == ["汇总 summary", "按补贴类别和资金来源 by subsidy kind and fund source", "按培训机构 by institution",
                          "追回 recoveries"]
    i = [r[0] if r else "" for r in rows].index("统筹区 region")
    assert rows[i + 1][:6] == ["320500", "2024Q3", "2024-07-01", "2024-09-30", "1", "1500.00"]


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_and_escaped(books):
    page = to_html(disclosure(books.store, region="320500", period="2024"))
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "&lt;revoked&gt; &amp; re-examined" in page  # the reason's markup is text
    p = _Collect()
    p.feed(page)
    assert p.tags.count("table") == 4
    assert "苏州市高新区某职业培训学校" in "".join(p.text)


def test_report_quarter_and_year(books_factory):
    b = books_factory()
    b.submit(individual_lines())
    b.catch_up()
    q1 = report(b.store, region="320500", period="2024Q1")
    assert (q1["classes_opened"], q1["classes_approved"], q1["enrollments"], q1["trainees_enrolled"]) == (1, 1, 2, 2)
    assert (q1["completions"], q1["completions_passed"]) == (2, 2)
    assert q1["certificates"] == {"special_ability": 2}
    assert q1["money_by_subsidy_kind"] == [{"subsidy_kind": "training", "paid": 60_000, "recovered": 30_000, "net": 30_000}]
    year = report(b.store, region="320505", period="2024")
    assert year["paid_total"] == 210_000 and year["recovered_total"] == 80_000
    assert {r["subsidy_kind"] for r in year["money_by_subsidy_kind"]} == {"training", "skill_upgrade"}
    q2 = report(b.store, region="320500", period="2024Q2")
    assert (q2["classes_opened"], q2["enrollments"], q2["paid_total"]) == (0, 0, 0)
    j = report_json(year)
    assert j["paid_total"] == "2100.00"
    assert "开班数 classes opened" in report_table(q1)


def test_report_counts_match_the_simulated_records(books_factory, sim_lines):
    import json

    lines = sim_lines(seed=9, classes=8, region="420100")
    b = books_factory()
    b.submit(lines)
    b.catch_up()
    rep = report(b.store, region="420100", period="2024")
    recs = [json.loads(x) for x in lines]
    opened = {r["class_id"] for r in recs if r["type"] == "class_opened" and r["start_date"].startswith("2024")}
    assert rep["classes_opened"] <= len(opened) and rep["classes_opened"] > 0
    assert rep["enrollments"] <= sum(1 for r in recs if r["type"] == "enrollment")
    assert rep["completions_passed"] <= rep["completions"]


def test_parse_period():
    assert parse_period("2024Q3") == parse_period("2024q3")
    p = parse_period("2024Q1")
    assert (p.start, p.end, p.kind) == ("2024-01-01", "2024-03-31", "quarter")
    assert (parse_period("2024").start, parse_period("2024").end) == ("2024-01-01", "2024-12-31")
    assert parse_period("2024-02").end == "2024-02-29"
    for bad in ("2024Q5", "24Q1", "2024-13", "Q3"):
        with pytest.raises(ValueError):
            parse_period(bad)
