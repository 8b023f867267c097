"""Loop guard: false positives on a long varied corpus, detection latency on scripted loops, cost per token.

Tokenizes the corpus (benchmarks/data/loop_guard, this repository's Markdown and Python, a fixed list of
standard-library modules) with the demo model's tokenizer and the real R1 7B tokenizer, feeds every
document to the guard as one reply (as an answer, and again as thinking), and reports any hit with the
text around it. Then builds loops from corpus spans of 4..256 tokens (joined the same way each time,
joined alternately by a space and a blank line, and with one token changed per copy) after a corpus
prefix, and measures the tokens from the loop's start to the hit. `--sweep` measures a grid of
thresholds instead and prints the Pareto table.

    python benchmarks/loop_guard.py [--quick] [--sweep]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localr1.engine.loop_guard import LoopGuard, LoopGuardConfig, LoopHit, token_key  # noqa: E402
from localr1.engine.vocab import Vocab  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "loop_guard"
STDLIB_MODULES = (
    "argparse", "calendar", "json.encoder", "html.entities", "unittest.case", "dataclasses", "textwrap",
    "http.client", "email.message", "csv", "difflib", "pprint", "statistics", "string", "tokenize",
)
PERIODS = (4, 5, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
NEAR = "one token changed per copy"


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

    def keyed(self, tokens: list[int]) -> list[tuple[int, int]]:
        """(index, key) of the tokens the guard sees (whitespace-only ones are left out)."""
        return [(i, k) for i, t in enumerate(tokens) if (k := self.key(t)) is not None]

    def text(self, tokens: list[int]) -> str:
        return self.vocab.detokenize(tokens).decode("utf-8", "replace")


@dataclass
class Scripted:
    """One scripted loop: its label, unit length, prefix length and keyed tokens."""

    kind: str
    period: int
    prefix: int
    keyed: list[tuple[int, int]]


@dataclass
class Prepared:
    """A tokenizer's corpus and scripted loops, tokenized once."""

    tok: Tokenizer
    docs: list[tuple[str, list[int], list[tuple[int, int]]]]
    loops: list[Scripted] = field(default_factory=list)

    def docs_keyed(self, name: str) -> list[tuple[int, int]]:
        """The keyed tokens of one document."""
        return next(keyed for n, _, keyed in self.docs if n == name)


def run_guard(keyed: list[tuple[int, int]], config: LoopGuardConfig, thinking: bool = False,
              ) -> tuple[int | None, LoopHit | None]:
    """Feed keys; (index of the token where the guard fired, the hit) or (None, None)."""
    guard = LoopGuard(config)
    for index, key in keyed:
        hit = guard.feed(key, thinking=thinking)
        if hit is not None:
            return index, hit
    return None, None


def false_positives(prep: Prepared, config: LoopGuardConfig, thinking: bool = False,
                    only: set[str] | None = None) -> list[str]:
    """A line per false positive (a document is scanned on after a hit)."""
    hits = []
    for name, tokens, keyed in prep.docs:
        if only is not None and name not in only:
            continue
        rest = keyed
        while rest:
            index, hit = run_guard(rest, config, thinking)
            if index is None:
                break
            context = prep.tok.text(tokens[max(0, index - 40): index + 1]).replace("\n", "\\n")
            hits.append(f"{name} token {index}: {hit} …{context[-160:]}")
            rest = [(i, k) for i, k in rest if i > index]
    return hits


def is_prose(tok: Tokenizer, unit: list[int]) -> bool:
    """The default guard's test: a unit with at least 3 distinct words is prose (seen at 3 periods)."""
    words = {k for t in unit if (k := tok.key(t)) is not None and k & 1}
    return len(words) >= LoopGuardConfig().min_words


