"""The json_schema verifier: finding JSON in answers, naming failing paths, pydantic models,
schema files, bad settings, and the schema travelling to providers through the engine."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import Cascade, Outcome
from cascade.config import parse_config
from cascade.core.errors import ConfigError
from cascade.core.values import Candidate, Completion, Request, Usage
from cascade.testing.server import Reply
from cascade_verifiers.schema import JsonSchemaVerifier
from tests.conftest import json_values, loopback_url
from tests.models_for_tests import Invoice

ORDER = {
    "title": "Order",
    "type": "object",
    "required": ["customer", "items"],
    "properties": {
        "customer": {"type": "string", "minLength": 1},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "price"],
                "properties": {
                    "name": {"type": "string"},
                    "price": {"type": "number", "minimum": 0},
                },
            },
        },
    },
}
GOOD_ORDER = {
    "customer": "Ada",
    "items": [{"name": "tea", "price": 3.5}, {"name": "scone", "price": 2}, {"name": "jam", "price": 4}],
}
BAD_PRICE = {
    "customer": "Ada",
    "items": [{"name": "tea", "price": 3.5}, {"name": "scone", "price": 2}, {"name": "jam", "price": "abc"}],
}


def candidate(text: str) -> Candidate:
    return Candidate(
        request=Request.from_prompt("q"),
        completion=Completion(text=text, model="m", usage=Usage(1, 1)),
        tier="small",
    )


def check(text: str, **settings_: Any):
    verifier = JsonSchemaVerifier(**({"schema": ORDER} | settings_))
    return verifier(candidate(text))


# -- finding the JSON ------------------------------------------------------------------


def test_bare_json_passes_with_the_parsed_object():
    verdict = check(json.dumps(GOOD_ORDER))
    assert verdict.passed and verdict.score == 1.0
    assert verdict.parsed == GOOD_ORDER
    assert verdict.verifier == "json_schema"


def test_json_in_a_json_fence_is_found():
    text = f"Here is the order you asked for:\n\n```json\n{json.dumps(GOOD_ORDER, indent=2)}\n```\n"
    verdict = check(text)
    assert verdict.passed and verdict.parsed == GOOD_ORDER
    assert "fenced" in verdict.reason


def test_json_in_a_plain_fence_is_found():
    verdict = check(f"```\n{json.dumps(GOOD_ORDER)}\n```")
    assert verdict.passed and verdict.parsed == GOOD_ORDER


def test_json_embedded_in_prose_is_found():
    text = f"Sure! The order is {json.dumps(GOOD_ORDER)} and that is everything on the receipt."
    verdict = check(text)
    assert verdict.passed and verdict.parsed == GOOD_ORDER
    assert "embedded" in verdict.reason


def test_a_later_document_that_validates_is_preferred_to_an_earlier_one():
    text = (
        'Items look like {"name": "tea", "price": 3.5}; see note [1]. '
        f"The full order: {json.dumps(GOOD_ORDER)}"
    )
    verdict = check(text)
    assert verdict.passed and verdict.parsed == GOOD_ORDER


def test_no_json_at_all_fails_with_a_clear_reason():
    verdict = check("I could not find an order in the message, sorry.")
    assert not verdict.passed and verdict.score == 0.0
    assert verdict.reason == "no JSON found in the answer"
    assert verdict.parsed is None


def test_nan_is_not_json():
    verdict = JsonSchemaVerifier(schema={"type": "number"})(candidate("NaN"))
    assert verdict.reason == "no JSON found in the answer"


def test_a_number_too_large_for_a_float_is_not_json():
    verdict = JsonSchemaVerifier(schema={"type": "number"})(candidate("1e400"))
    assert verdict.reason == "no JSON found in the answer" and verdict.parsed is None


def test_a_document_holding_a_number_too_large_for_a_float_is_not_json():
    verdict = JsonSchemaVerifier(schema={"type": "object"})(candidate('The result: {"x": 1e400}.'))
    assert not verdict.passed and verdict.reason == "no JSON found in the answer"


def test_json_after_many_latex_fractions_is_found():
    prose = "Using " + ", ".join(f"\\frac{{a_{i}}}{{b_{i}}}" for i in range(32)) + ", the order is "
    verdict = check(prose + json.dumps(GOOD_ORDER))
    assert verdict.passed and verdict.parsed == GOOD_ORDER


def test_json_after_many_citations_is_found():
    prose = "As reported " + " ".join(f"[{i}]" for i in range(1, 18)) + ", the order is "
    verdict = check(prose + json.dumps(GOOD_ORDER))
    assert verdict.passed and verdict.parsed == GOOD_ORDER


def test_a_failing_document_after_many_citations_is_the_one_reported():
    prose = "As reported " + " ".join(f"[{i}]" for i in range(1, 18)) + ", the order is "
    verdict = check(prose + json.dumps(BAD_PRICE))
    assert not verdict.passed
    assert (
        verdict.reason == "JSON does not follow the schema: $.items[2].price: 'abc' is not of type 'number'"
    )


def test_json_after_thousands_of_citations_is_found():
    prose = " ".join(f"[{i}]" for i in range(5_000))
    verdict = check(f"{prose}\n{json.dumps(GOOD_ORDER)}")
    assert verdict.passed and verdict.parsed == GOOD_ORDER


def test_a_megabyte_of_citations_is_checked_quickly():
    started = time.monotonic()
    verdict = check("[1] " * 250_000)
    assert time.monotonic() - started < 2
    assert not verdict.passed


def test_broken_json_counts_as_no_json():
    verdict = check('```json\n{"customer": "Ada", "items": [\n```')
    assert not verdict.passed and "no JSON found" in verdict.reason


# -- failing paths ---------------------------------------------------------------------


def test_the_reason_names_the_failing_path():
    verdict = check(json.dumps(BAD_PRICE))
    assert not verdict.passed and verdict.score == 0.0 and verdict.parsed is None
    assert "$.items[2].price: 'abc' is not of type 'number'" in verdict.reason


def test_a_missing_property_names_its_parent_object():
    bad = {"customer": "Ada", "items": [{"price": 1}]}
    verdict = check(f"```json\n{json.dumps(bad)}\n```")
    assert "$.items[0]: 'name' is a required property" in verdict.reason


def test_at_most_three_errors_are_reported():
    bad = {"customer": "", "items": [{"price": -1}, {"name": 3, "price": "x"}]}
    verdict = check(json.dumps(bad))
    assert not verdict.passed
    listed = verdict.reason.split(": ", 1)[1]
    assert listed.count("$") == 3
    assert "more)" in verdict.reason


def test_the_reported_document_is_the_closest_miss():
    text = f"As per [1], the order is {json.dumps(BAD_PRICE)}."
    verdict = check(text)
    assert "$.items[2].price" in verdict.reason


def test_keys_that_are_not_identifiers_are_quoted_in_the_path():
    schema = {"type": "object", "properties": {"unit price": {"type": "number"}}}
    verdict = JsonSchemaVerifier(schema=schema)(candidate('{"unit price": "ten"}'))
    assert "$[\"unit price\"]: 'ten' is not of type 'number'" in verdict.reason


def test_the_draft_named_by_dollar_schema_is_used():
    draft4 = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "number",
        "maximum": 10,
        "exclusiveMaximum": True,  # a boolean only in draft 4
    }
    verifier = JsonSchemaVerifier(schema=draft4)
    assert verifier(candidate("9.5")).passed
    assert not verifier(candidate("10")).passed


def test_an_unresolvable_remote_ref_fails_the_check_without_raising():
    schema = {"$ref": "https://example.invalid/schemas/order.json"}
    verdict = JsonSchemaVerifier(schema=schema)(candidate('{"a": 1}'))
    assert not verdict.passed and verdict.score == 0.0
    assert "could not check the answer" in verdict.reason


def test_a_megabyte_of_brackets_is_checked_quickly():
    text = "[" * 100 + "1," * 500_000
    started = time.monotonic()
    verdict = check(text)
    assert time.monotonic() - started < 2
    assert not verdict.passed


# -- the request -----------------------------------------------------------------------


def test_prepare_request_attaches_the_schema_and_an_instruction():
    verifier = JsonSchemaVerifier(schema=ORDER)
    sent = verifier.prepare_request(Request.from_prompt("Extract the order.", system="Be exact."))
    assert sent.response_schema == ORDER and sent.response_schema_name == "Order"
    assert sent.system is not None and sent.system.startswith("Be exact.\n\n")
    assert "single JSON document" in sent.system
    assert json.dumps(ORDER, separators=(",", ":")) in sent.system


@pytest.mark.parametrize(
    ("name", "title", "expected"),
    [
        (None, "Order", "Order"),
        (None, "Purchase order (v2)!", "Purchase_order__v2"),
        (None, None, "answer"),
        ("my schema", "Order", "my_schema"),
        ("x" * 100, None, "x" * 64),
    ],
)
def test_the_schema_name_is_sanitised(name, title, expected):
    schema = {"type": "object"} | ({"title": title} if title else {})
    assert JsonSchemaVerifier(schema=schema, name=name).schema_name == expected


# -- pydantic models -------------------------------------------------------------------

INVOICE = {"customer": "Ada", "items": [{"name": "tea", "price": 3.5, "quantity": 2}], "total": 7}


def test_a_pydantic_model_validates_and_dumps_the_parsed_object():
    verifier = JsonSchemaVerifier(model="models_for_tests:Invoice")
    verdict = verifier(candidate(f"```json\n{json.dumps(INVOICE)}\n```"))
    assert verdict.passed
    assert verdict.parsed == {
        "customer": "Ada",
        "items": [{"name": "tea", "price": 3.5, "quantity": 2}],
        "total": 7.0,
    }


def test_the_model_can_be_given_as_the_class_itself():
    by_class, by_name = (
        JsonSchemaVerifier(model=Invoice),
        JsonSchemaVerifier(model="models_for_tests:Invoice"),
    )
    answer = candidate(json.dumps(INVOICE))
    assert by_class(answer).parsed == by_name(answer).parsed
    assert by_class(candidate(json.dumps(INVOICE | {"total": 99}))).passed is False
    with pytest.raises(ValueError, match="is not a pydantic model class"):
        JsonSchemaVerifier(model=dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a pydantic model class or 'module:Class'"):
        JsonSchemaVerifier(model=42)  # type: ignore[arg-type]


def test_a_pydantic_model_fills_defaults_in_the_parsed_object():
    answer = {"customer": "Ada", "items": [{"name": "tea", "price": 3.5}], "total": 3.5}
    verdict = JsonSchemaVerifier(model="models_for_tests:Invoice")(candidate(json.dumps(answer)))
    assert verdict.passed and verdict.parsed["items"][0]["quantity"] == 1


def test_a_pydantic_failure_names_the_loc_as_a_path():
    bad = {
        "customer": "Ada",
        "items": [{"name": "tea", "price": 3.5}, {"name": "jam", "price": -4}],
        "total": 0,
    }
    verdict = JsonSchemaVerifier(model="models_for_tests:Invoice")(candidate(json.dumps(bad)))
    assert not verdict.passed and verdict.score == 0.0
    assert "$.items[1].price: Input should be greater than or equal to 0" in verdict.reason


def test_the_models_own_validators_apply():
    wrong_total = INVOICE | {"total": 99}
    verdict = JsonSchemaVerifier(model="models_for_tests:Invoice")(candidate(json.dumps(wrong_total)))
    assert not verdict.passed
    assert "total 99 does not match the items (7)" in verdict.reason


@pytest.mark.parametrize(
    ("item", "total", "message"),
    [
        ({"name": "tea", "price": "9.50"}, 9.5, "$.items[0].price: Input should be a valid number"),
        (
            {"name": "tea", "price": 9.5, "quantity": "2"},
            19,
            "$.items[0].quantity: Input should be a valid integer",
        ),
    ],
)
def test_a_pydantic_model_does_not_coerce_strings_to_numbers(item, total, message):
    answer = {"customer": "Ada", "items": [item], "total": total}
    verdict = JsonSchemaVerifier(model="models_for_tests:Invoice")(candidate(json.dumps(answer)))
    assert not verdict.passed and message in verdict.reason


def test_a_pydantic_model_still_takes_an_iso_date_string():
    answer = {"reference": "S-1", "shipped_on": "2024-03-01"}
    verdict = JsonSchemaVerifier(model="models_for_tests:Shipment")(candidate(json.dumps(answer)))
    assert verdict.passed and verdict.parsed == answer


def test_a_model_sends_its_json_schema():
    from tests.models_for_tests import Invoice

    sent = JsonSchemaVerifier(model="models_for_tests:Invoice").prepare_request(Request.from_prompt("q"))
    assert sent.response_schema == Invoice.model_json_schema()
    assert sent.response_schema_name == "Invoice"


# -- schema files ----------------------------------------------------------------------


def test_schema_file_json(tmp_path):
    path = tmp_path / "order.json"
    path.write_text(json.dumps(ORDER), encoding="utf-8")
    verifier = JsonSchemaVerifier(schema_file=str(path))
    assert verifier.schema == ORDER
    assert not verifier(candidate(json.dumps(BAD_PRICE))).passed


def test_schema_file_yaml_relative_to_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.yaml").write_text(
        "title: Order\n"
        "type: object\n"
        "required: [customer, items]\n"
        "properties:\n"
        "  customer: {type: string, minLength: 1}\n"
        "  items:\n"
        "    type: array\n"
        "    minItems: 1\n"
        "    items:\n"
        "      type: object\n"
        "      required: [name, price]\n"
        "      properties:\n"
        "        name: {type: string}\n"
        "        price: {type: number, minimum: 0}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    verifier = JsonSchemaVerifier(schema_file="schemas/order.yaml")
    assert verifier.schema == ORDER
    assert verifier(candidate(json.dumps(GOOD_ORDER))).passed


# -- bad settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({}, "exactly one of"),
        ({"schema": ORDER, "model": "models_for_tests:Invoice"}, "got schema, model"),
        ({"schema": {"type": "nonsense"}}, "invalid JSON Schema"),
        ({"schema": {"type": "object", "properties": {"a": {"minimum": "zero"}}}}, "invalid JSON Schema"),
        ({"schema": ["not", "a", "mapping"]}, "must be a mapping"),
        ({"schema_file": "/nonexistent/order.json"}, "cannot read schema_file"),
        ({"model": "models_for_tests"}, "'module:Class'"),
        ({"model": "no_such_module_anywhere:Model"}, "cannot import model"),
        ({"model": "models_for_tests:Missing"}, "cannot import model"),
        ({"model": "models_for_tests:NotAModel"}, "not a pydantic model"),
        ({"schema": ORDER, "name": ""}, "must not be empty"),
    ],
)
def test_bad_settings_raise_value_error(settings_, message):
    with pytest.raises(ValueError, match=message):
        JsonSchemaVerifier(**settings_)


@pytest.mark.parametrize(
    ("suffix", "content", "kind"), [(".json", "{oops", "JSON"), (".yaml", "a: [b", "YAML")]
)
def test_an_unparsable_schema_file_raises_value_error(tmp_path, suffix, content, kind):
    path = tmp_path / f"schema{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=f"not valid {kind}"):
        JsonSchemaVerifier(schema_file=str(path))


FREE = {"input_per_mtok": 0, "output_per_mtok": 0}


def test_bad_settings_in_a_config_name_the_entry():
    config = parse_config(
        {
            "tiers": [{"name": "t", "provider": "simulated", "model": "sim", "price": FREE}],
            "verifiers": [{"type": "json_schema", "schema": ORDER, "schema_file": "x.json"}],
        }
    )
    with pytest.raises(ConfigError, match=r"verifiers\.0 \(json_schema\): give exactly one of"):
        Cascade.from_config(config)


# -- through the engine ----------------------------------------------------------------


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")


def tier(server, name: str, provider: str, model: str, **extra: object) -> dict[str, object]:
    base_url = loopback_url(server, provider)
    retry = {"max_attempts": 2, "initial_wait_s": 0, "max_wait_s": 1}
    return {"name": name, "provider": provider, "model": model, "base_url": base_url, "retry": retry} | extra


def cascade_for(server, verifier: Mapping[str, object], *, reask: int = 0, **tier_extra: object) -> Cascade:
    config = {
        "tiers": [
            tier(server, "small", "openai", "gpt-4o-mini", **tier_extra),
            tier(server, "large", "anthropic", "claude-opus-4-8", **tier_extra),
        ],
        "verifiers": [verifier],
        "reask": reask,
    }
    return Cascade.from_config(parse_config(config))


def test_an_answer_breaking_the_schema_escalates_with_the_path_in_the_verdict(fake_server, keys):
    fake_server.script("gpt-4o-mini", [Reply.text(f"Here you go:\n```json\n{json.dumps(BAD_PRICE)}\n```")])
    fake_server.script("claude-opus-4-8", [Reply.text(json.dumps(GOOD_ORDER))])
    with cascade_for(fake_server, {"type": "json_schema", "schema": ORDER}) as cascade:
        result = cascade.run("Extract the order from: Ada bought tea, a scone and jam.")
    small, large = result.attempts
    assert (small.outcome, large.outcome) == (Outcome.REJECTED, Outcome.ACCEPTED)
    assert "$.items[2].price: 'abc' is not of type 'number'" in small.verdicts[0].reason
    assert result.verified and result.tier == "large"
    assert result.parsed == GOOD_ORDER
    # without structured output the schema still reaches the model, in the system prompt
    openai_request = fake_server.requests_for("gpt-4o-mini")[0]
    assert "response_format" not in openai_request.body
    system = openai_request.body["messages"][0]
    assert system["role"] == "system" and json.dumps(ORDER, separators=(",", ":")) in system["content"]


def test_a_reask_feeds_the_failing_path_back_to_the_model(fake_server, keys):
    fake_server.script("gpt-4o-mini", [Reply.text(json.dumps(BAD_PRICE)), Reply.text(json.dumps(GOOD_ORDER))])
    with cascade_for(fake_server, {"type": "json_schema", "schema": ORDER}, reask=1) as cascade:
        result = cascade.run("Extract the order.")
    assert result.verified and result.tier == "small" and result.parsed == GOOD_ORDER
    feedback = fake_server.requests_for("gpt-4o-mini")[1].body["messages"][-1]["content"]
    assert "$.items[2].price" in feedback


def test_a_pydantic_model_through_the_engine(fake_server, keys):
    fake_server.script("gpt-4o-mini", [Reply.text(json.dumps(INVOICE | {"total": 5}))])
    fake_server.script("claude-opus-4-8", [Reply.text(f"Done:\n{json.dumps(INVOICE)}")])
    with cascade_for(fake_server, {"type": "json_schema", "model": "models_for_tests:Invoice"}) as cascade:
        result = cascade.run("Invoice please.")
    assert "does not match the items" in result.attempts[0].verdicts[0].reason
    assert result.parsed["total"] == 7.0 and result.tier == "large"


def test_structured_output_sends_the_schema_to_openai(fake_server, keys):
    fake_server.script("gpt-4o-mini", [Reply.text(json.dumps(GOOD_ORDER))])
    verifier = {"type": "json_schema", "schema": ORDER}
    with cascade_for(fake_server, verifier, structured_output=True) as cascade:
        result = cascade.run("Extract the order.")
    assert result.parsed == GOOD_ORDER
    body = fake_server.requests_for("gpt-4o-mini")[0].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == ORDER
    assert body["response_format"]["json_schema"]["name"] == "Order"


def test_structured_output_sends_the_schema_to_anthropic_as_a_forced_tool(fake_server, keys):
    fake_server.script("gpt-4o-mini", [Reply.text("Sorry, no JSON today.")])
    fake_server.script("claude-opus-4-8", [Reply.tool_use(GOOD_ORDER)])
    verifier = {"type": "json_schema", "schema": ORDER, "name": "extract_order"}
    with cascade_for(fake_server, verifier, structured_output=True) as cascade:
        result = cascade.run("Extract the order.")
    assert result.attempts[0].verdicts[0].reason == "no JSON found in the answer"
    assert result.tier == "large" and result.verified and result.parsed == GOOD_ORDER
    body = fake_server.requests_for("claude-opus-4-8")[0].body
    assert body["tools"][0]["input_schema"] == ORDER
    assert body["tools"][0]["name"] == "extract_order"
    assert body["tool_choice"] == {"type": "tool", "name": "extract_order"}


# -- properties ------------------------------------------------------------------------


RICH = {
    "type": "object",
    "required": ["id", "kind"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": 0},
        "kind": {"enum": ["a", "b", None]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "uniqueItems": True},
        "score": {"anyOf": [{"type": "number", "maximum": 1}, {"type": "null"}]},
        "child": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
    },
}
# documents near the schema: each field is usually right and sometimes just off
near_rich = st.fixed_dictionaries(
    {"id": st.integers(-1, 30), "kind": st.sampled_from(["a", "b", None, "a", "b", None, "c"])},
    optional={
        "tags": st.lists(st.sampled_from(["x", "yy", "zzz", "four"]), max_size=3),
        "score": st.floats(-1, 1.2) | st.none(),
        "child": st.fixed_dictionaries({"ok": st.booleans()}) | st.sampled_from([{}, {"ok": 1}]),
    },
)
off_rich = near_rich.flatmap(
    lambda doc: st.sampled_from(
        [doc | {"extra": 1}, {k: v for k, v in doc.items() if k != "id"}, doc | {"id": str(doc["id"])}, [doc]]
    )
)
# each verifier that parses answers, with a schema that can't match everything
RICH_VERIFIER = JsonSchemaVerifier(schema=RICH)
RICH_VALIDATOR = jsonschema.Draft202012Validator(RICH)
any_text_verifiers = [RICH_VERIFIER, JsonSchemaVerifier(model="models_for_tests:Invoice")]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_the_verifier_never_raises_on_any_text(text):
    for verifier in any_text_verifiers:
        verdict = verifier(candidate(text))
        assert verdict.score in (0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(json_values, st.text(max_size=20), st.text(max_size=20), st.booleans())
def test_the_verifier_never_raises_on_any_json_bare_or_in_prose(value, before, after, fenced):
    document = json.dumps(value)
    for text in (
        document,
        f"{before}{'```json' if fenced else ''}\n{document}\n{'```' if fenced else ''}{after}",
    ):
        for verifier in any_text_verifiers:
            verdict = verifier(candidate(text))
            assert verdict.passed == (verdict.parsed is not None)  # neither schema accepts a bare null
            assert verdict.reason and not verdict.reason.startswith("could not check the answer")


@settings(max_examples=200, deadline=None)
@given(st.one_of(near_rich, near_rich, off_rich, json_values))
def test_the_verifier_agrees_with_jsonschema_on_bare_documents(value):
    verdict = RICH_VERIFIER(candidate(json.dumps(value)))
    assert verdict.passed == RICH_VALIDATOR.is_valid(value)
    if verdict.passed:
        assert verdict.parsed == value


# prose a model writes around JSON: citations, LaTeX, brackets that are not JSON, a few that start
# a document and break off ("[1, 2 and"): fewer of those than the scan gives up after
bracket_prose = st.lists(
    st.sampled_from(
        [
            "[1]",
            "[12]",
            "[3, 4]",
            "\\frac{a}{b}",
            "x^{2}",
            "[citation needed]",
            "{x}",
            "[]",
            "{ }",
            "see",
            "[1, 2",
        ]
    ),
    max_size=60,
).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(near_rich, off_rich), bracket_prose)
def test_the_verifier_agrees_with_jsonschema_after_prose_full_of_brackets(value, prose):
    verdict = RICH_VERIFIER(candidate(f"{prose} {json.dumps(value)}"))
    assert verdict.passed == RICH_VALIDATOR.is_valid(value)
    if verdict.passed:
        assert verdict.parsed == value
