"""A rule change's impact and rule diff, and the analysts' list of unassessed entries, each
checked against a brute-force count over every entry (docs/grading.md, "Changing the rules")."""

from __future__ import annotations

import copy
import itertools
import random
from typing import Any

import pytest

from hashlist import framework_store
from hashlist.framework_store import rule_change_impact, unassessed_page
from hashlist.frameworks.facts import FACT_NAMES, FACTS, UNKNOWN, allowed
from hashlist.frameworks.impact import ADDED, CHANGED, REMOVED, SAME, regraded, rule_diff
from hashlist.frameworks.initial import FRAMEWORKS
from hashlist.frameworks.rules import UNASSESSED, Definition, classify
from hashlist.models import Entry, EntryStatus

pytestmark = pytest.mark.django_db

INITIAL = {slug: f["definition"] for slug, f in FRAMEWORKS.items()}


def definition(slug: str) -> Definition:
    return Definition.parse(INITIAL[slug])


def edited(slug: str, change: Any) -> Definition:
    data = copy.deepcopy(INITIAL[slug])
    change(data)
    return Definition.parse(data)


def _random_entries(count: int, seed: int) -> list[Entry]:
    choose = random.Random(seed)  # spread of facts, not a secret
    entries = []
    for _ in range(count):
        facts = {name: choose.choice(allowed(name)) for name in FACT_NAMES}
        entries.append(
            Entry(
                category=choose.choice("ABC"),
                status=choose.choice([EntryStatus.ACTIVE] * 9 + [EntryStatus.RETRACTED]),
                **facts,
            )
        )
    return Entry.objects.bulk_create(entries)


def brute_force(old: Definition, new: Definition) -> tuple[int, dict[tuple[str, str], int]]:
    moves: dict[tuple[str, str], int] = {}
    for entry in Entry.objects.filter(status=EntryStatus.ACTIVE):
        facts = framework_store.facts_of(entry)
        a, b = classify(old, facts), classify(new, facts)
        if a != b:
            moves[(a, b)] = moves.get((a, b), 0) + 1
    return sum(moves.values()), moves


def _b_becomes_a(data: dict[str, Any]) -> None:
    data["rules"][0]["when"]["activity"].append("non_penetrative")


def _baseline_any_age(data: dict[str, Any]) -> None:
    del data["rules"][0]["when"]["age_group"]


def _industry_post_pubescent(data: dict[str, Any]) -> None:
    data["classes"].append("C1")
    data["rules"].insert(
        4,
        {
            "when": {"pubertal_stage": ["post_pubescent"], "activity": ["penetrative"]},
            "class": "C1",
            "source": "synthetic test rule",
        },
    )


def _us_masturbation_unknown(data: dict[str, Any]) -> None:
    data["rules"][4]["class"] = "explicit"


CHANGES = [
    ("uk", _b_becomes_a),
    ("interpol-baseline", _baseline_any_age),
    ("industry", _industry_post_pubescent),
    ("us-2256", _us_masturbation_unknown),
]