def scripted_loops(prep: Prepared, rng: random.Random, per_period: int) -> None:
    """Build the scripted loops: corpus spans repeated after a corpus prefix."""
    tok = prep.tok
    pool = [tokens for _, tokens, _ in prep.docs if len(tokens) > 600]
    space, blank = tok.tokens(" "), tok.tokens("\n\n")
    for period in PERIODS:
        for _ in range(per_period):
            source = rng.choice(pool)
            at = rng.randrange(200, len(source) - period)
            unit, prefix = source[at: at + period], source[at - 200: at]
            copies = max(4, -(-800 // period))  # at least 800 tokens: room for every rule
            kind_of_unit = "prose unit" if is_prose(tok, unit) else "data unit"
            kinds = {
                "exact": [t for _ in range(copies) for t in unit],
                "joined by ' ' or blank line": [t for i in range(copies) for t in unit + (space if i % 2 else blank)],
                NEAR: [t for _ in range(copies) for t in [*unit[:-1], rng.randrange(tok.vocab.size)]],
            }
            for kind, loop in kinds.items():
                if kind == NEAR and period < 8:
                    continue  # a changed token in a 4-token unit is no longer a loop of that unit
                prep.loops.append(Scripted(f"{kind}, {kind_of_unit}", period, len(prefix), tok.keyed(prefix + loop)))


def latency(prep: Prepared, config: LoopGuardConfig, thinking: bool = False) -> dict[str, list[float]]:
    """Periods from the loop's start to the hit, per loop kind; missed loops count as infinity."""
    out: dict[str, list[float]] = {}
    for loop in prep.loops:
        index, _ = run_guard(loop.keyed, config, thinking)
        value = float("inf") if index is None else (index + 1 - loop.prefix) / loop.period
        out.setdefault(loop.kind, []).append(value)
    return out


def summary(values: list[float]) -> str:
    """'median / max periods (k missed)' of a latency list."""
    found = [v for v in values if v != float("inf")]
    missed = len(values) - len(found)
    if not found:
        return f"all {missed} missed"
    text = f"{statistics.median(found):.2f} / {max(found):.2f}"
    return text + (f" ({missed} of {len(values)} missed)" if missed else "")


def speed(prep: Prepared, config: LoopGuardConfig, rounds: int = 5) -> float:
    """Median CPU microseconds per token fed to the guard over rounds of the first 50k corpus tokens (CPU time:
    a busy machine deschedules the process, which wall time would count)."""
    keys = [k for _, _, keyed in prep.docs[:40] for _, k in keyed][:50_000]
    times = []
    for _ in range(rounds):
        guard = LoopGuard(config)
        started = time.process_time()
        for key in keys:
            guard.feed(key)
        times.append((time.process_time() - started) / max(1, len(keys)) * 1e6)
    return statistics.median(times)

LOOSEST = LoopGuardConfig(min_words=0, data_span=0, thinking_data_span=0, near_min_period=8, near_ratio=0.8,
                          near_mismatches=10**6, near_span=0)


def sweep_grid() -> dict[str, list[LoopGuardConfig]]:
    """The thresholds swept, one family at a time around the defaults (each no looser than LOOSEST)."""
    base = LoopGuardConfig()
    return {
        "data": [replace(base, data_span=s, thinking_data_span=s, min_words=w)
                 for w, spans in ((2, (48, 96)), (3, (24, 32, 48, 64, 80, 96, 128)), (4, (24, 48, 96)))
                 for s in spans],
        "near": [replace(base, near_min_period=m, near_span=s) for m in (8, 12) for s in (48, 64, 96, 128)]
        + [replace(base, near_mismatches=2), replace(base, near_ratio=0.8)],
        "thinking": [replace(base, thinking_data_span=s) for s in (0, 12, 24, 48, 96)],
    }


def sweep_row(preps: list[Prepared], risky: list[set[str]], config: LoopGuardConfig, family: str) -> str:
    """One Markdown row: false positives per tokenizer, then latency of the loops the family moves."""
    thinking = family == "thinking"
    fps = [len(false_positives(p, config, thinking, only)) for p, only in zip(preps, risky, strict=True)]
    pooled: dict[str, list[float]] = {}
    for prep in preps:
        for kind, values in latency(prep, config, thinking).items():
            group = "near" if kind.startswith(NEAR) else "prose" if kind.endswith("prose unit") else "data"
            pooled.setdefault(group, []).extend(values)
    knobs = {"data": f"data_span {config.data_span}, min_words {config.min_words}",
             "near": f"near_min_period {config.near_min_period}, near_span {config.near_span}, near_ratio "
                     f"{config.near_ratio}, near_mismatches {min(config.near_mismatches, 99)}",
             "thinking": f"thinking_data_span {config.thinking_data_span}"}[family]
    return (f"| {knobs} | {fps[0]} / {fps[1]} | {summary(pooled['data'])} | {summary(pooled['prose'])} "
            f"| {summary(pooled['near'])} |")


def sweep(preps: list[Prepared], families: list[str]) -> None:
    """Print, per family of thresholds, false positives against latency (both tokenizers' loops pooled)."""
    # The rules are monotone in the thresholds: a document LOOSEST leaves alone no config in the grid flags.
    risky = [{name for name, _, _ in p.docs if run_guard(p.docs_keyed(name), LOOSEST)[0] is not None}
             for p in preps]
    for prep, names in zip(preps, risky, strict=True):
        print(f"{prep.tok.name}: {len(names)} documents flagged by {LOOSEST}: {sorted(names)}")
    for family, configs in sweep_grid().items():
        if family not in families:
            continue
        channel = "thinking" if family == "thinking" else "answer"
        print(f"\n| {family} thresholds | false positives ({channel}; demo / R1) | data loops (median / max periods) "
              "| prose loops | near-loops |\n|---|---|---|---|---|")
        for config in configs:
            print(sweep_row(preps, risky, config, family), flush=True)


@contextmanager
def tokenizers() -> Iterator[list[Tokenizer]]:
    """The demo model's and the real R1 7B's tokenizers, loaded vocabulary-only."""
    from localr1.registry import resolve_model
    from tests.fixtures.r1_header import r1_header_part, vocab_only_copy
    from tests.fixtures.vocab_file import VocabFile

    work = Path(__import__("tempfile").mkdtemp(prefix="loopguard-"))
    with VocabFile(vocab_only_copy(r1_header_part(), work / "r1-vocab.gguf")) as r1, \
            VocabFile(resolve_model("demo").path) as demo:
        yield [Tokenizer("demo (SmolLM2)", demo.vocab), Tokenizer("R1 7B (Qwen)", r1.vocab)]


def prepare(tok: Tokenizer, docs: list[Document], per_period: int) -> Prepared:
    """Tokenize the corpus and build the scripted loops (same seed for every run)."""
    prep = Prepared(tok, [(d.name, tokens, tok.keyed(tokens)) for d in docs for tokens in [tok.tokens(d.text)]])
    scripted_loops(prep, random.Random(13), per_period)
    return prep


def report(prep: Prepared, config: LoopGuardConfig) -> None:
    """False positives (answer and thinking), latency per loop kind, cost per token."""
    print(f"\n{prep.tok.name}: {sum(len(t) for _, t, _ in prep.docs):,} tokens scanned")
    for thinking in (False, True):
        hits = false_positives(prep, config, thinking)
        print(f"  {'thinking' if thinking else 'answer'}: {len(hits)} false positive(s)")
        for line in hits:
            print("    " + line)
    answer, thought = latency(prep, config), latency(prep, config, thinking=True)
    for kind in sorted(answer):
        print(f"  {kind}: {len(answer[kind])} loops, median / max periods {summary(answer[kind])}"
              f"; in thinking {summary(thought[kind])}")
    print(f"  cost: {speed(prep, config):.1f} µs of CPU per token (median of 5 rounds of 50k tokens)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer scripted loops per period")
    parser.add_argument("--sweep", nargs="*", choices=["data", "near", "thinking"],
                        help="measure a grid of thresholds (the Pareto table): these families, or all")
    args = parser.parse_args()
    config = LoopGuardConfig()
    docs = corpus()
    print(f"guard: {config}")
    print(f"corpus: {len(docs)} documents, {sum(len(d.text) for d in docs):,} characters")
    with tokenizers() as toks:
        preps = [prepare(tok, docs, 3 if args.quick else 10) for tok in toks]
        if args.sweep is not None:
            sweep(preps, args.sweep or ["data", "near", "thinking"])
        else:
            for prep in preps:
                report(prep, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
