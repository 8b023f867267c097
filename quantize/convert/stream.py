"""Tensor data from the memory-mapped checkpoint into the GGUF, by a few threads, in bounded memory.

Work comes in tasks of about TASK_BYTES (a tensor's rows, or a whole small tensor); a task's mapped
pages are dropped when it is done, so memory stays at a few tasks whatever the model size. Inside a
task, rows are converted PIECE_BYTES at a time into a per-thread buffer small enough to stay in the
CPU cache, then written with pwrite at their final offset: the bytes cross main memory once, as in a
plain copy. Tensors whose type does not change are copied file to file by the kernel.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from quantize.convert.checkpoint import Checkpoint
from quantize.convert.dtypes import convert_chunk
from quantize.convert.tensor_plan import TensorJob
from quantize.convert.writer import GGUFOutput, copy_range, pwrite_all

TASK_BYTES = 8 * 1024 * 1024
PIECE_BYTES = 1024 * 1024
MAX_WORKERS = 4


@dataclass(frozen=True)
class Task:
    """Rows [begin, end) of one job."""

    job: int
    begin: int
    end: int


def _rows(job: TensorJob) -> int:
    return job.shape[0] if len(job.shape) > 1 else 1


def _row_bytes(job: TensorJob) -> tuple[int, int]:
    """Bytes of one row in the source and in the output."""
    rows = _rows(job)
    return (job.source.nbytes // rows if job.source else 0), job.nbytes // rows


def _step(job: TensorJob, budget: int) -> int:
    """Rows per unit of `budget` bytes; permuted tensors move whole heads."""
    rows = _rows(job)
    step = max(1, budget // max(*_row_bytes(job), 1))
    if job.row_order is not None:
        head_rows = rows // job.permute_heads
        step = max(head_rows, step // head_rows * head_rows)
    return min(rows, step)


def plan_tasks(jobs: list[TensorJob], task_bytes: int = TASK_BYTES) -> list[Task]:
    """Every job cut into tasks, in file order."""
    tasks = []
    for index, job in enumerate(jobs):
        rows = _rows(job)
        step = rows if job.unchanged else _step(job, task_bytes)  # the kernel copies it in one call
        tasks += [Task(index, begin, min(rows, begin + step)) for begin in range(0, rows, step)]
    return tasks


class _Worker:
    """One thread's state: its output buffer, reused for every piece."""

    def __init__(self, checkpoint: Checkpoint, output: GGUFOutput, jobs: list[TensorJob], piece_bytes: int) -> None:
        self.checkpoint, self.output, self.jobs, self.piece_bytes = checkpoint, output, jobs, piece_bytes
        biggest = max(_step(j, piece_bytes) * _row_bytes(j)[1] for j in jobs)
        self.buffer: npt.NDArray[np.uint8] = np.empty(biggest, dtype=np.uint8)

    def run(self, task: Task) -> int:
        """Write one task's bytes; returns how many."""
        job = self.jobs[task.job]
        fd = self.output.fd_of(job.name)
        src_row, out_row = _row_bytes(job)
        out_offset = self.output.offsets[job.name] + task.begin * out_row
        if job.data is not None:
            pwrite_all(fd, np.ascontiguousarray(job.data, dtype=np.float32).tobytes(), out_offset)
            return job.nbytes
        ref = job.source
        assert ref is not None
        mapped = self.checkpoint.mapped(ref)
        start, length = ref.start + task.begin * src_row, (task.end - task.begin) * src_row
        if job.unchanged:
            copy_range(mapped.fd, start, fd, out_offset, length)
            return length
        view = mapped.view(ref)
        rows: Any = view if len(job.shape) < 2 else view[task.begin : task.end]
        if job.row_order is not None:
            rows = view[job.row_order[task.begin : task.end]]
        step = _step(job, self.piece_bytes) if len(job.shape) > 1 else 1
        written = 0
        for begin in range(0, len(rows) if len(job.shape) > 1 else 1, step):
            piece = rows[begin : begin + step] if len(job.shape) > 1 else rows
            data = convert_chunk(piece, ref.dtype, job.qtype, self.buffer)
            pwrite_all(fd, data, out_offset + written)
            written += len(data)
        del rows, view
        mapped.release(start, length)
        return written


ProgressFn = Callable[[TensorJob, int, int], None]


def stream(checkpoint: Checkpoint, output: GGUFOutput, jobs: list[TensorJob], on_task: ProgressFn,
           *, task_bytes: int = TASK_BYTES, piece_bytes: int | None = None, workers: int | None = None) -> None:
    """Write every job's data; `on_task(job, tensors_done, bytes)` runs on this thread after each task."""
    tasks = plan_tasks(jobs, task_bytes)
    remaining = [0] * len(jobs)
    for task in tasks:
        remaining[task.job] += 1
    pending: queue.Queue[Task | None] = queue.Queue()
    results: queue.Queue[tuple[Task, int] | BaseException] = queue.Queue()
    stop = threading.Event()
    count = max(1, min(workers or os.cpu_count() or 1, MAX_WORKERS, len(tasks)))

    def work() -> None:
        worker = _Worker(checkpoint, output, jobs, piece_bytes or PIECE_BYTES)
        while (task := pending.get()) is not None and not stop.is_set():
            try:
                results.put((task, worker.run(task)))
            except BaseException as exc:  # handed to the main thread, which raises it
                results.put(exc)
                return

    for job in jobs:  # map every file here: workers then only read the dict
        if job.source is not None:
            checkpoint.mapped(job.source)
    for task in tasks:
        pending.put(task)
    for _ in range(count):
        pending.put(None)
    threads = [threading.Thread(target=work, name=f"gguf-writer-{i}", daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    tensors_done = 0
    try:
        for _ in tasks:
            item = results.get()
            if isinstance(item, BaseException):
                raise item
            task, nbytes = item
            remaining[task.job] -= 1
            tensors_done += remaining[task.job] == 0
            on_task(jobs[task.job], tensors_done, nbytes)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
