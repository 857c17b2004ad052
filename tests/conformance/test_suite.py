"""The conformance suite (conformance/, docs/conformance.md): every run of the generator writes
the same bytes, and both the project's client and the small reference verifier written from the
specifications give the outcome expected.json records for every case. No database."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SUITE = Path(__file__).resolve().parents[2] / "conformance"


def generate(out: Path) -> Path:
    subprocess.run(
        [sys.executable, str(SUITE / "generate.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"conformance_{name}", SUITE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("conformance") / "cases")


def disagreements(runner: ModuleType, suite: Path) -> dict[str, tuple[str, str]]:
    expected = json.loads((suite / "expected.json").read_text())["cases"]
    assert len(expected) >= 50
    outcomes = {name: runner.run(suite / name) for name in sorted(expected)}
    return {
        name: (case["expect"], outcomes[name])
        for name, case in expected.items()
        if outcomes[name] != case["expect"]
    }


def test_the_generator_writes_the_same_bytes_on_every_run(suite, tmp_path):
    again = generate(tmp_path / "again")

    first, second = tree(suite), tree(again)
    assert first == second
    assert len([name for name in first if name.endswith("case.json")]) >= 50


def test_the_suite_holds_accepts_and_refusals_of_every_layer(suite):
    expected = json.loads((suite / "expected.json").read_text())["cases"]
    outcomes = {case["expect"] for case in expected.values()}

    assert "accept" in outcomes
    for kind in (
        "untrusted_root",
        "key_not_valid",
        "manifest_expired",
        "rollback",
        "plan_mismatch",
        "bundle_format",
        "bundle_header",
        "state_mismatch",
    ):
        assert f"refuse:{kind}" in outcomes


def test_the_reference_verifier_agrees_with_every_expected_outcome(suite):
    assert disagreements(load("reference"), suite) == {}


def test_the_project_client_agrees_with_every_expected_outcome(suite):
    assert disagreements(load("client_runner"), suite) == {}


def test_a_runner_that_accepts_everything_fails_the_suite(suite, tmp_path):
    # The harness itself: a client that checks nothing must not pass.
    lazy = tmp_path / "lazy.py"
    lazy.write_text("print('accept')\n")
    done = subprocess.run(
        [
            sys.executable,
            str(SUITE / "run.py"),
            "--cases",
            str(suite),
            "--",
            sys.executable,
            str(lazy),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "DISAGREES refuse-rollback-to-an-older-manifest" in done.stdout
