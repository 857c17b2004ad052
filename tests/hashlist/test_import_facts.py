"""Bulk import on facts: a column per fact, the old grading columns turned into facts where they
determine them, contradictions and bad values refused per row (docs/import-format.md, "Facts").

Synthetic data only: every hash is random bytes (``tests.conftest.synthetic``)."""

from __future__ import annotations

import itertools

import pytest

from hashlist.frameworks.facts import FACTS, NEW_FACTS, UNKNOWN, allowed
from hashlist.frameworks.initial import FRAMEWORKS
from hashlist.frameworks.legacy import facts_from_grading
from hashlist.frameworks.rules import Definition, classify
from hashlist.grading import validate_grading
from hashlist.imports.grade import GradeError, Grader
from hashlist.models import Entry, Hash, ImportStatus, StagedRow
from tests.conftest import synthetic
from tests.hashlist import test_imports as base

# The bulk-import tests' fixtures and file builders.
_eager_tasks_and_private_media = base._eager_tasks_and_private_media
upload, imported, errors_of = base.upload, base.imported, base.errors_of
approve, jrow, row, to_csv, to_jsonl = base.approve, base.jrow, base.row, base.to_csv, base.to_jsonl

DEFINITIONS = {slug: Definition.parse(f["definition"]) for slug, f in FRAMEWORKS.items()}
FACT_HEADER = ["age_group", "content_type", *NEW_FACTS, "source", "md5"]
MIXED_HEADER = ["category", "age_group", "baseline", "industry_class", *NEW_FACTS, "md5"]
AGES = ["0-2", "3-6", "7-10", "11-13", "14-15", "16-17", "unknown"]


def facts_row(**fields: str) -> dict[str, str]:
    return {"age_group": "3-6", "source": "synthetic", "md5": synthetic("md5"), **fields}


def entry_of(r: dict[str, str]) -> Entry:
    return Hash.objects.get(algorithm="md5", value=bytes.fromhex(r["md5"])).entry


# --- Every fact column, end to end ------------------------------------------------------------


def test_every_fact_column_is_staged_applied_and_fills_the_stored_fields(imported, api, reviewer):
    rows = [
        # Facts only: the UK category, the baseline and the industry class follow from them.
        facts_row(
            pubertal_stage="prepubescent",
            activity="penetrative",
            origin="real",
            self_generated="no",
            content_type="video",
        ),
        facts_row(
            age_group="14-15",
            pubertal_stage="pubescent",
            activity="lascivious_exhibition",
            origin="computer_generated",
            self_generated="yes",
        ),
        # Values are matched without regard to case or surrounding spaces; empty is unknown.
        facts_row(activity=" Nudity_Posing ", pubertal_stage="", origin="UNKNOWN"),
    ]
    batch = imported(to_csv(rows, FACT_HEADER))
    assert batch["status"] == ImportStatus.STAGED, batch
    staged = list(StagedRow.objects.filter(batch_id=batch["id"]).order_by("line"))
    assert [(s.pubertal_stage, s.activity, s.origin, s.self_generated) for s in staged] == [
        ("prepubescent", "penetrative", "real", "no"),
        ("pubescent", "lascivious_exhibition", "computer_generated", "yes"),
        ("unknown", "nudity_posing", "unknown", "unknown"),
    ]

    assert approve(api, reviewer, batch["proposal"]).status_code == 202
    first, second, third = (entry_of(r) for r in rows)
    assert (first.category, first.baseline, first.industry_class, first.content_type) == (
        "A",
        True,
        "A1",
        "video",
    )
    assert (first.pubertal_stage, first.activity, first.origin, first.self_generated) == (
        "prepubescent",
        "penetrative",
        "real",
        "no",
    )
    # Computer-generated: not baseline; pubescent lascivious exhibition: B2; the UK's C.
    assert (second.category, second.baseline, second.industry_class) == ("C", False, "B2")
    assert (second.age_group, second.self_generated) == ("14-15", "yes")
    # Nudity or posing: C in the UK, not baseline, no industry class, whatever is unknown.
    assert (third.category, third.baseline, third.industry_class) == ("C", False, "")
    assert third.activity == "nudity_posing"
    rows_api = api(reviewer).get(f"/api/v1/entries/{first.pk}/").json()
    assert rows_api["facts"]["activity"] == "penetrative"


