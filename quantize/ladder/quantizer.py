"""llama.cpp's own quantizer (`llama_model_quantize`) through llama-cpp-python: one file to one type."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

from localr1.engine.params import default_threads
from localr1.gguf_header import read_header
from quantize.errors import ImatrixRequiredError, QuantizeError, RequantizeError
from quantize.ladder.imatrix import ImatrixCArray
from quantize.ladder.qtypes import TENSOR_TYPES, QuantType
from quantize.llama_log import capture_llama_log

TensorProgress = Callable[[int, int, str], None]  # (tensor index, tensor count, tensor name)
_TENSOR_LINE = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]\s+(\S+)")
_QUANT_SIZE = re.compile(r"quant size\s*=\s*([\d.]+)\s*MiB")
_ALIGNMENT_SLACK = 32  # bytes of padding per tensor at most (GGUF default alignment)
_NEARLY_FULL = 4 * 1024 * 1024  # free bytes left on a disk that refused llama.cpp's write


@dataclass(frozen=True)
class QuantizeOptions:
    """Everything besides the type that decides the output file."""

    threads: int = 0
    output_tensor_type: str | None = None
    token_embedding_type: str | None = None
    allow_requantize: bool = False

    def as_dict(self) -> dict[str, object]:
        """The options as recorded in the manifest (threads do not change the output)."""
        return {
            "output_tensor_type": self.output_tensor_type,
            "token_embedding_type": self.token_embedding_type,
            "allow_requantize": self.allow_requantize,
        }


def _params(qtype: QuantType, options: QuantizeOptions, dry_run: bool) -> llama_cpp.llama_model_quantize_params:
    params: llama_cpp.llama_model_quantize_params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = options.threads or default_threads()
    params.ftype = qtype.ftype
    if options.output_tensor_type:
        params.output_tensor_type = TENSOR_TYPES[options.output_tensor_type]
    if options.token_embedding_type:
        params.token_embedding_type = TENSOR_TYPES[options.token_embedding_type]
    params.allow_requantize = options.allow_requantize
    params.dry_run = dry_run
    return params


def _failure(reason: str, source: Path, qtype: QuantType) -> QuantizeError:
    reason = reason.split("failed to quantize:", 1)[-1].strip()
    if "requires an imatrix" in reason or "Missing importance matrix" in reason:
        return ImatrixRequiredError(
            f"{qtype.name} needs an importance matrix: drop --no-imatrix or give one with --imatrix FILE"
        )
    if "requantizing from type" in reason:
        return RequantizeError(
            f"{source.name} holds quantized tensors ({reason}); pass --allow-requantize to quantize them again"
        )
    return QuantizeError(f"llama.cpp could not quantize {source.name} to {qtype.name}: {reason}")


def _call(source: Path, dest: Path, params: llama_cpp.llama_model_quantize_params,
          on_line: Callable[[str], None] | None) -> tuple[int, str | None, list[str]]:
    """Run the quantizer in a worker thread so that Ctrl-C reaches Python while it works."""
    result: dict[str, int] = {}
    with capture_llama_log(on_line) as log:
        def work() -> None:
            result["rc"] = llama_cpp.llama_model_quantize(
                str(source).encode(), str(dest).encode(), ctypes.byref(params)
            )

        worker = threading.Thread(target=work, name="llama-quantize", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    return result.get("rc", 1), log.last_error(), list(log.lines)


def quantize_file(
    source: Path,
    dest: Path,
    qtype: QuantType,
    options: QuantizeOptions,
    *,
    imatrix: ImatrixCArray | None = None,
    on_tensor: TensorProgress | None = None,
) -> None:
    """Quantize source into dest (which the caller treats as a temporary name until this returns)."""
    params = _params(qtype, options, dry_run=False)
    if imatrix is not None:
        params.imatrix = imatrix.pointer

    def on_line(line: str) -> None:
        match = _TENSOR_LINE.match(line)
        if match and on_tensor is not None:
            on_tensor(int(match.group(1)), int(match.group(2)), match.group(3))

    rc, error, _ = _call(source, dest, params, on_line)
    if rc != 0:
        reason = error or f"error code {rc}"
        problem = _write_problem(dest) if "iostream error" in reason else None
        if problem:
            raise QuantizeError(f"llama.cpp could not write {qtype.name} into {dest.parent}: {problem}")
        raise _failure(reason, source, qtype)


def _write_problem(dest: Path) -> str | None:
    """Why llama.cpp's write of dest failed, which it reports only as an iostream error: a file size limit or a
    full disk."""
    try:
        written = dest.stat().st_size
    except OSError:
        written = 0
    try:
        import resource
    except ImportError:  # Windows
        resource = None  # type: ignore[assignment]
    if resource is not None:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and written >= limit - _NEARLY_FULL:
            return (f"the file reached this process's file size limit ({limit / 1e6:.1f} MB); raise it "
                    "('ulimit -f unlimited') and run the same command again")
    try:
        free = shutil.disk_usage(dest.parent).free
    except OSError:
        return None
    if free < _NEARLY_FULL:
        return (f"the disk is full ({free / 1e6:.1f} MB free); free some disk space, drop some --types, or choose "
                "another -o, and run the same command again")
    return None


def estimate_size(source: Path, qtype: QuantType, options: QuantizeOptions) -> int:
    """Bytes the output will take, from llama.cpp's own dry run (tensor data) plus the source's metadata."""
    params = _params(qtype, options, dry_run=True)
    rc, error, lines = _call(source, Path(os.devnull), params, None)  # a dry run opens no output
    if rc != 0:
        raise _failure(error or f"error code {rc}", source, qtype)
    for line in reversed(lines):
        match = _QUANT_SIZE.search(line)
        if match:
            header = read_header(source)
            tensor_bytes = float(match.group(1)) * 1024 * 1024
            return int(tensor_bytes) + header.data_start + _ALIGNMENT_SLACK * len(header.tensors) + 16 * 1024
    raise QuantizeError(f"llama.cpp's dry run of {qtype.name} reported no size for {source.name}")
