"""Accuracy from the kept answers: pass@1 averaged over samples, a 95% Wilson interval, majority vote.

Answers are graded again from their text every time, so a better grader applies to answers already given.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from statistics import fmean

from quantize.quality.tasks.answers import extract, is_correct, vote_key
from quantize.quality.tasks.problems import Problem
from quantize.quality.tasks.records import AnswerRecord

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (successes may be fractional: pass@1 averaged over samples)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # rounding can put a bound past the proportion itself (5.6e-17 for 0 of 3): the interval always holds it
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def majority_correct(problem: Problem, records: list[AnswerRecord]) -> bool:
    """Whether the answer most samples agree on is right (a tie goes to the earliest sample among the tied)."""
    found = [extract(r.answer, problem.kind) for r in sorted(records, key=lambda r: r.sample)]
    keys = [vote_key(f, problem.kind) for f in found]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return False
    top = max(counts.values())
    winner = next(i for i, k in enumerate(keys) if k is not None and counts[k] == top)
    return is_correct(found[winner], problem.answer, problem.kind)


@dataclass(frozen=True)
class ModelFile:
    """Which model answered: its name in the report, file name, sha256 and size."""

    name: str
    file: str
    sha256: str
    size: int


@dataclass
class ModelAccuracy:
    """One model's row: accuracy over the problem set, and what the answers cost."""

    name: str
    file: str
    sha256: str
    size: int
    problems: int
    samples: int
    answers: int  # answers kept (problems x samples when complete)
    accuracy: float  # pass@1, averaged over samples
    ci_low: float
    ci_high: float
    majority: float | None  # majority-vote accuracy (with more than one sample)
    answered: float  # share of answers with a final answer found
    cut_off: int  # answers a token limit or the thinking budget ended while thinking
    mean_thinking_tokens: float
    mean_tokens: float
    seconds_per_answer: float  # mean seconds for one answer

    @property
    def complete(self) -> bool:
        """True when every problem has every sample."""
        return self.answers == self.problems * self.samples


def score_model(model: ModelFile, problems: list[Problem], answers: dict[tuple[str, int], AnswerRecord],
                samples: int) -> ModelAccuracy:
    """Grade one model's answers to `problems` (keyed by problem id and sample); a missing answer counts as wrong."""
    per_problem: list[float] = []
    votes: list[bool] = []
    kept: list[AnswerRecord] = []
    found = 0
    for problem in problems:
        records = [answers[(problem.id, s)] for s in range(samples) if (problem.id, s) in answers]
        kept.extend(records)
        right = 0
        for record in records:
            extracted = extract(record.answer, problem.kind)
            found += extracted is not None
            right += is_correct(extracted, problem.answer, problem.kind)
        per_problem.append(right / samples)
        votes.append(majority_correct(problem, records))
    n = len(problems)
    accuracy = fmean(per_problem) if per_problem else 0.0
    low, high = wilson(accuracy * n, n)
    return ModelAccuracy(
        name=model.name, file=model.file, sha256=model.sha256, size=model.size, problems=n, samples=samples,
        answers=len(kept), accuracy=accuracy, ci_low=low, ci_high=high,
        majority=(fmean(votes) if votes else 0.0) if samples > 1 else None,
        answered=found / len(kept) if kept else 0.0,
        cut_off=sum(r.thinking_cut_off for r in kept),
        mean_thinking_tokens=fmean(r.thinking_tokens for r in kept) if kept else 0.0,
        mean_tokens=fmean(r.tokens for r in kept) if kept else 0.0,
        seconds_per_answer=fmean(r.seconds for r in kept) if kept else 0.0,
    )
