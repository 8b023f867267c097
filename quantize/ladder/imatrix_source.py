"""Getting the ladder's importance matrix: a user's file, the one recorded in OUT_DIR, or a fresh collection."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantize.errors import CalibrationError, OutputDirError
from quantize.ladder.calibration import CalibrationSet, load_calibration, render_conversation
from quantize.ladder.imatrix import Imatrix, collect_imatrix
from quantize.ladder.imatrix_file import load_imatrix, save_imatrix
from quantize.ladder.manifest import (
    FileRecord,
    Manifest,
    file_matches,
    partial_path,
    publishing,
    record_file,
    sha256_file,
)
from quantize.progress import Reporter

if TYPE_CHECKING:
    from quantize.ladder.base_gguf import BaseModel
    from quantize.ladder.options import LadderOptions
    from quantize.runner import Runner

IMATRIX_NAME = "imatrix.gguf"


def calibration_texts(base: BaseModel, calibration: CalibrationSet) -> list[str]:
    """Each conversation rendered with the base model's own chat template (or the plain text, whole)."""
    if calibration.text is not None:
        return [calibration.text]
    return [render_conversation(base.info, c) for c in calibration.conversations]


def token_sequences(runner: Runner, texts: list[str], bos_text: str | None, n_ctx: int, max_tokens: int
                    ) -> list[list[int]]:
    """Tokenize texts into sequences of at most n_ctx tokens, BOS where the model wants it, max_tokens in all."""
    sequences: list[list[int]] = []
    total = 0
    for text in texts:
        add_bos = runner.adds_bos and not (bos_text and text.startswith(bos_text))
        tokens = runner.tokenize(text, add_bos=False)
        step = n_ctx - (1 if add_bos else 0)
        for begin in range(0, len(tokens), step):
            piece = ([runner.bos] if add_bos else []) + tokens[begin:begin + step]
            piece = piece[: max_tokens - total]
            if len(piece) > 1:
                sequences.append(piece)
                total += len(piece)
            if total >= max_tokens:
                return sequences
    return sequences


def _collect(base: BaseModel, calibration: CalibrationSet, options: LadderOptions, reporter: Reporter) -> Imatrix:
    from quantize.runner import Runner

    texts = calibration_texts(base, calibration)
    with Runner(base.path, n_ctx=options.calibration_ctx, threads=options.quantize.threads) as tokenizer:
        sequences = token_sequences(tokenizer, texts, base.info.bos_token, tokenizer.n_ctx,
                                    options.calibration_tokens)
    if not sequences:
        raise CalibrationError("the calibration text gave no tokens to collect an importance matrix from")
    total = sum(len(s) for s in sequences)
    reporter.start("collecting importance matrix (tokens)", total)
    try:
        return collect_imatrix(base.path, sequences, threads=options.quantize.threads, n_ctx=options.calibration_ctx,
                               progress=lambda done, _total: reporter.advance(done),
                               dataset=Path(calibration.source).name)
    finally:
        reporter.finish()


def _settings(base: BaseModel, calibration: CalibrationSet, options: LadderOptions) -> dict[str, Any]:
    return {"base_sha256": base.sha256, "calibration": calibration.source,
            "calibration_sha256": calibration.sha256, "max_tokens": options.calibration_tokens,
            "ctx": options.calibration_ctx}


def obtain_imatrix(base: BaseModel, out_dir: Path, manifest: Manifest, options: LadderOptions,
                   reporter: Reporter) -> tuple[Imatrix, Path]:
    """The importance matrix for this ladder, recorded in the manifest; collected only when nothing valid exists."""
    if options.imatrix_file is not None:
        imatrix = load_imatrix(options.imatrix_file)
        manifest.imatrix = {"provided": True, "path": str(options.imatrix_file.resolve()),
                            "sha256": imatrix.sha256(), "entries": len(imatrix.entries), "tokens": imatrix.tokens}
        return imatrix, options.imatrix_file
    calibration = load_calibration(options.calibration)
    settings = _settings(base, calibration, options)
    final = out_dir / IMATRIX_NAME
    old = manifest.imatrix or {}
    if not old.get("provided") and old.get("settings") == settings and "file" in old:
        record = FileRecord(**old["file"])
        if file_matches(out_dir, record):
            imatrix = load_imatrix(final)
            if imatrix.sha256() == old.get("sha256"):
                reporter.note(f"importance matrix: reusing {final.name} ({imatrix.tokens} tokens)")
                return imatrix, final
    if final.exists() and old.get("file", {}).get("path") != final.name:
        raise OutputDirError(f"{final} exists but is not in the manifest; move it away or choose another directory")
    started = time.perf_counter()
    imatrix = _collect(base, calibration, options, reporter)
    seconds = time.perf_counter() - started
    temp = partial_path(final)
    with publishing(temp, final, out_dir, manifest):
        save_imatrix(imatrix, temp)
        manifest.imatrix = {"provided": False, "file": asdict(record_file(out_dir, temp, sha256_file(temp))),
                            "sha256": imatrix.sha256(), "entries": len(imatrix.entries), "tokens": imatrix.tokens,
                            "chunks": imatrix.chunks, "seconds": round(seconds, 3), "settings": settings}
        manifest.imatrix["file"]["path"] = final.name
    reporter.note(f"importance matrix: {imatrix.tokens} calibration tokens, {len(imatrix.entries)} matrices")
    return imatrix, final
