"""GGUF output: header and tensor infos by the gguf package's writer, tensor data written by us.

Every shard is written under a `.partial` name and renamed only when all shards are complete,
so an interrupted run never leaves a file that looks finished. Tensor data goes in with positioned
writes at offsets known from the header, so several threads can write at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import os
import re
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import gguf
import numpy as np

from quantize.errors import OutputError

PARTIAL_SUFFIX = ".partial"
DISK_MARGIN = 64 * 1024 * 1024
FreeBytes = Callable[[Path], int]


def disk_free_bytes(directory: Path) -> int:
    """Free bytes on the file system holding `directory`."""
    return shutil.disk_usage(directory).free


def check_disk_space(directory: Path, needed: int, free_bytes: FreeBytes | None = None) -> None:
    """Fail before writing anything when the output cannot fit (with a small margin)."""
    free = (free_bytes or disk_free_bytes)(directory)
    if free < needed + DISK_MARGIN:
        raise OutputError(
            f"not enough disk space in {directory}: the output needs {human_bytes(needed)} "
            f"(+{DISK_MARGIN // 2**20} MB margin) but only {human_bytes(free)} are free"
        )


def human_bytes(n: int) -> str:
    """'3.56 GB', '420.0 MB'."""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def copy_range(src_fd: int, src_offset: int, dst_fd: int, dst_offset: int, length: int) -> None:
    """Copy bytes between files unchanged: copy_file_range (in the kernel), else read and write."""
    done = 0
    if hasattr(os, "copy_file_range"):
        with contextlib.suppress(OSError):  # e.g. EXDEV or ENOSYS: fall back below
            while done < length:
                n = os.copy_file_range(src_fd, dst_fd, length - done, src_offset + done, dst_offset + done)
                if n <= 0:
                    break
                done += n
    while done < length:
        piece = os.pread(src_fd, min(length - done, 8 * 2**20), src_offset + done)
        if not piece:
            raise OutputError(f"a source file ended early while copying {length} bytes")
        pwrite_all(dst_fd, piece, dst_offset + done)
        done += len(piece)


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """pwrite until every byte is written: a short write (disk full) must never pass silently."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        n = os.pwrite(fd, view[done:], offset + done)
        if n <= 0:
            raise OutputError(f"could not write at byte {offset + done} of the output (disk full?)")
        done += n


class FastGGUFWriter(gguf.GGUFWriter):
    """The gguf package's writer with list-of-str and list-of-int arrays packed in bulk (same bytes)."""

    def _pack_val(self, val: Any, vtype: Any, add_vtype: bool, sub_type: Any = None) -> bytes:
        packed = _pack_array(val) if vtype == gguf.GGUFValueType.ARRAY and sub_type is None else None
        if packed is None or self.endianess != gguf.GGUFEndian.LITTLE:
            return bytes(super()._pack_val(val, vtype, add_vtype, sub_type))
        return (struct.pack("<I", vtype) if add_vtype else b"") + packed


_U64 = struct.Struct("<Q")


def _pack_array(val: Any) -> bytes | None:
    """Item type, count and items of a non-empty list of str or of int (gguf: INT32), else None."""
    if not isinstance(val, list) or not val:
        return None
    if all(type(v) is str for v in val):
        out = bytearray(struct.pack("<IQ", gguf.GGUFValueType.STRING, len(val)))
        pack = _U64.pack
        for item in val:
            encoded = item.encode("utf-8")
            out += pack(len(encoded))
            out += encoded
        return bytes(out)
    if all(type(v) is int for v in val):
        return struct.pack("<IQ", gguf.GGUFValueType.INT32, len(val)) + np.asarray(val, dtype="<i4").tobytes()
    return None


def temp_name(final: Path, pid: int | None = None) -> Path:
    """Where a process writes a shard before renaming it to `final` (`NAME.PID.partial`)."""
    return final.with_name(f"{final.name}.{os.getpid() if pid is None else pid}{PARTIAL_SUFFIX}")


