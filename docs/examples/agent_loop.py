"""An agent loop on a cascade, offline: one cascade call per step, escalating per step.

The routing rule for agents: stay on the cheap tier while steps succeed, and start the next
step higher (`min_tier`) after a tool error. Within a step the cascade still checks every
tool call against the tool's schema and escalates an invalid one like any rejected answer.

The two tiers are answered by the loopback fake provider (`cascade.testing.server`) over
real HTTP, in the OpenAI and Anthropic wire formats, with scripted replies: no network, no
key. Run it: `python docs/examples/agent_loop.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cascade import Cascade
from cascade.config import parse_config
from cascade.testing.server import FakeProviderServer, Reply

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current temperature in a city, in Celsius.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "to_fahrenheit",
            "description": "Convert Celsius to Fahrenheit.",
            "parameters": {
                "type": "object",
                "properties": {"celsius": {"type": "number"}},
                "required": ["celsius"],
            },
        },
    },
]


def get_weather(city: str) -> str:
    if city != "Oslo":
        raise LookupError(f"no such city: {city}")
    return "12"


def to_fahrenheit(celsius: float) -> str:
    return f"{celsius * 9 / 5 + 32:.1f}"


FUNCTIONS: dict[str, Callable[..., str]] = {"get_weather": get_weather, "to_fahrenheit": to_fahrenheit}


def script(server: FakeProviderServer) -> None:
    """What the two models say, step by step (the small one slips twice)."""
    server.script(
        "small-model",
        [
            Reply.tool_call({"city": "Olso"}, name="get_weather"),  # valid call, but the tool fails
            Reply.tool_call({"celsius": "twelve"}, name="to_fahrenheit"),  # not a number: rejected
            Reply.text("It is 53.6 °F in Oslo."),
        ],
    )
    server.script(
        "large-model",
        [
            Reply.tool_call({"city": "Oslo"}, name="get_weather"),
            Reply.tool_call({"celsius": 12}, name="to_fahrenheit"),
        ],
    )


def cascade_on(server: FakeProviderServer) -> Cascade:
    def tier(name: str, wire: str, price: tuple[str, str]) -> dict[str, Any]:
        return {
            "name": name,
            "provider": wire,
            "model": f"{name}-model",
            "base_url": server.openai_base_url if wire == "openai" else server.anthropic_base_url,
            "price": {"input_per_mtok": price[0], "output_per_mtok": price[1]},
        }

    config = {
        "tiers": [tier("small", "openai", ("0.15", "0.6")), tier("large", "anthropic", ("3", "15"))],
        "verifiers": [{"type": "non_empty"}],  # tool calls are checked on their own, first
    }
    return Cascade.from_config(parse_config(config))


def main() -> None:
    with FakeProviderServer() as server:
        script(server)
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": "How warm is it in Oslo, in Fahrenheit?"}
        ]
        start: str | None = None  # None: the cheapest tier
        total = 0.0
        with cascade_on(server) as cascade:
            for step in range(1, 8):
                result = cascade.run(messages, tools=TOOLS, min_tier=start)
                total += float(result.cost.total_usd)
                path = " -> ".join(f"{a.tier}:{a.outcome}" for a in result.attempts)
                messages.append(result.as_message())
                if not result.tool_calls:
                    print(f"step {step}: [{path}] answer: {result.output}")
                    break
                start = None
                for call in result.tool_calls:
                    try:
                        output = FUNCTIONS[call.name](**json.loads(call.arguments))
                    except Exception as exc:  # a tool error: the next step starts on the top tier
                        output, start = f"error: {exc}", "large"
                    print(f"step {step}: [{path}] {call.name}({call.arguments}) = {output}")
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
        print(f"total cost: ${total:.6f} over {len(server.requests)} calls")


if __name__ == "__main__":
    main()
