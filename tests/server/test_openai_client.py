"""`localr1 serve` through the official openai client: whole and streamed replies, reasoning first, concurrency,
disconnects, bad requests and API keys, all against the real server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import openai
import pytest

from localr1.engine.thinking import TRANSITION, ends_sentence, ends_word
from tests.server.conftest import KEY, LiveServer, post

pytestmark = pytest.mark.model
HI = [{"role": "user", "content": "Hi"}]
SKY = [{"role": "user", "content": "Explain why the sky is blue"}]  # the demo does not parrot the tags on this one


def client(live: LiveServer, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url, api_key=key, max_retries=0, timeout=300)


def create(live: LiveServer, key: str = "unused", **request: Any) -> Any:
    """client.chat.completions.create with this server and key (untyped: the tests send extension fields)."""
    made: Any = client(live, key).chat.completions.create
    return made(**request)


def extra(obj: Any, name: str) -> Any:
    return (obj.model_extra or {}).get(name)


def test_models_lists_the_served_model(live: LiveServer) -> None:
    assert [m.id for m in client(live).models.list()] == ["demo"]


def test_a_whole_reply_carries_reasoning_beside_the_answer(live: LiveServer) -> None:
    reply = create(live, model="demo", messages=HI, max_tokens=48, extra_body={"thinking_budget": 4})
    message = reply.choices[0].message
    thinking = extra(message, "reasoning_content")
    assert thinking and extra(message, "reasoning") == thinking and message.content
    assert "<think>" not in thinking + message.content and "</think>" not in thinking
    assert not message.content.lstrip().startswith("</think>")  # the forced close is not in the answer
    assert reply.usage is not None and reply.usage.completion_tokens >= 5
    assert extra(reply, "localr1")["thinking_forced_closed"] is True


def test_a_stream_sends_reasoning_first_then_the_answer(live: LiveServer) -> None:
    stream = create(live, model="demo", messages=HI, max_tokens=48, stream=True,
                    stream_options={"include_usage": True}, extra_body={"thinking_budget": 4})
    kinds: list[str] = []
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            thinking = extra(choice.delta, "reasoning_content")
            if thinking:
                assert extra(choice.delta, "reasoning") == thinking
                kinds.append("thinking")
            if choice.delta.content:
                kinds.append("answer")
    assert "thinking" in kinds and "answer" in kinds
    assert kinds.index("answer") > max(i for i, k in enumerate(kinds) if k == "thinking")
    assert usage is not None and usage.completion_tokens >= 5


def test_a_thinking_budget_in_seconds_ends_the_thinking_at_a_boundary(live: LiveServer) -> None:
    # the demo's greedy thinking on SKY runs past 400 tokens: the budget, not the length, ends it at any
    # speed below 1,300 tokens/s (at 120 tokens and "1s" a quiet CI machine reached the length first)
    reply = create(live, model="demo", messages=SKY, max_tokens=400, temperature=0,
                   extra_body={"thinking_budget": "0.3s", "loop_guard": "off"})
    message = reply.choices[0].message
    thinking = extra(message, "reasoning_content")
    assert extra(reply, "localr1")["thinking_forced_closed"] is True and message.content
    # never mid-word: the cut text ends a word, or the model's own next token (greedy, no budget) starts one
    enough = min(reply.usage.completion_tokens, len(thinking)) + 4  # a token is at least a character here
    unbudgeted = create(live, model="demo", messages=SKY, max_tokens=enough, temperature=0,
                        extra_body={"loop_guard": "off"})
    whole = extra(unbudgeted.choices[0].message, "reasoning_content") + unbudgeted.choices[0].message.content
    assert whole.startswith(thinking) and len(whole) > len(thinking)
    following = whole[len(thinking)]
    assert ends_sentence(thinking) or ends_word(thinking) or following.isspace() or not following.isalnum()
    for text in (thinking, message.content):
        assert "</think>" not in text and TRANSITION.strip() not in text


def test_a_thinking_budget_of_zero_gives_no_reasoning_at_all(live: LiveServer) -> None:
    for budget in (0, "0"):
        reply = create(live, model="demo", messages=SKY, max_tokens=16, extra_body={"thinking_budget": budget})
        message = reply.choices[0].message
        assert extra(message, "reasoning_content") == "" and message.content
        assert "</think>" not in message.content


def test_a_bad_thinking_budget_is_one_clear_400(live: LiveServer) -> None:
    bad: list[object] = [-1, 1.5, "fast", "-3s", True, [], "9" * 40]
    for budget in bad:
        status, reply = post(live.url + "/chat/completions",
                             json.dumps({"messages": HI, "thinking_budget": budget}).encode())
        assert status == 400 and reply["error"]["param"] == "thinking_budget", (budget, reply)
        message = reply["error"]["message"]
        assert "\n" not in message and "tokens" in message and '"90s"' in message


def test_reasoning_sent_back_in_history_never_reaches_the_model(live: LiveServer) -> None:
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
               {"role": "user", "content": "Bye"}]
    with_reasoning = [history[0], {**history[1], "reasoning_content": "SECRET " * 50, "reasoning": "X " * 50},
                      history[2]]
    plain = create(live, model="demo", messages=history, max_tokens=1)
    sent = create(live, model="demo", messages=with_reasoning, max_tokens=1)
    assert plain.usage is not None and sent.usage is not None
    assert sent.usage.prompt_tokens == plain.usage.prompt_tokens


def test_concurrent_requests_share_decode_steps(live: LiveServer) -> None:
    before = live.health()
    replies: list[Any] = []

    def ask() -> None:
        replies.append(create(live,
            model="demo", messages=HI, max_tokens=24, extra_body={"loop_guard": "off"}))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = live.health()
    assert len(replies) == 2 and all(r.choices[0].finish_reason == "length" for r in replies)
    assert all(extra(r, "localr1")["peak_batch"] == 2 for r in replies)  # each was decoded alongside the other
    tokens = sum(r.usage.completion_tokens for r in replies)
    assert after["steps"] - before["steps"] < tokens  # fewer decodes than tokens: generation overlapped


def test_a_client_leaving_mid_stream_stops_its_sequence_and_frees_the_slot(live: LiveServer) -> None:
    cancelled = live.health()["stopped"].get("cancelled", 0)
    stream = create(live, model="demo", messages=HI, max_tokens=2000, stream=True,
                                                  extra_body={"loop_guard": "off"})
    for i, _chunk in enumerate(stream):
        if i == 3:
            break
    stream.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and live.health()["active"]:
        time.sleep(0.1)
    health = live.health()
    assert health["active"] == 0 and health["free_slots"] == 2
    assert health["stopped"].get("cancelled", 0) == cancelled + 1


def test_malformed_json_is_a_400_and_the_server_stays_up(live: LiveServer) -> None:
    status, body = post(live.url + "/chat/completions", b'{"messages": [')
    assert status == 400 and body["error"]["code"] == "invalid_json"
    assert create(live, model="demo", messages=HI, max_tokens=2).choices


def test_a_body_over_the_limit_is_a_413(live: LiveServer) -> None:
    huge = json.dumps({"messages": [{"role": "user", "content": "x" * 70_000}]}).encode()
    status, body = post(live.url + "/chat/completions", huge)
    assert status == 413 and "at most 64000" in body["error"]["message"]


def test_a_prompt_over_the_context_is_a_clear_400_and_the_server_stays_up(live: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        create(live, model="demo", max_tokens=4,
                                             messages=[{"role": "user", "content": "word " * 700}])
    assert caught.value.code == "context_length_exceeded"
    assert "context holds 512" in caught.value.message
    assert create(live, model="demo", messages=HI, max_tokens=2).choices


def test_bad_fields_are_400s_naming_the_field(live: LiveServer) -> None:
    for body, field in (({"messages": []}, "messages"), ({"messages": HI, "temperature": "hot"}, "temperature"),
                        ({"messages": HI, "loop_guard": "maybe"}, "loop_guard"),
                        ({"messages": [{"role": "tool", "content": "x"}]}, "messages")):
        status, reply = post(live.url + "/chat/completions", json.dumps(body).encode())
        assert status == 400 and reply["error"]["param"] == field, reply


def test_the_key_is_checked_on_every_request(keyed: LiveServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        create(keyed, key="wrong", model="demo", messages=HI, max_tokens=2)
    with pytest.raises(openai.AuthenticationError):
        client(keyed, "wrong").models.list()
    status, body = post(keyed.url + "/chat/completions", json.dumps({"messages": HI}).encode())
    assert status == 401 and "missing API key" in body["error"]["message"]
    reply = create(keyed, key=KEY, model="demo", messages=HI, max_tokens=4)
    assert reply.choices[0].message.content


def test_a_reply_cut_inside_a_character_ends_at_the_last_whole_one(keyed: LiveServer) -> None:
    """Greedy, the demo answers with star emoji (two tokens each): 4 tokens end half-way through the second."""
    emoji = [{"role": "user", "content": "Reply with only emoji: 🙂🙂🙂🙂"}]
    reply = create(keyed, key=KEY, model="demo", messages=emoji, max_tokens=4, temperature=0)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 4
    assert reply.choices[0].message.content == "🌟"
    stream = create(keyed, key=KEY, model="demo", messages=emoji, max_tokens=4, temperature=0, stream=True)
    assert "".join(c.delta.content or "" for chunk in stream for c in chunk.choices) == "🌟"


def _whole_and_streamed(live: LiveServer, key: str, **request: Any) -> tuple[Any, str, str, str | None]:
    """One request whole and once streamed: the whole reply, the streamed answer, thinking and finish reason."""
    reply = create(live, key=key, **request)
    answer, thinking, finish = [], [], None
    for chunk in create(live, key=key, stream=True, **request):
        for choice in chunk.choices:
            answer.append(choice.delta.content or "")
            thinking.append(extra(choice.delta, "reasoning_content") or "")
            finish = choice.finish_reason or finish
    return reply, "".join(answer), "".join(thinking), finish


def test_stop_strings_cut_the_answer_whole_and_streamed(keyed: LiveServer) -> None:
    base = {"model": "demo", "messages": SKY, "max_tokens": 40, "temperature": 0}
    full = create(keyed, key=KEY, **base).choices[0].message.content
    words = full.split(" ")
    stop = " ".join(words[len(words) // 2: len(words) // 2 + 2])  # two words: spread over several tokens
    assert len(stop) > 3 and full.find(stop) > 0
    expected = full[:full.find(stop)]
    for stops in (stop, ["never in this answer", stop]):
        reply, streamed, _, finish = _whole_and_streamed(keyed, KEY, **base, stop=stops)
        assert reply.choices[0].message.content == expected == streamed
        assert reply.choices[0].finish_reason == "stop" == finish
        assert extra(reply, "localr1")["stop_reason"] == "stop_sequence"
    reply, streamed, _, finish = _whole_and_streamed(keyed, KEY, **base, stop=["never in this answer"])
    assert reply.choices[0].message.content == full == streamed  # a held-back partial match is sent at the end
    assert reply.choices[0].finish_reason == "length" == finish


def test_stop_strings_never_cut_the_thinking(live: LiveServer) -> None:
    base: dict[str, Any] = {"model": "demo", "messages": HI, "max_tokens": 48, "temperature": 0,
            "extra_body": {"thinking_budget": 8}}
    first = create(live, **base).choices[0].message
    thinking, answer = extra(first, "reasoning_content"), first.content
    stop = max(thinking.split(), key=len)  # in the thinking (and maybe in the answer too)
    expected = answer[:answer.find(stop)] if stop in answer else answer
    reply, streamed, streamed_thinking, _ = _whole_and_streamed(live, "unused", **base, stop=stop)
    assert extra(reply.choices[0].message, "reasoning_content") == thinking == streamed_thinking
    assert reply.choices[0].message.content == expected == streamed


@pytest.mark.parametrize("stop", [["a", "b", "c", "d", "e"], 7, ["ok", 3]])
def test_a_bad_stop_is_a_400_naming_it(live: LiveServer, stop: Any) -> None:
    status, reply = post(live.url + "/chat/completions", json.dumps({"messages": HI, "stop": stop}).encode())
    assert status == 400 and reply["error"]["param"] == "stop", reply


@pytest.mark.parametrize("stop", ["", [""]])
def test_an_empty_stop_string_stops_nothing_alone_or_listed(live: LiveServer, stop: Any) -> None:
    body = {"messages": HI, "stop": stop, "max_tokens": 4}
    status, reply = post(live.url + "/chat/completions", json.dumps(body).encode())
    assert status == 200 and reply["choices"][0]["finish_reason"] == "length", reply
