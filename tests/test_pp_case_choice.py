"""bench/pp_case.py's val choice of the RainGate rule (issue 9): CRPS decides only among rules meeting the bar."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import load_script

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def pp_case() -> ModuleType:
    return load_script(BENCH / "pp_case.py", "bench_pp_case")  # it imports its sibling dry_case by name


def row(crps: float, passes: bool) -> dict[str, Any]:
    return {"ensemble": {"crps": crps}, "bar": {"pass": passes}}


def test_the_lowest_crps_among_rules_meeting_the_bar_wins(pp_case: ModuleType) -> None:
    # the tp case on val: both pass, the raw members score lower
    assert pp_case.choose_rule({"hurdle": row(0.0092, True), "none": row(0.0066, True)}) == "none"
    # a lower CRPS that fails the bar does not win over a passing rule
    assert pp_case.choose_rule({"hurdle": row(0.0092, True), "none": row(0.0050, False)}) == "hurdle"


def test_the_default_rule_stays_when_no_rule_meets_the_bar(pp_case: ModuleType) -> None:
    # the t2m case on val: the almost dry raw ensemble scores the lower CRPS, and is not chosen
    assert pp_case.RAIN_GATE_RULES[0] == "hurdle"
    assert pp_case.choose_rule({"hurdle": row(0.0414, False), "none": row(0.0402, False)}) == "hurdle"