def test_jsonl_rows_carry_facts_too(imported, api, reviewer):
    records = [
        jrow(category=None, age_group="7-10", activity="sadism", origin="real"),
        jrow(activity="non_penetrative", pubertal_stage="pubescent"),
    ]
    batch = imported(to_jsonl(records), "list.jsonl")
    assert batch["status"] == ImportStatus.STAGED, batch
    rows = api(reviewer).get(f"/api/v1/imports/{batch['id']}/rows/").json()["results"]
    assert [(r["category"], r["activity"], r["origin"], r["baseline"]) for r in rows] == [
        ("A", "sadism", "real", True),  # under 13, real, a sex act: baseline
        ("B", "non_penetrative", "unknown", False),  # 11-13 and pubescent: not baseline
    ]
    summary = api(reviewer).get(f"/api/v1/imports/{batch['id']}/summary/").json()
    assert summary["by_activity"] == {"non_penetrative": 1, "sadism": 1}
    assert summary["by_origin"] == {"real": 1, "unknown": 1}
    assert summary["by_industry_class"] == {"": 1, "B1": 1}


def test_a_file_with_fact_columns_needs_no_category_column(imported):
    batch = imported(to_csv([facts_row(activity="other")], ["age_group", "activity", "md5"]))
    assert batch["status"] == ImportStatus.STAGED
    assert StagedRow.objects.get().category == "C"


# --- Old columns only: exactly as before, facts as migration 0007 gives them -------------------


def test_every_old_only_grading_is_stored_exactly_as_before_with_the_migrations_facts():
    grader = Grader(DEFINITIONS)
    for cat, age, baseline, ind, ctype in itertools.product(
        "ABC", AGES, ["", "yes", "no"], ["", "A1", "A2", "B1", "B2"], ["image", "video"]
    ):
        fields = {
            "category": cat,
            "age_group": age,
            "baseline": baseline,
            "industry_class": ind,
            "content_type": ctype,
        }
        before = validate_grading(fields)
        grading, facts = grader.grade(fields)
        assert grading == before, fields
        derived = facts_from_grading(before, DEFINITIONS)
        expected = {name: derived[name] if derived else UNKNOWN for name in NEW_FACTS}
        assert facts == expected, fields
        # Fact columns present but empty are the same as absent.
        assert grader.grade({**fields, **dict.fromkeys(NEW_FACTS, "")}) == (grading, facts)


def test_an_old_only_file_is_applied_with_its_own_fields_and_the_facts_they_determine(
    imported, api, reviewer
):
    rows = [row(category="B"), row(category="C", baseline="yes", industry_class="A2")]
    batch = imported(to_csv(rows))
    assert approve(api, reviewer, batch["proposal"]).status_code == 202
    b, c = (Hash.objects.get(algorithm="md5", value=bytes.fromhex(r["md5"])).entry for r in rows)
    assert (b.category, b.baseline, b.industry_class, b.activity) == (
        "B",
        None,
        "",
        "non_penetrative",
    )
    assert (c.category, c.baseline, c.industry_class) == ("C", True, "A2")
    assert (c.pubertal_stage, c.activity, c.origin) == (
        "prepubescent",
        "lascivious_exhibition",
        "real",
    )


def test_old_columns_that_contradict_each_other_are_accepted_as_before_with_unknown_facts():
    grader = Grader(DEFINITIONS)
    # A sex act is A or B in the UK, never C: no facts give both. Accepted before facts.
    fields = {"category": "C", "age_group": "7-10", "industry_class": "A1"}
    grading, facts = grader.grade(fields)
    assert (grading["category"], grading["industry_class"]) == ("C", "A1")
    assert set(facts.values()) == {UNKNOWN}


# --- Mixed: old columns beside facts -----------------------------------------------------------


def test_old_columns_agreeing_with_the_facts_are_kept_and_add_the_facts_they_determine():
    grader = Grader(DEFINITIONS)
    grading, facts = grader.grade(
        {"category": "B", "age_group": "3-6", "pubertal_stage": "prepubescent", "origin": "real"}
    )
    # B says non-penetrative; with a real prepubescent child under 13 that is baseline and A1.
    assert facts == {
        "pubertal_stage": "prepubescent",
        "activity": "non_penetrative",
        "origin": "real",
        "self_generated": "unknown",
    }
    assert (grading["category"], grading["baseline"], grading["industry_class"]) == (
        "B",
        True,
        "A1",
    )


def test_mixed_file_end_to_end(imported, api, reviewer):
    rows = [
        row(category="A", activity="animal", origin="real", baseline="yes"),
        row(category="", activity="non_penetrative", pubertal_stage="pubescent"),
        row(category="C", industry_class=""),
    ]
    batch = imported(to_csv(rows, MIXED_HEADER))
    assert batch["status"] == ImportStatus.STAGED, batch
    assert approve(api, reviewer, batch["proposal"]).status_code == 202
    a, b, c = (entry_of(r) for r in rows)
    assert (a.category, a.baseline, a.activity, a.origin) == ("A", True, "animal", "real")
    assert (b.category, b.industry_class, b.activity) == ("B", "B1", "non_penetrative")
    assert (c.category, c.activity) == ("C", "unknown")


