"""The pure grading core: each built-in framework against an independent statement of its
scheme, over every combination of facts (known and unknown), and the definition validator
against bad input. No database."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from hashlist.frameworks.facts import (
    FACT_NAMES,
    FACTS,
    UNKNOWN,
    all_unknown,
    allowed,
    validate_facts,
)
from hashlist.frameworks.initial import FRAMEWORKS, SEVERE, SEX_ACTS, UNDER_13_BANDS
from hashlist.frameworks.legacy import disagreements, facts_from_grading
from hashlist.frameworks.rules import UNASSESSED, Definition, classify
from hashsync.errors import InvalidInput
from hashsync_client.format import GRADING_FIELDS
from tests.hashlist.doc_tables import framework_tables

DEFINITIONS = {slug: Definition.parse(f["definition"]) for slug, f in FRAMEWORKS.items()}
EVERY_FACTS = [
    dict(zip(FACT_NAMES, values, strict=True))
    for values in itertools.product(*(allowed(name) for name in FACT_NAMES))
]


# Three-valued (Kleene) truth: True, False or None for "cannot tell". Each scheme below reads
# every fact once, so Kleene evaluation is exact — an independent oracle for ``classify``.
def _is(facts: dict[str, str], name: str, values: list[str] | tuple[str, ...]) -> bool | None:
    return None if facts[name] == UNKNOWN else facts[name] in values


def _and(*xs: bool | None) -> bool | None:
    return False if False in xs else (None if None in xs else True)


def _or(*xs: bool | None) -> bool | None:
    return True if True in xs else (None if None in xs else False)


def oracle_uk(f: dict[str, str]) -> str:
    if f["activity"] == UNKNOWN:
        return UNASSESSED
    if f["activity"] in ("penetrative", "animal", "sadism"):
        return "A"
    return "B" if f["activity"] == "non_penetrative" else "C"


def oracle_baseline(f: dict[str, str]) -> str:
    under_13 = _or(_is(f, "age_group", UNDER_13_BANDS), _is(f, "pubertal_stage", ["prepubescent"]))
    verdict = _and(_is(f, "origin", ["real"]), under_13, _is(f, "activity", SEVERE))
    return {True: "yes", False: "no", None: UNASSESSED}[verdict]


def oracle_industry(f: dict[str, str]) -> str:
    letter = {"prepubescent": "A", "pubescent": "B", "post_pubescent": None}.get(
        f["pubertal_stage"], UNKNOWN
    )
    digit = (
        UNKNOWN
        if f["activity"] == UNKNOWN
        else "1"
        if f["activity"] in SEX_ACTS
        else "2"
        if f["activity"] == "lascivious_exhibition"
        else None
    )
    if letter is None or digit is None:
        return "none"
    if UNKNOWN in (letter, digit):
        return UNASSESSED
    return letter + digit


def oracle_us(f: dict[str, str]) -> str:
    if f["activity"] in ("penetrative", "animal", "sadism", "lascivious_exhibition"):
        return "explicit"
    if f["activity"] in ("nudity_posing", "other"):
        return "not_explicit"
    return UNASSESSED  # unknown, or non-penetrative (the statute turns on which act)


ORACLES = {
    "uk": oracle_uk,
    "interpol-baseline": oracle_baseline,
    "industry": oracle_industry,
    "us-2256": oracle_us,
}


def test_every_builtin_framework_has_an_oracle() -> None:
    assert set(ORACLES) == set(DEFINITIONS)


@pytest.mark.parametrize("slug", sorted(ORACLES))
def test_framework_matches_its_scheme_over_every_combination_of_facts(slug: str) -> None:
    assert len(EVERY_FACTS) == 7 * 4 * 8 * 3 * 3 * 2
    wrong = [
        (f, classify(DEFINITIONS[slug], f), ORACLES[slug](f))
        for f in EVERY_FACTS
        if classify(DEFINITIONS[slug], f) != ORACLES[slug](f)
    ]
    assert wrong == []


@pytest.mark.parametrize("slug", sorted(ORACLES))
def test_learning_a_fact_never_changes_one_class_into_another(slug: str) -> None:
    definition = DEFINITIONS[slug]
    for facts in EVERY_FACTS:
        klass = classify(definition, facts)
        if klass == UNASSESSED:
            continue
        for name in FACT_NAMES:
            if facts[name] != UNKNOWN:
                continue
            for value in FACTS[name]:
                assert classify(definition, {**facts, name: value}) == klass, (facts, name)


def test_every_class_of_every_framework_is_reachable_from_known_facts() -> None:
    for slug, definition in DEFINITIONS.items():
        reached = {classify(definition, f) for f in EVERY_FACTS if UNKNOWN not in f.values()}
        assert reached - {UNASSESSED} == set(definition.classes), slug


def test_nothing_known_is_unassessed_everywhere() -> None:
    assert {classify(d, all_unknown()) for d in DEFINITIONS.values()} == {UNASSESSED}


def test_a_computer_generated_image_is_never_interpol_baseline() -> None:
    facts = {**all_unknown(age_group="3-6"), "activity": "penetrative"}
    assert classify(DEFINITIONS["interpol-baseline"], {**facts, "origin": "real"}) == "yes"
    generated = {**facts, "origin": "computer_generated"}
    assert classify(DEFINITIONS["interpol-baseline"], generated) == "no"
    assert classify(DEFINITIONS["uk"], generated) == "A"


def test_definition_round_trips_through_json() -> None:
    for slug, framework in FRAMEWORKS.items():
        assert DEFINITIONS[slug].to_json() == Definition.parse(framework["definition"]).to_json()
        assert Definition.parse(DEFINITIONS[slug].to_json()) == DEFINITIONS[slug]


# --- bad definitions: what a careless or hostile proposer could send --------------------------

GOOD_RULE = {"when": {"activity": ["penetrative"]}, "class": "A", "source": "a statute"}


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "rules",
        {"classes": ["A"]},
        {"classes": ["A"], "rules": [GOOD_RULE], "extra": 1},
        {"classes": [], "rules": [GOOD_RULE]},
        {"classes": ["A", "A"], "rules": [GOOD_RULE]},
        {"classes": ["unassessed"], "rules": [GOOD_RULE]},
        {"classes": ["A b"], "rules": [GOOD_RULE]},
        {"classes": ["x" * 17], "rules": [GOOD_RULE]},
        {"classes": [1], "rules": [GOOD_RULE]},
        {"classes": ["A"], "rules": []},
        {"classes": ["A"], "rules": [GOOD_RULE] * 65},
        {"classes": ["A"], "rules": [{**GOOD_RULE, "class": "B"}]},
        {"classes": ["A"], "rules": [{**GOOD_RULE, "source": ""}]},
        {"classes": ["A"], "rules": [{**GOOD_RULE, "source": "x" * 501}]},
        {"classes": ["A"], "rules": [{**GOOD_RULE, "when": {"activity": ["unknown"]}}]},
        {"classes": ["A"], "rules": [{**GOOD_RULE, "when": {"activity": []}}]},
        {"classes": ["A"], "rules": [{**GOOD_RULE, "when": {"activity": "penetrative"}}]},
        {"classes": ["A"], "rules": [{**GOOD_RULE, "when": {"colour": ["red"]}}]},
        {"classes": ["A"], "rules": [{**GOOD_RULE, "when": []}]},
        {"classes": ["A"], "rules": [{"when": {}, "class": "A"}]},
        {"classes": ["A"], "rules": ["A"]},
    ],
)
def test_bad_definition_is_refused_with_a_stable_code(data: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        Definition.parse(data)
    assert caught.value.code == "invalid_framework_rules"


def test_a_rule_may_say_unassessed_itself() -> None:
    definition = Definition.parse(
        {"classes": ["A"], "rules": [{**GOOD_RULE, "class": "unassessed"}]}
    )
    assert classify(definition, {**all_unknown(), "activity": "penetrative"}) == UNASSESSED


# --- facts -------------------------------------------------------------------------------------


def test_missing_facts_are_unknown_and_values_are_normalised() -> None:
    facts = validate_facts({"activity": " Penetrative ", "origin": ""})
    assert facts == {**all_unknown(), "activity": "penetrative"}


def test_partial_facts_keep_the_entrys_other_facts() -> None:
    base = {**all_unknown(age_group="3-6"), "origin": "real"}
    assert validate_facts({"activity": "sadism"}, partial_of=base) == {**base, "activity": "sadism"}


@pytest.mark.parametrize(
    "data",
    [
        "facts",
        ["activity"],
        {"colour": "red"},
        {"activity": "rude"},
        {"activity": 3},
        {"content_type": "unknown"},
        {"age_group": "12"},
        {"activity": "ab" * 40},
    ],
)
def test_bad_facts_are_refused(data: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_facts(data)
    assert caught.value.code == "invalid_facts"
    assert "ab" * 40 not in caught.value.message


# --- the fields stored before facts ----------------------------------------------------------

EVERY_GRADING = [
    dict(zip(GRADING_FIELDS, values, strict=True))
    for values in itertools.product(*GRADING_FIELDS.values())
]


def test_facts_derived_from_a_grading_never_contradict_it() -> None:
    contradicting = 0
    for grading in EVERY_GRADING:
        facts = facts_from_grading(grading, DEFINITIONS)
        if facts is None:
            contradicting += 1
            assert disagreements(grading, all_unknown(), DEFINITIONS)
            continue
        assert facts["age_group"] == grading["age_group"]
        assert facts["content_type"] == grading["content_type"]
        assert disagreements(grading, facts, DEFINITIONS) == []
    assert 0 < contradicting < len(EVERY_GRADING)


@pytest.mark.parametrize(
    ("grading", "expected"),
    [
        ({"category": "B"}, {"activity": "non_penetrative"}),
        ({"category": "A", "baseline": True}, {"origin": "real"}),
        (
            {"category": "C", "industry_class": "A2"},
            {"activity": "lascivious_exhibition", "pubertal_stage": "prepubescent"},
        ),
        ({"category": "A", "industry_class": "B1"}, {"pubertal_stage": "pubescent"}),
        (
            {"category": "A", "baseline": True, "age_group": "11-13"},
            {"origin": "real", "pubertal_stage": "prepubescent"},
        ),
        ({"category": "A"}, {}),
    ],
)
def test_stored_fields_determine_exactly_the_facts_they_imply(
    grading: dict[str, object], expected: dict[str, str]
) -> None:
    stored: dict[str, object] = {
        "age_group": "7-10",
        "baseline": None,
        "industry_class": "",
        "content_type": "image",
    }
    stored.update(grading)
    facts = facts_from_grading(stored, DEFINITIONS)
    assert facts is not None
    new = {
        k: v for k, v in facts.items() if v != UNKNOWN and k not in ("age_group", "content_type")
    }
    assert new == expected


@pytest.mark.parametrize(
    "grading",
    [
        {"category": "C", "industry_class": "A1"},  # a sex act is A or B in the UK
        {"category": "A", "industry_class": "A2"},  # lascivious exhibition is C
        {"category": "A", "baseline": True, "age_group": "16-17", "industry_class": "B1"},
    ],
)
def test_stored_fields_that_contradict_each_other_are_reported(grading: dict[str, object]) -> None:
    stored: dict[str, object] = {
        "age_group": "7-10",
        "baseline": None,
        "industry_class": "",
        "content_type": "image",
    }
    stored.update(grading)
    assert facts_from_grading(stored, DEFINITIONS) is None
    assert "contradict" in disagreements(stored, all_unknown(), DEFINITIONS)[0]


def test_a_stored_field_that_disagrees_with_recorded_facts_is_reported() -> None:
    stored = {
        "category": "C",
        "age_group": "3-6",
        "baseline": None,
        "industry_class": "",
        "content_type": "image",
    }
    facts = {**all_unknown(age_group="3-6"), "activity": "sadism"}
    assert disagreements(stored, facts, DEFINITIONS) == ["category says uk C; the facts give A"]


def test_docs_state_every_rule_and_its_source_as_stored() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "grading.md").read_text()
    assert framework_tables() in page
