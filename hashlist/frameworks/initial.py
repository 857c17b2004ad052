"""Version 1 of each framework, as migration 0007 seeded it. Frozen: a framework changes only
by a reviewed proposal that stores its next version (``services.proposal_framework``); never edit
this file to change a rule. docs/grading.md explains each rule and its source; a test holds the
two equal.

"computer_generated" in the facts means an image made to look like a photograph of a child: the
UK grades pseudo-photographs like photographs (Protection of Children Act 1978 s.7(7)) and US law
covers computer-generated images indistinguishable from a minor (18 U.S.C. § 2256(8)(B)), so
neither scheme below turns on it; INTERPOL's baseline requires a real child.
"""

from __future__ import annotations

from typing import Any, Final

SEX_ACTS: Final = ["penetrative", "animal", "sadism", "non_penetrative"]
SEVERE: Final = [*SEX_ACTS, "lascivious_exhibition"]
UNDER_13_BANDS: Final = ["0-2", "3-6", "7-10"]

_SC = "Sentencing Council, Indecent photographs of children guideline (2014)"
_IB = "INTERPOL Baseline criteria (ICSE, 2013)"
_TC = "Tech Coalition industry classification (NCMEC 'classification' field)"
_US = "18 U.S.C. § 2256"

FRAMEWORKS: Final[dict[str, dict[str, Any]]] = {
    "uk": {
        "name": "UK categories A/B/C",
        "definition": {
            "classes": ["A", "B", "C"],
            "rules": [
                {
                    "when": {"activity": ["penetrative", "animal", "sadism"]},
                    "class": "A",
                    "source": f"{_SC}: Category A, images involving penetrative sexual activity, "
                    "sexual activity with an animal or sadism",
                },
                {
                    "when": {"activity": ["non_penetrative"]},
                    "class": "B",
                    "source": f"{_SC}: Category B, images involving non-penetrative sexual "
                    "activity",
                },
                {
                    "when": {"activity": ["lascivious_exhibition", "nudity_posing", "other"]},
                    "class": "C",
                    "source": f"{_SC}: Category C, other indecent images not falling within "
                    "categories A or B",
                },
            ],
        },
    },
    "interpol-baseline": {
        "name": "INTERPOL Baseline",
        "definition": {
            "classes": ["yes", "no"],
            "rules": [
                {
                    "when": {
                        "age_group": UNDER_13_BANDS,
                        "activity": SEVERE,
                        "origin": ["real"],
                    },
                    "class": "yes",
                    "source": f"{_IB}: a real child, apparently under 13 (age band), a sexual "
                    "act or a focus on the genital or anal region",
                },
                {
                    "when": {
                        "pubertal_stage": ["prepubescent"],
                        "activity": SEVERE,
                        "origin": ["real"],
                    },
                    "class": "yes",
                    "source": f"{_IB}: a real child, apparently under 13 (prepubescent), a "
                    "sexual act or a focus on the genital or anal region",
                },
                {
                    "when": {},
                    "class": "no",
                    "source": f"{_IB}: material meeting fewer than all three criteria is not "
                    "baseline (it may still be illegal nationally)",
                },
            ],
        },
    },
    "industry": {
        "name": "Industry classification A1/A2/B1/B2",
        "definition": {
            "classes": ["A1", "A2", "B1", "B2", "none"],
            "rules": [
                {
                    "when": {"pubertal_stage": ["prepubescent"], "activity": SEX_ACTS},
                    "class": "A1",
                    "source": f"{_TC}: A = prepubescent minor, 1 = sex act",
                },
                {
                    "when": {
                        "pubertal_stage": ["prepubescent"],
                        "activity": ["lascivious_exhibition"],
                    },
                    "class": "A2",
                    "source": f"{_TC}: A = prepubescent minor, 2 = lascivious exhibition",
                },
                {
                    "when": {"pubertal_stage": ["pubescent"], "activity": SEX_ACTS},
                    "class": "B1",
                    "source": f"{_TC}: B = pubescent minor, 1 = sex act",
                },
                {
                    "when": {
                        "pubertal_stage": ["pubescent"],
                        "activity": ["lascivious_exhibition"],
                    },
                    "class": "B2",
                    "source": f"{_TC}: B = pubescent minor, 2 = lascivious exhibition",
                },
                {
                    "when": {},
                    "class": "none",
                    "source": f"{_TC}: the four classes cover prepubescent and pubescent minors "
                    "in a sex act or a lascivious exhibition; anything else has none of them",
                },
            ],
        },
    },
    "us-2256": {
        "name": "US federal: sexually explicit conduct (18 U.S.C. § 2256)",
        "definition": {
            "classes": ["explicit", "not_explicit"],
            "rules": [
                {
                    "when": {"activity": ["penetrative"]},
                    "class": "explicit",
                    "source": f"{_US}(2)(A)(i): sexual intercourse, genital-genital, "
                    "oral-genital, anal-genital or oral-anal",
                },
                {
                    "when": {"activity": ["animal"]},
                    "class": "explicit",
                    "source": f"{_US}(2)(A)(ii): bestiality",
                },
                {
                    "when": {"activity": ["sadism"]},
                    "class": "explicit",
                    "source": f"{_US}(2)(A)(iv): sadistic or masochistic abuse",
                },
                {
                    "when": {"activity": ["lascivious_exhibition"]},
                    "class": "explicit",
                    "source": f"{_US}(2)(A)(v): lascivious exhibition of the anus, genitals or "
                    "pubic area",
                },
                {
                    "when": {"activity": ["non_penetrative"]},
                    "class": "unassessed",
                    "source": f"{_US}(2)(A)(iii) lists masturbation but not every non-penetrative "
                    "sexual activity; the facts do not say which one is shown",
                },
                {
                    "when": {"activity": ["nudity_posing", "other"]},
                    "class": "not_explicit",
                    "source": f"{_US}(2)(A): nudity or posing without sexual activity or a "
                    "lascivious exhibition is not sexually explicit conduct",
                },
            ],
        },
    },
}
