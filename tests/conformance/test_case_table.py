"""docs/conformance.md lists every case the tests run, with the verdict they assert: the table cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conformance import test_get_assertion, test_make_credential, test_metadata_service

DOCS = Path(__file__).parents[2] / "docs" / "conformance.md"
ROW = re.compile(
    r"\| (?P<case>[PF]-\d+(?: [A-Z_]+)?) \| .+ \| `(?P<file>[\w.]+)::(?P<test>\w+)\[(?P=case)\]` \| (?P<result>.+) \|"
)


def documented() -> dict[str, dict[str, tuple[str, str]]]:
    groups: dict[str, dict[str, tuple[str, str]]] = {}
    current: dict[str, tuple[str, str]] = {}
    for line in DOCS.read_text().splitlines():
        if line.startswith(("### Server-", "### MDS-")):
            current = groups.setdefault(line.removeprefix("### "), {})
        elif match := ROW.fullmatch(line):
            current[match["case"]] = (match["test"], match["result"])
    return groups


def test_the_docs_table_lists_every_case_with_its_verdict() -> None:
    table = documented()
    expected = {**test_make_credential.GROUPS, **test_get_assertion.GROUPS, **test_metadata_service.GROUPS}
    assert list(table) == list(expected)
    for group, cases in expected.items():
        assert list(table[group]) == list(cases), group
        for case, spec in cases.items():
            test, result = table[group][case]
            assert test == "test_" + group.replace("-", "_")
            verdict = (
                f"documented deviation (tool: {spec.tool}, Passgate: {spec.passgate})" if spec.deviation else "pass"
            )
            assert result == verdict, (group, case)


def test_every_deviation_is_explained_in_the_docs() -> None:
    deviations = [
        (group, case)
        for groups in (test_make_credential.GROUPS, test_get_assertion.GROUPS)
        for group, cases in groups.items()
        for case, spec in cases.items()
        if spec.deviation
    ]
    assert len(deviations) == 7
    explained = DOCS.read_text().split("## Deviations")[1]
    for group, case in deviations:
        kind = "MakeCredential" if "Attestation" in group else "GetAssertion"
        assert kind in explained and group.rsplit("-", 2)[-2] + "-" + group.rsplit("-", 1)[-1] in explained
        assert case in explained, (group, case)
