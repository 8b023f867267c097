"""Prompt tokens evaluated per turn over a long conversation once the context is full.

A scripted 40-turn conversation on the demo model at a 512-token context, greedy, replies capped
at 48 tokens: per turn, the prompt's tokens, how many llama.cpp evaluated (the rest came from the
KV cache), how many messages were left out, and the time to first token. Run it against an older
checkout (PYTHONPATH=that checkout) to measure the trimming that checkout does.

    .venv/bin/python benchmarks/context_trim.py [--turns 40] [--ctx 512] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from localr1.engine import ChatMessage, ContextTrimmed, Finished, LoadParams, SamplingParams
from localr1.engine.engine import Engine
from localr1.registry import resolve_model

TOPICS = ["rivers", "bread", "volcanoes", "owls", "tea", "bridges", "comets", "violins", "deserts", "bees"]


def question(turn: int) -> str:
    """The user's message at a turn: different each turn, about 25 tokens."""
    topic = TOPICS[turn % len(TOPICS)]
    return f"Question {turn + 1}: tell me one short, surprising fact about {topic}, in a single sentence please."


def main() -> None:
    """Run the conversation and print a per-turn table and a summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--json", type=Path, help="also write the per-turn rows here")
    args = parser.parse_args()

    path = resolve_model("demo").path
    sampling = SamplingParams(temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, max_tokens=args.max_tokens)
    engine = Engine(path, LoadParams(context_size=args.ctx, seed=1), sampling)
    history: list[ChatMessage] = []
    rows = []
    for turn in range(args.turns):
        history.append(ChatMessage("user", question(turn)))
        dropped = 0
        final = None
        for event in engine.chat(history):
            if isinstance(event, ContextTrimmed):
                dropped = event.dropped_messages
            elif isinstance(event, Finished):
                final = event
        assert final is not None and final.error is None
        s = final.stats
        rows.append({"turn": turn + 1, "prompt": s.prompt_tokens, "evaluated": s.prompt_eval_tokens,
                     "cached": s.cached_tokens, "dropped": dropped, "generated": s.generated_tokens,
                     "ttft_s": round(s.time_to_first_token_s, 4)})
        history.append(ChatMessage("assistant", final.answer))
    engine.close()

    print(f"model {path.name}, ctx {args.ctx}, {args.turns} turns, replies up to {args.max_tokens} tokens, greedy")
    print("| turn | prompt tokens | evaluated | from cache | messages left out | ttft (ms) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['turn']} | {r['prompt']} | {r['evaluated']} | {r['cached']} | {r['dropped']} | "
              f"{r['ttft_s'] * 1e3:.0f} |")
    full = [r for r in rows if r["dropped"]]
    if full:
        first = rows.index(full[0])
        after = rows[first:]
        print(f"context full from turn {full[0]['turn']}: over the {len(after)} turns from then on, "
              f"evaluated per turn median {statistics.median(r['evaluated'] for r in after):.0f}, "
              f"mean {statistics.mean(r['evaluated'] for r in after):.1f}, "
              f"total {sum(r['evaluated'] for r in after)}; "
              f"turns that evaluated over half their prompt: {sum(r['evaluated'] * 2 > r['prompt'] for r in after)}; "
              f"ttft median {statistics.median(r['ttft_s'] for r in after) * 1e3:.0f} ms")
    print(f"all turns: evaluated total {sum(r['evaluated'] for r in rows)}, "
          f"ttft median {statistics.median(r['ttft_s'] for r in rows) * 1e3:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
