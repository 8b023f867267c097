"""Operating-system errors through the real command line: one line, a non-zero exit code, nothing half-written.

Tests run as root here, which ignores permission bits: the failing cases are real ones that fail for root too
(/proc, /sys, a file in place of a folder, a device or a pipe in place of a file), and a read-only or full
disk is a real tmpfs mounted in a private mount namespace (`unshare -m`), skipped where mounting is not allowed.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_helpers import localr1
from tests.quantize.ladder_fixtures import demo_f16_fixture, files_in  # noqa: F401

TINY_LADDER = ["--types", "Q4_0", "--no-imatrix", "--no-eval", "--threads", "2"]


def _one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, (result.returncode, result.stderr)
    assert lines[0].startswith("localr1: error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_output_folder_under_proc(medium_ckpt: Path) -> None:
    result = localr1("quantize", str(medium_ckpt), "-o", "/proc/nope", *TINY_LADDER)
    _one_line_error(result, "cannot create the output folder /proc/nope", "(ENOENT)", "create the missing folder")
    assert not Path("/proc/nope").exists()
    result = localr1("convert", str(medium_ckpt), "-o", "/proc/nope.gguf")
    _one_line_error(result, "/proc/.nope.gguf.lock", "(ENOENT)")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs sysfs")
def test_output_folder_where_nobody_may_write(medium_ckpt: Path) -> None:
    result = localr1("quantize", str(medium_ckpt), "-o", "/sys/nope", *TINY_LADDER)
    line = _one_line_error(result, "cannot create the output folder /sys/nope", "check the permissions")
    assert "(EPERM)" in line or "(EACCES)" in line
    line = _one_line_error(localr1("convert", str(medium_ckpt), "-o", "/sys/nope.gguf"), "/sys/.nope.gguf.lock")
    assert "(EPERM)" in line or "(EACCES)" in line


def test_a_file_where_a_folder_is_expected(tmp_path: Path, medium_ckpt: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    _one_line_error(localr1("quantize", str(medium_ckpt), "-o", str(afile / "ladder"), *TINY_LADDER),
                    f"cannot create the output folder {afile / 'ladder'}", "(ENOTDIR)")
    _one_line_error(localr1("quantize", str(medium_ckpt), "-o", str(afile), *TINY_LADDER),
                    "is a file, not a directory")
    _one_line_error(localr1("convert", str(medium_ckpt), "-o", str(afile / "x.gguf")), "does not exist")
    assert files_in(tmp_path) == {"notes.txt": 4}


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _char_device(path: Path) -> None:  # a copy of /dev/full (major 1, minor 7)
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs root")


@pytest.mark.parametrize("make", [os.mkdir, _fifo, _char_device], ids=["folder", "pipe", "device"])
def test_force_never_replaces_a_folder_a_pipe_or_a_device(tmp_path: Path, medium_ckpt: Path,
                                                          make: Callable[[Path], None]) -> None:
    target = tmp_path / "out.gguf"
    make(target)
    before = os.lstat(target)
    _one_line_error(localr1("convert", str(medium_ckpt), "-o", str(target), "--force"),
                    f"{target} is not a regular file", "give the path of a new .gguf file")
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.gguf"]  # no lock, no temporary file


@pytest.mark.model
def test_a_full_standard_output_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    full = tmp_path / "full"
    _char_device(full)
    with full.open("w") as out:
        result = subprocess.run([sys.executable, "-m", "localr1", "run", "-n", "4", "-t", "0", "hi"], stdout=out,
                                stderr=subprocess.PIPE, text=True, env=dict(os.environ), timeout=120, check=False)
    plan, rest = result.stderr.split("\n", 1)  # the planner's one-line choice comes first on stderr
    assert plan.startswith("localr1: plan: "), result.stderr
    _one_line_error(subprocess.CompletedProcess(result.args, result.returncode, result.stdout, rest),
                    "No space left on device (ENOSPC)", "free some disk space")
    with full.open("w") as out:
        debug = subprocess.run([sys.executable, "-m", "localr1", "--debug", "run", "-n", "4", "-t", "0", "hi"],
                               stdout=out, stderr=subprocess.PIPE, text=True, env=dict(os.environ), timeout=120,
                               check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "OSError" in debug.stderr


# --- a real read-only or full disk: a tmpfs in a private mount namespace ---------------------------------------

PRIVATE_MOUNT = """
mnt=$1; options=$2; free_pages=$3; shift 3
mount -t tmpfs -o "$options" tmpfs "$mnt" || exit 99
if [ -n "$SETUP" ]; then sh -c "$SETUP" >/dev/null 2>&1 || exit 98; fi
if [ "$free_pages" -ge 0 ]; then
    avail=$(df -B1 --output=avail "$mnt" | tail -n 1)
    head -c $((avail - free_pages * $(getconf PAGESIZE))) /dev/zero > "$mnt/filler" 2>/dev/null