@pytest.mark.parametrize(("slug", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_impact_equals_a_brute_force_count_per_entry(slug, change, django_assert_num_queries):
    _random_entries(600, seed=17)
    old, new = definition(slug), edited(slug, change)
    expected, moves = brute_force(old, new)

    with django_assert_num_queries(1):  # one GROUP BY, whatever the size of the list
        impact = rule_change_impact(old=old, new=new)

    assert impact.regraded == expected > 0
    assert {(a, b): n for a, b, n in impact.moves} == moves
    assert impact.entries == Entry.objects.filter(status=EntryStatus.ACTIVE).count()
    # Grouped by the facts the rules look at: far fewer combinations than entries.
    assert impact.combinations < impact.entries


def test_no_change_regrades_nothing_and_an_empty_list_regrades_nothing():
    uk = definition("uk")
    assert rule_change_impact(old=uk, new=uk).regraded == 0
    assert rule_change_impact(old=uk, new=edited("uk", _b_becomes_a)).entries == 0


def test_rules_without_conditions_count_every_entry_as_one_combination():
    _random_entries(30, seed=3)
    always_a = Definition.parse(
        {"classes": ["A"], "rules": [{"when": {}, "class": "A", "source": "synthetic"}]}
    )
    always_b = Definition.parse(
        {"classes": ["B"], "rules": [{"when": {}, "class": "B", "source": "synthetic"}]}
    )
    impact = rule_change_impact(old=always_a, new=always_b)
    active = Entry.objects.filter(status=EntryStatus.ACTIVE).count()
    assert (impact.regraded, impact.combinations, impact.moves) == (
        active,
        1,
        (("A", "B", active),),
    )


def test_regraded_counts_every_combination_of_facts_exhaustively():
    # Every one of the 4,032 combinations once: the pure count against classify by hand.
    old, new = definition("interpol-baseline"), edited("interpol-baseline", _baseline_any_age)
    groups = []
    expected = 0
    for values in itertools.product(*(allowed(n) for n in FACT_NAMES)):
        facts = dict(zip(FACT_NAMES, values, strict=True))
        groups.append((facts, 2))
        expected += 2 * (classify(old, facts) != classify(new, facts))
    assert regraded(groups, old, new).regraded == expected > 0


# --- The rule diff --------------------------------------------------------------------------


def test_rule_diff_of_identical_rules_is_all_same():
    found = rule_diff(definition("uk"), definition("uk"))
    assert [row.state for row in found.rows] == [SAME, SAME, SAME]
    assert found.changes == 0


def test_rule_diff_marks_a_rule_changed_in_place_with_its_parts():
    found = rule_diff(definition("uk"), edited("uk", _b_becomes_a))
    assert [row.state for row in found.rows] == [CHANGED, SAME, SAME]
    assert found.rows[0].changed_parts == ("when.activity",)
    assert found.rows[0].old["source"] == found.rows[0].new["source"]


def test_rule_diff_marks_an_inserted_rule_added_at_its_position_and_new_classes():
    found = rule_diff(definition("industry"), edited("industry", _industry_post_pubescent))
    assert [(r.state, r.old_position, r.new_position) for r in found.rows] == [
        (SAME, 1, 1),
        (SAME, 2, 2),
        (SAME, 3, 3),
        (SAME, 4, 4),
        (ADDED, None, 5),
        (SAME, 5, 6),
    ]
    assert found.classes_added == ("C1",)
    assert found.rows[4].new["source"] == "synthetic test rule"


def test_rule_diff_marks_a_removed_rule_with_its_source():
    def drop_sadism(data: dict[str, Any]) -> None:
        del data["rules"][2]

    found = rule_diff(definition("us-2256"), edited("us-2256", drop_sadism))
    removed = [row for row in found.rows if row.state == REMOVED]
    assert [(r.old_position, r.old["class"]) for r in removed] == [(3, "explicit")]
    assert "2256(2)(A)(iv)" in removed[0].old["source"]
    assert found.changes == 1


# --- Unassessed entries ----------------------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(INITIAL))
def test_unassessed_page_lists_exactly_the_unassessed_active_entries_in_id_order(slug):
    _random_entries(250, seed=5)
    current = definition(slug)
    expected = [
        e.pk
        for e in Entry.objects.filter(status=EntryStatus.ACTIVE).order_by("id")
        if classify(current, framework_store.facts_of(e)) == UNASSESSED
    ]
    seen: list[int] = []
    after = 0
    while True:
        result = unassessed_page(slug=slug, after=after, limit=40)
        assert result is not None
        rows, after_next = result
        seen += [row.entry_id for row in rows]
        for row in rows:
            # The unknown facts the rules look at (none where a rule says unassessed itself,
            # as us-2256 does for non-penetrative activity).
            assert all(row.facts[name] == UNKNOWN for name in row.unknown)
            assert row.unknown or slug == "us-2256"
        if after_next is None:
            break
        after = after_next
    assert seen == expected
    assert framework_store.unassessed_counts()[slug] == len(expected)


def test_unassessed_page_of_an_unknown_framework_is_none():
    assert unassessed_page(slug="nope") is None


def test_content_type_is_always_known():
    assert UNKNOWN not in FACTS["content_type"]