def remove_stale_temps(final: Path) -> None:
    """Delete temporary shards that killed runs left for `final` (the caller holds the output's lock)."""
    pattern = re.compile(re.escape(final.name) + r"\.\d+" + re.escape(PARTIAL_SUFFIX))
    for leftover in final.parent.glob(f"{glob.escape(final.name)}.*{PARTIAL_SUFFIX}"):
        if pattern.fullmatch(leftover.name) and leftover.is_file():
            leftover.unlink(missing_ok=True)


class GGUFOutput:
    """The shard files of one conversion, written under temporary names (unique to this process)."""

    def __init__(self, final: Path, writer: Any, *, force: bool) -> None:
        self.writer = writer
        self.finals = [Path(p) for p in writer.format_shard_names(final)]
        self.temps = [temp_name(p) for p in self.finals]
        self.handles: list[IO[bytes]] = []
        self.shard_of = {name: i for i, tensors in enumerate(writer.tensors) for name in tensors}
        self.offsets: dict[str, int] = {}
        existing = [p for p in self.finals if p.exists()]
        special = [p for p in existing if not p.is_file()]
        if special:  # --force replaces files, never a folder, a device such as /dev/full, or a pipe
            raise OutputError(f"{special[0]} is not a regular file (a folder, a device or a pipe); "
                              "give the path of a new .gguf file")
        if existing and not force:
            raise OutputError(f"{existing[0]} already exists (use --force to overwrite it)")

    def open(self) -> None:
        """Create the temporary files and write header, metadata and tensor infos."""
        for final in self.finals:
            remove_stale_temps(final)
        self.handles = []
        for temp in self.temps:  # one by one, so that abort() closes and removes those already made
            self.handles.append(open(temp, "wb", buffering=0))  # noqa: SIM115  closed by commit/abort
        self.writer.fout = self.handles
        self.writer.state = gguf.gguf_writer.WriterState.EMPTY
        self.writer.write_header_to_file()
        self.writer.write_kv_data_to_file()
        self.writer.write_ti_data_to_file()
        align = self.writer.data_alignment
        for fh, tensors in zip(self.handles, self.writer.tensors, strict=True):
            self.writer.write_padding(fh, fh.tell())
            offset = data_start = fh.tell()
            for name, info in tensors.items():
                self.offsets[name] = offset
                offset += gguf.GGUFWriter.ggml_pad(info.nbytes, align)
            os.ftruncate(fh.fileno(), offset)  # padding between tensors reads as zeros
            preallocate(fh.fileno(), data_start, offset - data_start)

    def fd_of(self, name: str) -> int:
        """The file descriptor of the shard that holds a tensor."""
        return self.handles[self.shard_of[name]].fileno()

    def commit(self, durable: bool = True) -> list[Path]:
        """Flush, optionally fsync, close, and rename every shard into place."""
        for fh in self.handles:
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
            fh.close()
        for temp, final in zip(self.temps, self.finals, strict=True):
            os.replace(temp, final)
        if durable:
            _fsync_dir(self.finals[0].parent)
        return self.finals

    def abort(self) -> None:
        """Close and delete the temporary files."""
        for fh in self.handles:
            with contextlib.suppress(OSError):
                fh.close()
        for temp in self.temps:
            temp.unlink(missing_ok=True)


def preallocate(fd: int, offset: int, length: int) -> None:
    """Reserve the file's blocks up front (ext4 then writes ~2x faster); skipped where unsupported."""
    fallocate = getattr(_libc(), "fallocate64", None) or getattr(_libc(), "fallocate", None)
    if fallocate is None or length <= 0:
        return
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fallocate.restype = ctypes.c_int
    if fallocate(fd, 1, offset, length) != 0:  # FALLOC_FL_KEEP_SIZE
        err = ctypes.get_errno()
        if err == errno.ENOSPC:
            raise OutputError(f"not enough disk space for the output ({human_bytes(length)} of tensor data)")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
