"""The reviewed calls and the people's decisions as spreadsheets: CSV (UTF-8 with a BOM, so that
Excel and WPS read the Chinese) and .xlsx (XlsxWriter, every text written as a string, so that no
cell is ever a formula). Masked as the pages are: customers' numbers in names, reasons and call ids.

Two tables, built here once and written either way:

- calls (复核通话): every call a person touched (decided, noted, disputed, marked reviewed), with
  the machine's and the final score;
- decisions (复核记录): every row of the audit trail written by a person on those calls, in order.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from qa_pipeline.batch.store import csv_cell
from qa_pipeline.final_verdicts import ESCALATE, MACHINE, UNREVIEWED, Event, FinalCall
from qa_pipeline.output.redact import mask_id
from qa_pipeline.output.review_views import ROLE_LABELS, REVIEW_STATE_LABELS, event_view, mask, result_label

CALL_COLUMNS = ("通话", "日期", "坐席工号", "坐席", "班组", "机器评分", "最终评分", "是否合格", "关键项未通过",
                "复核状态", "改判项数", "申诉项数", "复核人", "复核时间")
DECISION_COLUMNS = ("序号", "时间", "操作人", "角色", "操作", "通话", "评分项", "原结论", "新结论", "理由")


@dataclass(frozen=True)
class Sheet:
    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("是" if value else "否")


def review_sheets(finals: Mapping[str, FinalCall], events: Iterable[Event], days: Mapping[str, str],
                  item_names: Mapping[str, str], day: str | None = None) -> tuple[Sheet, Sheet]:
    """(calls, decisions) of the calls people touched, of ``day`` when given (else every day)."""
    touched = [f for f in finals.values()
               if f.review_state != UNREVIEWED and (day is None or days.get(f.call_id) == day)]
    touched.sort(key=lambda f: (days.get(f.call_id, ""), f.machine.started_at or "", f.call_id))
    ids = {f.call_id for f in touched}
    calls = []
    for f in touched:
        m = f.machine
        calls.append((
            mask_id(f.call_id), days.get(f.call_id, ""), m.agent_id or "", mask(m.agent_name), mask(m.team),
            m.score, f.score, _yes_no(f.passed), _yes_no(f.critical_failed),
            REVIEW_STATE_LABELS.get(f.review_state, f.review_state), sum(1 for i in f.items if i.changed),
            sum(1 for i in f.items if i.dispute is not None),
            mask(f.reviewed.actor) if f.reviewed else "", f.reviewed.at if f.reviewed else "",
        ))
    decisions = []
    rows = sorted(events, key=lambda e: e.id)
    escalations = frozenset(e.id for e in rows if e.action == ESCALATE)
    for e in rows:
        if e.call_id not in ids or e.role == MACHINE or e.action == MACHINE:
            continue
        decisions.append((
            e.id, e.at, mask(e.actor), ROLE_LABELS.get(e.role, e.role), event_view(e, {}, escalations)["action"],
            mask_id(e.call_id), mask(item_names.get(e.item_id or "", e.item_id or "")),
            result_label(e.from_result) if e.from_result else "", result_label(e.to_result) if e.to_result else "",
            mask(e.reason),
        ))
    return (Sheet("复核通话", CALL_COLUMNS, tuple(calls)), Sheet("复核记录", DECISION_COLUMNS, tuple(decisions)))


def to_csv(sheet: Sheet) -> bytes:
    """The sheet as CSV, UTF-8 with a BOM; a text cell a spreadsheet would run as a formula starts with '."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(sheet.columns)
    for row in sheet.rows:
        writer.writerow([csv_cell(v) if isinstance(v, str) else ("" if v is None else v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(sheets: Sequence[Sheet]) -> bytes:
    """The sheets as one .xlsx workbook: texts as strings (never formulas or links), numbers as numbers."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                        "strings_to_numbers": False})
    bold = book.add_format({"bold": True})
    for sheet in sheets:
        ws = book.add_worksheet(sheet.name)
        for c, name in enumerate(sheet.columns):
            ws.write_string(0, c, name, bold)
        for r, row in enumerate(sheet.rows, start=1):
            for c, value in enumerate(row):
                if value is None or value == "":
                    continue
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    ws.write_number(r, c, value)
                else:
                    ws.write_string(r, c, str(value))
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(len(sheet.rows), 1), len(sheet.columns) - 1)
    book.close()
    return buffer.getvalue()
