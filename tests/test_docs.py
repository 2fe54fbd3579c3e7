"""docs/DATA.md documents every table contract of portrait/schemas/: no column missing, extra or retyped.

Each contract has a heading named after the table; under it, a Markdown table whose rows start
``| `column` | `type` | nullable |``. The checker below reads those rows back and compares them with the
contract, so the documentation cannot drift from the code unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from pyspark.sql import types as T

from portrait.schemas import ALL_TABLES, TableContract

DATA_MD = Path(__file__).resolve().parents[1] / "docs" / "DATA.md"

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _plain(text: str) -> str:
    return text.strip().strip("`").strip()


def sections(markdown: str) -> dict[str, list[str]]:
    """Lines under each heading (up to the next heading of the same or a higher level), by heading text."""
    found: dict[str, list[str]] = {}
    open_sections: list[tuple[int, str]] = []
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        heading = None if in_code else _HEADING.match(line)
        if heading:
            level, title = len(heading.group(1)), _plain(heading.group(2))
            open_sections = [(lvl, name) for lvl, name in open_sections if lvl < level] + [(level, title)]
            found.setdefault(title, [])
            continue
        for _, name in open_sections:
            found[name].append(line)
    return found


def documented_columns(lines: Iterable[str]) -> dict[str, tuple[str, str]]:
    """{column: (type, nullable)} from the Markdown table rows among ``lines`` (header and rule skipped)."""
    columns: dict[str, tuple[str, str]] = {}
    for line in lines:
        if not line.lstrip().startswith("|"):
            continue
        cells = [_plain(cell) for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0].lower() == "column" or set(cells[0]) <= set("-: "):
            continue
        columns[cells[0]] = (cells[1], cells[2].lower())
    return columns


def doc_problems(markdown: str, contracts: Iterable[TableContract]) -> list[str]:
    """Every difference between the documented columns and the contracts, one message each."""
    by_heading = sections(markdown)
    problems = []
    for contract in contracts:
        if contract.name not in by_heading:
            problems.append(f"{contract.name}: no heading '{contract.name}'")
            continue
        documented = documented_columns(by_heading[contract.name])
        for field in contract.schema.fields:
            where = f"{contract.name}.{field.name}"
            if field.name not in documented:
                problems.append(f"{where}: not documented under the heading '{contract.name}'")
                continue
            doc_type, doc_nullable = documented[field.name]
            if doc_type != field.dataType.simpleString():
                problems.append(f"{where}: documented as {doc_type}, the contract says "
                                f"{field.dataType.simpleString()}")
            if doc_nullable != ("yes" if field.nullable else "no"):
                problems.append(f"{where}: documented nullable '{doc_nullable}', the contract says "
                                f"{'yes' if field.nullable else 'no'}")
        problems += [f"{contract.name}.{name}: documented but not in the contract"
                     for name in documented if name not in contract.columns]
    return problems


def test_data_md_documents_every_contract_column():
    assert doc_problems(DATA_MD.read_text(encoding="utf-8"), ALL_TABLES.values()) == []


# --------------------------------------------------------------------------- the checker, on made-up docs

SHOP = TableContract(
    name="shop",
    description="A made-up table.",
    schema=T.StructType([
        T.StructField("shop_id", T.StringType(), False),
        T.StructField("opened", T.DateType(), True),
    ]),
)

GOOD_DOC = """# Data

## shop

| Column | Type | Nullable | Meaning |
|---|---|---|---|
| `shop_id` | `string` | no | Shop id. |
| `opened` | `date` | yes | Opening date. |

## other

| Column | Type | Nullable | Meaning |
|---|---|---|---|
| `city` | `string` | yes | City. |
"""


def test_checker_accepts_a_matching_doc():
    assert doc_problems(GOOD_DOC, [SHOP]) == []


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (GOOD_DOC.replace("| `opened` | `date` | yes | Opening date. |\n", ""),
         "shop.opened: not documented"),
        # the column is documented, but under another table's heading
        (GOOD_DOC.replace("| `opened` | `date` | yes | Opening date. |\n", "")
         + "| `opened` | `date` | yes | Opening date. |\n", "shop.opened: not documented"),
        (GOOD_DOC.replace("`opened` | `date`", "`opened` | `timestamp`"),
         "shop.opened: documented as timestamp, the contract says date"),
        (GOOD_DOC.replace("`shop_id` | `string` | no", "`shop_id` | `string` | yes"),
         "shop.shop_id: documented nullable 'yes'"),
        (GOOD_DOC.replace("| `opened`", "| `closed` | `date` | yes | Gone. |\n| `opened`"),
         "shop.closed: documented but not in the contract"),
        (GOOD_DOC.replace("## shop", "## shops"), "shop: no heading 'shop'"),
        # a heading-like line inside a code block does not start a section
        (GOOD_DOC.replace("## shop\n", "```\n## shop\n```\n"), "shop: no heading 'shop'"),
    ],
    ids=["missing", "wrong-heading", "wrong-type", "wrong-nullable", "extra", "no-heading", "code-block"],
)
def test_checker_reports_drift(doc, problem):
    problems = doc_problems(doc, [SHOP])
    assert any(p.startswith(problem) for p in problems), problems
