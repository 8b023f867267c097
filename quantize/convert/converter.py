"""Checkpoint -> GGUF: plan, metadata, then tensors streamed chunk by chunk with bounded memory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gguf import GGMLQuantizationType as QType

from localr1.oserrors import os_errors
from quantize.convert.arch import Architecture, get_architecture
from quantize.convert.checkpoint import Checkpoint, open_checkpoint
from quantize.convert.config import load_generation_config
from quantize.convert.dtypes import FILE_TYPES, OUT_TYPES
from quantize.convert.stream import TASK_BYTES, stream
from quantize.convert.tensor_plan import TensorJob, plan_tensors
from quantize.convert.tokenizer import Vocab, load_vocab
from quantize.convert.writer import FastGGUFWriter, FreeBytes, GGUFOutput, check_disk_space
from quantize.errors import ConversionError, OutputError
from quantize.outlock import locked_file


@dataclass(frozen=True)
class ConvertProgress:
    """Where a conversion stands; sent after every task (a few MB)."""

    tensor: str
    tensors_done: int
    tensors_total: int
    bytes_done: int
    bytes_total: int


@dataclass(frozen=True)
class ConversionResult:
    """What was written."""

    files: list[Path]
    architecture: str
    file_type: str
    tensors: int
    parameters: int
    size_label: str
    tensor_bytes: int
    seconds: float


ProgressFn = Callable[[ConvertProgress], None]


def _model_name(checkpoint: Checkpoint) -> str:
    return checkpoint.directory.resolve().name or "model"


def _write_metadata(
    writer: Any, checkpoint: Checkpoint, *, arch: Architecture, vocab: Vocab, jobs: list[TensorJob], qtype: QType
) -> str:
    c = checkpoint.config
    parameters = sum(job.n_elements for job in jobs)
    size_label = gguf.size_label(parameters, parameters, 0, 0)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(_model_name(checkpoint))
    writer.add_size_label(size_label)
    writer.add_file_type(int(FILE_TYPES[qtype]))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(c.max_position_embeddings)
    writer.add_block_count(c.num_hidden_layers)
    writer.add_embedding_length(c.hidden_size)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_rope_freq_base(float(c.rope_theta))
    writer.add_rope_dimension_count(c.head_dim)
    writer.add_layer_norm_rms_eps(float(c.rms_norm_eps))
    writer.add_vocab_size(len(vocab.tokens))
    if c.head_dim != c.hidden_size // c.num_attention_heads:
        writer.add_key_length(c.head_dim)
        writer.add_value_length(c.head_dim)
    for key, value in arch.metadata(c).items():
        _add_value(writer, key, value)
    generation = load_generation_config(checkpoint.directory)
    if isinstance(generation.get("temperature"), int | float):
        writer.add_sampling_temp(float(generation["temperature"]))
    if isinstance(generation.get("top_p"), int | float):
        writer.add_sampling_top_p(float(generation["top_p"]))
    if isinstance(generation.get("top_k"), int) and generation["top_k"] > 0:
        writer.add_sampling_top_k(int(generation["top_k"]))
    vocab.write(writer)
    return size_label


def _add_value(writer: Any, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    else:
        writer.add_string(key, str(value))


class _Progress:
    """Turns finished tasks into ConvertProgress reports."""

    def __init__(self, jobs: list[TensorJob], callback: ProgressFn | None) -> None:
        self.callback, self.tensors, self.total, self.done = callback, len(jobs), sum(j.nbytes for j in jobs), 0

    def __call__(self, job: TensorJob, tensors_done: int, nbytes: int) -> None:
        self.done += nbytes
        if self.callback is not None:
            self.callback(ConvertProgress(job.name, tensors_done, self.tensors, self.done, self.total))


def _metadata_estimate(vocab: Vocab) -> int:
    """An upper bound of the header size: at most 4 bytes per character, plus lengths and types."""
    return sum(4 * len(t) + 12 for t in vocab.tokens) + sum(4 * len(m) + 8 for m in vocab.merges) + 2**20


def convert(
    checkpoint_dir: str | Path,
    output: str | Path,
    *,
    outtype: str = "f16",
    split_max_size: int = 0,
    force: bool = False,
    free_bytes: FreeBytes | None = None,
    progress: ProgressFn | None = None,
    durable: bool = True,
    task_bytes: int = TASK_BYTES,
    workers: int | None = None,
) -> ConversionResult:
    """Convert a Hugging Face checkpoint folder to GGUF; returns the files written (shards if split).
    Holds the output's run lock: a second conversion to the same file fails at once, naming this one."""
    started = time.perf_counter()
    if outtype not in OUT_TYPES:
        raise ConversionError(f"unknown output type '{outtype}' (choose from {', '.join(OUT_TYPES)})")
    qtype = OUT_TYPES[outtype]
    output = Path(output)
    if not output.parent.is_dir():
        raise OutputError(f"output folder {output.parent} does not exist (create it first: mkdir -p {output.parent})")
    if output.exists() and not output.is_file():  # checked again, with every shard name, under the lock
        raise OutputError(f"{output} is not a regular file (a folder, a device or a pipe); "
                          "give the path of a new .gguf file")
    with locked_file(output), os_errors("read"), open_checkpoint(checkpoint_dir) as checkpoint:
        arch = get_architecture(checkpoint.config.architecture)
        jobs = plan_tensors(checkpoint, arch, qtype)
        vocab = load_vocab(checkpoint.directory, checkpoint.config.vocab_size,
                           load_generation_config(checkpoint.directory))
        if split_max_size >= sum(j.nbytes for j in jobs):
            split_max_size = 0  # one file anyway (and no warning from the gguf writer)
        writer = FastGGUFWriter(None, arch.gguf_arch, split_max_size=split_max_size)
        size_label = _write_metadata(writer, checkpoint, arch=arch, vocab=vocab, jobs=jobs, qtype=qtype)
        for job in jobs:
            writer.add_tensor_info(job.name, job.shape, np.dtype(np.float32), job.nbytes, raw_dtype=job.qtype)
        target = GGUFOutput(output, writer, force=force)
        needed = sum(gguf.GGUFWriter.ggml_pad(j.nbytes, writer.data_alignment) for j in jobs)
        check_disk_space(output.parent, needed + _metadata_estimate(vocab), free_bytes)
        try:
            with os_errors("write", output):
                target.open()
                stream(checkpoint, target, jobs, _Progress(jobs, progress), task_bytes=task_bytes, workers=workers)
                files = target.commit(durable=durable)
        except BaseException:
            target.abort()
            raise
    return ConversionResult(
        files=files,
        architecture=arch.gguf_arch,
        file_type=FILE_TYPES[qtype].name.removeprefix("MOSTLY_").removeprefix("ALL_"),
        tensors=len(jobs),
        parameters=sum(j.n_elements for j in jobs),
        size_label=size_label,
        tensor_bytes=sum(j.nbytes for j in jobs),
        seconds=time.perf_counter() - started,
    )
