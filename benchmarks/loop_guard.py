"""Loop guard: false positives on a long varied corpus, detection latency on scripted loops, cost per token.

Tokenizes the corpus (benchmarks/data/loop_guard, this repository's Markdown and Python, a fixed list of
standard-library modules) with the demo model's tokenizer and the real R1 7B tokenizer, feeds every
document to the guard as one reply, and reports any hit with the text around it. Then builds loops from
corpus spans of 4..256 tokens (joined the same way each time, joined alternately by a space and a blank
line, and with one token changed per copy) after a corpus prefix, and measures the tokens from the loop's
start to the hit.

    python benchmarks/loop_guard.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localr1.engine.loop_guard import LoopGuard, LoopGuardConfig, token_key  # noqa: E402
from localr1.engine.vocab import Vocab  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "loop_guard"
STDLIB_MODULES = (
    "argparse", "calendar", "json.encoder", "html.entities", "unittest.case", "dataclasses", "textwrap",
    "http.client", "email.message", "csv", "difflib", "pprint", "statistics", "string", "tokenize",
)
PERIODS = (4, 5, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


@dataclass
class Document:
    """One corpus text."""

    name: str
    text: str


def corpus() -> list[Document]:
    """The written corpus, the repository's own text and code, and the standard-library modules."""
    docs = [Document(p.name, p.read_text(encoding="utf-8")) for p in sorted(DATA.iterdir()) if p.name != "README.md"]
    for path in [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md", *sorted((ROOT / "docs").glob("*.md")),
                 *sorted((ROOT / "localr1").rglob("*.py"))]:
        docs.append(Document(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
    for module in STDLIB_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            docs.append(Document(f"stdlib:{module}", Path(spec.origin).read_text(encoding="utf-8")))
    return docs


class Tokenizer:
    """A vocabulary with the guard's key per token cached."""

    def __init__(self, name: str, vocab: Vocab) -> None:
        self.name, self.vocab = name, vocab
        self._keys: dict[int, int | None] = {}

    def tokens(self, text: str) -> list[int]:
        return self.vocab.tokenize(text, add_bos=False, special=False)

    def key(self, token: int) -> int | None:
        if token not in self._keys:
            self._keys[token] = token_key(self.vocab.piece(token))
        return self._keys[token]

    def text(self, tokens: list[int]) -> str:
        return self.vocab.detokenize(tokens).decode("utf-8", "replace")


def run_guard(tok: Tokenizer, tokens: list[int], config: LoopGuardConfig) -> tuple[int | None, object]:
    """Feed tokens; (index of the token where the guard fired, the hit) or (None, None)."""
    guard = LoopGuard(config)
    for index, token in enumerate(tokens):
        key = tok.key(token)
        if key is None:
            continue
        hit = guard.feed(key)
        if hit is not None:
            return index, hit
    return None, None


def false_positives(tok: Tokenizer, docs: list[Document], config: LoopGuardConfig) -> tuple[int, list[str]]:
    """Tokens scanned and a line per false positive (a document is scanned on after a hit)."""
    scanned, hits = 0, []
    for doc in docs:
        tokens = tok.tokens(doc.text)
        scanned += len(tokens)
        start = 0
        while start < len(tokens):
            index, hit = run_guard(tok, tokens[start:], config)
            if index is None:
                break
            at = start + index
            context = tok.text(tokens[max(0, at - 40): at + 1]).replace("\n", "\\n")
            hits.append(f"{doc.name} token {at}: {hit} …{context[-160:]}")
            start = at + 1
    return scanned, hits


def is_prose(tok: Tokenizer, unit: list[int], config: LoopGuardConfig) -> bool:
    """The guard's own test: a unit with enough distinct words is prose (seen at 3 periods)."""
    words = {k for t in unit if (k := tok.key(t)) is not None and k & 1}
    return len(words) >= config.min_words


def scripted_loops(tok: Tokenizer, docs: list[Document], rng: random.Random, per_period: int,
                   config: LoopGuardConfig) -> dict[str, list[float]]:
    """Latency in periods (tokens from the loop's start to the hit, over the period) per loop kind."""
    pool = [t for d in docs if len(t := tok.tokens(d.text)) > 600 for _ in [0]]
    space, blank = tok.tokens(" "), tok.tokens("\n\n")
    latency: dict[str, list[float]] = {}
    missed: dict[str, int] = {}
    for period in PERIODS:
        for _ in range(per_period):
            source = rng.choice(pool)
            at = rng.randrange(200, len(source) - period)
            unit, prefix = source[at: at + period], source[at - 200: at]
            copies = max(4, -(-800 // period))  # at least 800 tokens: room for every rule
            kind_of_unit = "prose unit" if is_prose(tok, unit, config) else "data unit"
            kinds = {
                "exact": [t for _ in range(copies) for t in unit],
                "joined by ' ' or blank line": [t for i in range(copies) for t in unit + (space if i % 2 else blank)],
                "one token changed per copy": [t for _ in range(copies)
                                               for t in [*unit[:-1], rng.randrange(tok.vocab.size)]],
            }
            for kind, loop in kinds.items():
                if kind.startswith("one token") and period < 8:
                    continue  # a changed token in a 4-token unit is no longer a loop of that unit
                name = f"{kind}, {kind_of_unit}"
                index, _ = run_guard(tok, prefix + loop, config)
                if index is None:
                    missed[name] = missed.get(name, 0) + 1
                    continue
                latency.setdefault(name, []).append((index + 1 - len(prefix)) / period)
    for name, n in missed.items():
        latency[f"{name} (missed)"] = [float(n)]
    return latency


def speed(tok: Tokenizer, docs: list[Document]) -> float:
    """Microseconds per token fed to the guard."""
    tokens = [t for d in docs[:20] for t in tok.tokens(d.text)][:50_000]
    keys = [k for t in tokens if (k := tok.key(t)) is not None]
    guard = LoopGuard()
    started = time.perf_counter()
    for key in keys:
        guard.feed(key)
    return (time.perf_counter() - started) / max(1, len(keys)) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer scripted loops per period")
    parser.add_argument("--window", type=int, default=LoopGuardConfig.window, help="diversity window (tokens)")
    parser.add_argument("--min-distinct", type=float, default=LoopGuardConfig.min_distinct,
                        help="diversity threshold (distinct n-grams per window token)")
    args = parser.parse_args()
    config = LoopGuardConfig(window=args.window, min_distinct=args.min_distinct)
    sys.path.insert(0, str(ROOT))
    from localr1.registry import resolve_model
    from tests.fixtures.r1_header import r1_header_part, vocab_only_copy
    from tests.fixtures.vocab_file import VocabFile

    work = Path(__import__("tempfile").mkdtemp(prefix="loopguard-"))
    r1 = VocabFile(vocab_only_copy(r1_header_part(), work / "r1-vocab.gguf"))
    demo = VocabFile(resolve_model("demo").path)
    docs = corpus()
    print(f"guard: {config}")
    print(f"corpus: {len(docs)} documents, {sum(len(d.text) for d in docs):,} characters")
    for tok in (Tokenizer("demo (SmolLM2)", demo.vocab), Tokenizer("R1 7B (Qwen)", r1.vocab)):
        scanned, hits = false_positives(tok, docs, config)
        print(f"\n{tok.name}: {scanned:,} tokens scanned, {len(hits)} false positive(s)")
        for line in hits:
            print("  " + line)
        latency = scripted_loops(tok, docs, random.Random(13), 3 if args.quick else 10, config)
        for kind, values in latency.items():
            if kind.endswith("(missed)"):
                print(f"  {kind}: {int(values[0])}")
            elif values:
                print(f"  {kind}: {len(values)} loops, detected after median {statistics.median(values):.2f}, "
                      f"max {max(values):.2f} periods")
        print(f"  cost: {speed(tok, docs):.1f} µs per token")
    r1.close()
    demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
