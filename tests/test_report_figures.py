"""`cascade report` and the batch report's figures: only batch output is read, savings are
claimed on verified items only, and money reads as money."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from cascade.batch.report import report_lines
from cascade.cli.render import usd
from tests.conftest import run_cli


def record(item: int, *, verified: bool, total: str, baseline: str, output: str | None = "x") -> str:
    saved = str(Decimal(baseline) - Decimal(total))
    cost = {
        "total_usd": total,
        "wasted_usd": "0",
        "verification_usd": "0",
        "baseline_usd": baseline,
        "saved_usd": saved,
    }
    attempts = [{"tier": "small", "outcome": "accepted" if verified else "rejected"}]
    return json.dumps(
        {
            "id": item,
            "output": output,
            "verified": verified,
            "tier": "small",
            "attempts": attempts,
            "cost": cost,
        }
    )


def test_savings_are_claimed_on_verified_items_only():
    report = report_lines(
        [
            record(1, verified=True, total="0.001", baseline="0.010"),
            record(2, verified=False, total="0.002", baseline="0.010"),  # the top tier never ran
            record(3, verified=False, total="0", baseline="0.010", output=None),  # every tier failed
        ]
    )
    assert report.money["saved_usd"] == Decimal("0.009") and report.saved_excluded == 2
    assert report.money["saved_baseline_usd"] == Decimal("0.010")  # the share's denominator
    assert report.money["total_usd"] == Decimal("0.003") and report.money["baseline_usd"] == Decimal("0.030")


def test_a_job_where_every_item_failed_saved_nothing():
    report = report_lines(
        [record(i, verified=False, total="0", baseline="0.01", output=None) for i in range(3)]
    )
    assert report.money["saved_usd"] == 0 and report.saved_excluded == 3


@pytest.mark.parametrize(
    ("lines", "looks_like"),
    [
        ([{"id": 1, "prompt": "hi"}, {"id": 2, "prompt": "ho"}], "batch input line"),
        ([{"id": 1, "prompt": "hi", "responses": {"m": {"text": "x"}}}], "recorded outcomes"),
        ([[1, 2]], "it holds list"),
    ],
)
def test_report_refuses_a_file_that_is_not_batch_output(tmp_path: Path, lines: list[object], looks_like: str):
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    proc = run_cli("report", str(path), timeout=60)
    assert proc.returncode == 2, proc.stdout
    assert "not a batch output file" in proc.stderr and looks_like in proc.stderr
    assert "requests.jsonl" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(Decimal("0.000013"), "$0.000013"), (Decimal("-0.000013"), "-$0.000013"), (Decimal(0), "$0.000000")],
)
def test_money_puts_the_sign_before_the_dollar(amount: Decimal, shown: str):
    assert usd(amount) == shown


def test_events_carry_money_as_plain_decimal_digits():
    import structlog
    from structlog.testing import capture_logs

    from cascade import Cascade, Price
    from tests.conftest import scripted_tier

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(20))
    with capture_logs() as events:
        Cascade([scripted_tier("t", ("m", ["fine"]), price=Price(Decimal(0), Decimal(0)))]).run("q")
    (finished,) = [e for e in events if e["event"] == "attempt_finished"]
    assert finished["cost_usd"] == "0.000000000000" and "E" not in finished["verification_usd"]


def test_an_unverified_answer_claims_no_saving_in_its_record():
    from cascade import Cascade, PermanentProviderError
    from tests.conftest import DEAR, scripted_tier

    def rejects(candidate: object) -> bool:
        return False

    top_fails = scripted_tier("large", ("l", [PermanentProviderError("HTTP 400")]), price=DEAR)
    result = Cascade([scripted_tier("small", ("s", ["a guess"])), top_fails], [rejects]).run("q")
    assert not result.verified and result.cost.baseline_usd > result.cost.total_usd  # a "saving" on paper
    assert result.to_dict()["cost"]["saved_usd"] is None
    verified = Cascade([scripted_tier("t", ("m", ["fine"]))]).run("q")
    assert verified.to_dict()["cost"]["saved_usd"] == float(verified.cost.saved_usd)