fi
"$@"
code=$?
(cd "$mnt" && find . -mindepth 1 | sort) > "$LISTING"
exit $code
"""


@pytest.fixture(scope="module")
def private_mounts(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless this process may mount a tmpfs in a mount namespace of its own."""
    probe = tmp_path_factory.mktemp("probe")
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare")
    result = subprocess.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', str(probe)],
                            capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")


def on_tmpfs(tmp_path: Path, options: str, args: list[str], *, free_pages: int = -1, setup: str = ""
             ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `localr1 ARGS` with MNT (in args, and in setup's $MNT) a fresh tmpfs mounted with options, after
    setup and after filling it to `free_pages` free pages; returns the result and what MNT then holds."""
    mnt, listing = tmp_path / "mnt", tmp_path / "listing.txt"
    mnt.mkdir(exist_ok=True)
    argv = [a.replace("MNT", str(mnt)) for a in args]
    env = {**os.environ, "LISTING": str(listing), "MNT": str(mnt), "PY": sys.executable, "SETUP": setup}
    result = subprocess.run(["unshare", "-m", "sh", "-c", PRIVATE_MOUNT, "sh", str(mnt), options, str(free_pages),
                             sys.executable, "-m", "localr1", *argv],
                            capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode not in (98, 99), result.stderr
    return result, listing.read_text().split()


@pytest.mark.usefixtures("private_mounts")
def test_read_only_disk(tmp_path: Path, medium_ckpt: Path) -> None:
    result, listing = on_tmpfs(tmp_path, "ro,size=4m", ["quantize", str(medium_ckpt), "-o", "MNT/ladder", *TINY_LADDER])
    _one_line_error(result, "cannot create the output folder", "Read-only file system (EROFS)", "read-only")
    assert listing == []
    result, listing = on_tmpfs(tmp_path, "ro,size=4m", ["convert", str(medium_ckpt), "-o", "MNT/model.gguf"])
    _one_line_error(result, "(EROFS)")
    assert listing == []


@pytest.mark.usefixtures("private_mounts")
@pytest.mark.parametrize(("free_pages", "failing"), [(0, ".localr1.lock.info"), (1, "manifest.json")])
def test_full_disk_during_quantize(tmp_path: Path, medium_ckpt: Path, free_pages: int, failing: str) -> None:
    result, listing = on_tmpfs(tmp_path, "size=1m", ["quantize", str(medium_ckpt), "-o", "MNT/ladder", *TINY_LADDER],
                               free_pages=free_pages)
    _one_line_error(result, f"cannot write {tmp_path / 'mnt' / 'ladder' / failing}: No space left on device (ENOSPC)",
                    "free some disk space")
    assert listing == ["./filler"]  # no partial file, no lock, not even the folder it made


@pytest.mark.usefixtures("private_mounts")
def test_full_disk_during_convert(tmp_path: Path, medium_ckpt: Path) -> None:
    for free_pages in (0, 4):
        result, listing = on_tmpfs(tmp_path, "size=1m", ["convert", str(medium_ckpt), "-o", "MNT/model.gguf"],
                                   free_pages=free_pages)
        line = _one_line_error(result)
        assert "No space left on device (ENOSPC)" in line or "not enough disk space" in line
        assert listing == ["./filler"]


@pytest.mark.model
@pytest.mark.usefixtures("private_mounts")
def test_full_disk_during_eval_keeps_the_ladder(tmp_path: Path, demo_f16: Path) -> None:
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    build = f'"$PY" -m localr1 quantize {demo_f16} -o "$MNT/ladder" ' + " ".join(TINY_LADDER)
    result, listing = on_tmpfs(tmp_path, "size=200m", ["eval", "MNT/ladder", "--heldout", str(heldout),
                                                       "--speed-tokens", "0", "--threads", "2"],
                               free_pages=1, setup=build)
    _one_line_error(result, f"cannot write {tmp_path / 'mnt' / 'ladder' / 'eval-reference.npz'}",
                    "No space left on device (ENOSPC)")
    assert "./ladder/manifest.json" in listing and any(n.endswith("-Q4_0.gguf") for n in listing)
    assert [n for n in listing if ".partial" in n or ".lock" in n or "eval-reference" in n or "quality" in n] == []


@pytest.mark.parametrize(("option", "make", "message"), [
    ("--heldout", lambda p: p.write_text(""), "the held-out text {} is empty"),
    ("--heldout", os.mkdir, "cannot read the held-out text {}: Is a directory"),
    ("--calibration", os.mkdir, "cannot read the calibration file {}: Is a directory"),
    ("--calibration", lambda p: p.write_bytes(b"\xff\xfe"), "the calibration file {} is not UTF-8 text"),
])
def test_bad_text_files_fail_before_any_work(tmp_path: Path, medium_ckpt: Path, option: str,
                                             make: Callable[[Path], object], message: str) -> None:
    text = tmp_path / "text.txt"
    make(text)
    out = tmp_path / "ladder"
    result = localr1("quantize", str(medium_ckpt), "-o", str(out), "--types", "Q8_0", "--threads", "2", option,
                     str(text))
    _one_line_error(result, message.format(text))
    assert not out.exists()  # refused before converting the checkpoint


# --- llama.cpp's own write failing: it reports only "iostream error" -----------------------------------------


def _base_gguf(tmp_path: Path, medium_ckpt: Path) -> Path:
    base = tmp_path / "base.gguf"
    result = localr1("convert", str(medium_ckpt), "-o", str(base))
    assert result.returncode == 0, result.stderr
    return base


@pytest.mark.model
@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_file_size_limit_while_llama_cpp_writes(tmp_path: Path, medium_ckpt: Path) -> None:
    """Under `ulimit -f` a variant bigger than the limit fails in llama.cpp: the line says why and what to do."""
    import resource

    base, out = _base_gguf(tmp_path, medium_ckpt), tmp_path / "ladder"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, resource.RLIM_INFINITY))  # Q8_0 is ~4.7 MB here

    result = subprocess.run([sys.executable, "-m", "localr1", "quantize", str(base), "-o", str(out), "--types",
                             "Q4_K_M,Q8_0", "--no-imatrix", "--no-eval", "--threads", "2"], preexec_fn=limit,
                            capture_output=True, text=True, env=dict(os.environ), timeout=300, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and lines[-1].startswith("localr1: error: "), result.stderr
    assert "could not write Q8_0" in lines[-1] and "file size limit (3.0 MB)" in lines[-1]
    assert "ulimit -f" in lines[-1] and "iostream" not in lines[-1]
    kept = sorted(p.name for p in out.iterdir())  # Q4_K_M kept whole; no partial file, no lock
    assert len(kept) == 2 and kept[0] == "manifest.json" and kept[1].endswith("-Q4_K_M.gguf"), kept
    result = localr1("quantize", str(base), "-o", str(out), "--types", "Q4_K_M,Q8_0", "--no-imatrix", "--no-eval",
                     "--threads", "2")
    assert result.returncode == 0 and "1 built, 1 already complete" in result.stdout + result.stderr


FILL_AND_QUANTIZE = """
import sys
from pathlib import Path
from quantize.errors import QuantizeError
from quantize.ladder.qtypes import parse_types
from quantize.ladder.quantizer import QuantizeOptions, quantize_file
try:
    quantize_file(Path(sys.argv[1]), Path(sys.argv[2]), parse_types("Q8_0")[0], QuantizeOptions(threads=2))
except QuantizeError as exc:
    print(exc)
"""


@pytest.mark.model
@pytest.mark.usefixtures("private_mounts")
def test_full_disk_while_llama_cpp_writes(tmp_path: Path, medium_ckpt: Path) -> None:
    """A real 4 MB disk that a 4.7 MB variant fills: llama.cpp's iostream error is reported as a full disk."""
    base, mnt = _base_gguf(tmp_path, medium_ckpt), tmp_path / "mnt"
    mnt.mkdir()
    env = {**os.environ, "LISTING": str(tmp_path / "listing.txt"), "SETUP": "",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(["unshare", "-m", "sh", "-c", PRIVATE_MOUNT, "sh", str(mnt), "size=4m", "-1",
                             sys.executable, "-c", FILL_AND_QUANTIZE, str(base), str(mnt / "x.partial")],
                            capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"llama.cpp could not write Q8_0 into {mnt}: the disk is full"), result.stdout
    assert "free some disk space" in result.stdout


def test_a_file_where_the_models_folder_should_be(medium_ckpt: Path) -> None:
    """Installing (no -o) under a file named like the models folder said 'File exists: choose another path'."""
    from localr1.paths import models_dir

    models = models_dir()
    models.parent.mkdir(parents=True, exist_ok=True)
    models.write_text("mine")
    line = _one_line_error(localr1("quantize", str(medium_ckpt), *TINY_LADDER),
                           f"cannot create the models folder {models}: {models} is a file, not a folder")
    assert "move it away" in line and "choose another path" not in line
    assert models.read_text() == "mine"