# --- Contradictions and bad values: refused per row, naming the column ------------------------


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        (
            {"category": "A", "activity": "nudity_posing"},
            ["category 'A' contradicts the facts (activity 'nudity_posing')", "uk A"],
        ),
        (
            {"baseline": "yes", "origin": "computer_generated"},
            ["baseline 'yes' contradicts the facts (origin 'computer_generated')"],
        ),
        (
            {"industry_class": "A1", "pubertal_stage": "pubescent"},
            ["industry_class 'A1' contradicts the facts (pubertal_stage 'pubescent')"],
        ),
        (
            # Baseline needs under 13 or prepubescent: the age band and the stage both say no.
            {"age_group": "14-15", "baseline": "true", "pubertal_stage": "post_pubescent"},
            ["baseline 'yes' contradicts the facts (age_group '14-15', pubertal_stage"],
        ),
    ],
    ids=["category-activity", "baseline-origin", "industry-stage", "baseline-age-and-stage"],
)
def test_old_column_contradicting_the_facts_is_refused_on_its_line(
    fields, said, imported, errors_of
):
    rows = [row(), row(**fields), row()]
    batch = imported(to_csv(rows, MIXED_HEADER))
    assert batch["status"] == ImportStatus.INVALID
    [(line, message)] = errors_of(batch["id"])
    assert line == 3
    for text in said:
        assert text in message
    assert "Correct the facts, or leave" in message
    assert StagedRow.objects.count() == 0


@pytest.mark.parametrize("name", NEW_FACTS)
def test_unknown_fact_value_is_refused_with_the_allowed_values(name, imported, errors_of):
    batch = imported(to_csv([row(), row(**{name: "sometimes"})], MIXED_HEADER))
    [(line, message)] = errors_of(batch["id"])
    assert line == 3
    assert message == f"{name} must be one of {', '.join(allowed(name))}; got 'sometimes'."


def test_a_hash_in_a_fact_column_is_not_echoed(imported, errors_of):
    value = synthetic("sha256")
    batch = imported(to_csv([row(activity=value)], MIXED_HEADER))
    [(_, message)] = errors_of(batch["id"])
    assert value[:8] not in message
    assert message.startswith("activity must be one of penetrative")


def test_jsonl_fact_that_is_not_a_string_is_refused(imported, errors_of):
    batch = imported(to_jsonl([jrow(origin=["real"]), jrow(origin=1)]), "list.jsonl")
    assert [line for line, _ in errors_of(batch["id"])] == [1, 2]
    assert all(
        "origin must be one of real, computer_generated, unknown" in m
        for _, m in errors_of(batch["id"])
    )


def test_no_category_and_facts_that_do_not_determine_one_is_refused(imported, errors_of):
    batch = imported(to_csv([facts_row(origin="real")], FACT_HEADER))
    [(line, message)] = errors_of(batch["id"])
    assert line == 2
    assert message.startswith("category is required; expected one of A, B, C.")
    assert "do not determine it" in message


def test_unknown_fact_column_name_is_a_header_error(imported, errors_of):
    batch = imported(to_csv([row()], ["category", "age_group", "activty", "md5"]))
    [(line, message)] = errors_of(batch["id"])
    assert line == 1
    assert "unknown column(s) 'activty'" in message
    assert "activity" in message


# --- Many rows: each distinct grading worked out once ------------------------------------------


def test_a_large_mixed_file_stages_every_row_with_its_facts(imported):
    combos = list(itertools.product(FACTS["activity"], FACTS["pubertal_stage"], AGES[:6]))
    rows = [
        row(category="", age_group=age, activity=act, pubertal_stage=stage)
        for _ in range(20)
        for act, stage, age in combos
    ]
    batch = imported(to_csv(rows, MIXED_HEADER))
    assert batch["status"] == ImportStatus.STAGED, batch
    assert batch["rows_valid"] == len(rows) == 20 * 7 * 3 * 6
    uk = DEFINITIONS["uk"]
    for staged in StagedRow.objects.filter(line__lte=len(combos) + 1):
        facts = {
            "age_group": staged.age_group,
            "content_type": "image",
            "pubertal_stage": staged.pubertal_stage,
            "activity": staged.activity,
            "origin": "unknown",
            "self_generated": "unknown",
        }
        assert staged.category == classify(uk, facts)


def test_grader_refusals_are_grade_errors_not_500s():
    grader = Grader(DEFINITIONS)
    for fields in (
        {"category": "A", "age_group": "3-6", "activity": {"x": 1}},
        {"category": "A", "age_group": "3-6", "self_generated": True},
        {"category": "Z", "age_group": "3-6"},
        {"category": "A", "age_group": "3-6", "pubertal_stage": "x" * 5000},
    ):
        with pytest.raises(GradeError):
            grader.grade(fields)
