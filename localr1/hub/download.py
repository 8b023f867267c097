"""One file from the Hub into the shared Hub cache: free space checked before the first byte, the partial file kept
across interruptions and resumed with a Range request, the result checked against the hash the Hub published (a
mismatch is fetched once more, then refused), and only then moved into place and linked into its commit's snapshot.

huggingface_hub's own `hf_hub_download` deletes a partial download when it fails, so a 40 GB pull cut at 39 GB
would start again: the request, redirect and streaming code is huggingface_hub's (`get_hf_file_metadata`,
`http_get`), the partial file and the checks are ours.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from filelock import FileLock

from localr1.errors import FileSystemError
from localr1.hub.cache import blob_path, hub_cache_dir, link_snapshot, repo_folder, snapshot_path, write_ref
from localr1.hub.client import RepoSnapshot, endpoint, hub_errors, require_online, timeout
from localr1.hub.errors import ChecksumError, HubError, NotEnoughSpaceError
from localr1.oserrors import os_error_message

Progress = Callable[[str, int, int | None], None]  # file name, bytes done, bytes in all
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
GIT_OID_RE = re.compile(r"^[0-9a-f]{40}$")
DISK_MARGIN = 64 * 1024 * 1024
PARTIAL_SUFFIX = ".incomplete"
ATTEMPTS = 2  # a file that fails its checksum is fetched once more from scratch


@dataclass(frozen=True)
class Fetched:
    """A file in the Hub cache: where it is, what it is, and whether this run (or an interrupted one) downloaded it."""

    name: str
    path: Path
    blob: Path
    size: int
    sha256: str | None
    etag: str
    downloaded: bool


def _free_space(folder: Path) -> tuple[Path, int]:
    """Free bytes on the file system of the nearest existing folder."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe, shutil.disk_usage(probe).free


def check_space(snapshot: RepoSnapshot, names: list[str], cache: Path | None = None) -> int:
    """Refuse before downloading anything when the missing bytes (less what partial files hold) would not fit;
    returns the bytes still to download."""
    cache = cache or hub_cache_dir()
    needed = 0
    for name in names:
        remote = snapshot.files[name]
        if remote.size is None:
            continue
        blob = blob_path(snapshot.repo, remote.sha256, cache) if remote.sha256 else None
        if blob is not None and blob.exists():
            continue
        partial = blob.with_name(blob.name + PARTIAL_SUFFIX) if blob is not None else None
        done = partial.stat().st_size if partial is not None and partial.exists() else 0
        needed += max(0, remote.size - done)
    where, free = _free_space(repo_folder(snapshot.repo, cache))
    if needed and needed + DISK_MARGIN > free:
        raise NotEnoughSpaceError(
            f"{snapshot.repo} needs {needed / 1e9:.2f} GB but {where} has {free / 1e9:.2f} GB free: free some space, "
            "or point HF_HUB_CACHE at a larger disk")
    return needed


class _HashingFile:
    """The partial file as huggingface_hub's `http_get` writes it: hashes and reports every byte."""

    def __init__(self, fh: BinaryIO, hasher: hashlib._Hash | None, on_bytes: Callable[[int], None]) -> None:
        self.fh, self.hasher, self.on_bytes = fh, hasher, on_bytes

    def write(self, data: bytes) -> int:
        if self.hasher is not None:
            self.hasher.update(data)
        written = self.fh.write(data)
        self.on_bytes(len(data))
        return written

    def tell(self) -> int:
        return self.fh.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        # The server ignored our Range and sent the whole file: start the hash again from what is kept.
        end = self.fh.truncate(size)
        if self.hasher is not None:
            self.hasher = _hash_prefix(Path(self.fh.name), end)
        return end


def _hash_prefix(path: Path, length: int) -> hashlib._Hash:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(8 << 20, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            remaining -= len(chunk)
    return hasher


def git_oid(path: Path) -> str:
    """The git object id of a file (the ETag the Hub gives a file not stored in LFS)."""
    hasher = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(8 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def verified(path: Path, sha256: str | None, etag: str) -> bool:
    """Whether a file matches its published sha256 (or, for a small non-LFS file, its git object id)."""
    if sha256 is not None:
        return _hash_prefix(path, path.stat().st_size).hexdigest() == sha256
    if GIT_OID_RE.match(etag):
        return git_oid(path) == etag
    return True  # nothing published to check against


@contextmanager
def _download_timeout() -> Iterator[None]:
    """huggingface_hub's `http_get` reads its read timeout from a module constant fixed at import: set it for us."""
    from huggingface_hub import constants

    before = constants.HF_HUB_DOWNLOAD_TIMEOUT
    constants.HF_HUB_DOWNLOAD_TIMEOUT = int(max(1, timeout()))
    try:
        yield
    finally:
        constants.HF_HUB_DOWNLOAD_TIMEOUT = before


class _PastTheEndError(Exception):
    """The server answered 416 to a resume: its copy of the file ends where the partial file does (or before)."""


def _stream(url: str, partial: Path, size: int | None, sha256: str | None, report: Callable[[int], None]) -> str | None:
    """Append the rest of a file to its partial file; returns the sha256 of the whole (None when not hashed)."""
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers, disable_progress_bars  # type: ignore[attr-defined]

    disable_progress_bars()  # ours is drawn by the command
    headers = build_hf_headers()
    if urlsplit(url).netloc != urlsplit(endpoint()).netloc:
        headers.pop("authorization", None)  # a signed CDN address: the token stays with the Hub
    with partial.open("ab") as fh:
        resume = fh.tell()
        hasher = _hash_prefix(partial, resume) if sha256 is not None else None
        writer = _HashingFile(fh, hasher, report)
        try:
            with _download_timeout():
                http_get(url, writer, resume_size=resume, headers=headers, expected_size=size)  # type: ignore[arg-type]
        except HfHubHTTPError as exc:
            if exc.response is not None and exc.response.status_code == 416:
                raise _PastTheEndError from None
            raise
        return writer.hasher.hexdigest() if writer.hasher is not None else None


def _size_disagrees(repo: str, name: str, size: int, arrived: int, partial: Path) -> HubError:
    """The Hub's size for a file and what its server sends differ: nothing of it is kept, and re-runs cannot help."""
    partial.unlink(missing_ok=True)
    served = f"sent {arrived}" if arrived > size else f"has only {arrived}"
    return HubError(f"the Hub lists {name} from {repo} as {size} bytes but its server {served}: the Hub's size and the "
                    f"file disagree, so nothing was kept; try again later, or check HF_ENDPOINT ({endpoint()})")


def _download(url: str, partial: Path, *, size: int | None, sha256: str | None, report: Callable[[int], None],
              repo: str, name: str) -> str | None:
    """Stream the file into its partial file until it holds `size` bytes; returns its sha256 when hashed.

    A body that ends short is resumed once at once: a server with nothing past it (416) serves a file of another
    size than the Hub lists, which no re-run would fix.
    """
    report(partial.stat().st_size if partial.exists() else 0)  # what an earlier run kept
    for resume in range(2):
        try:
            with hub_errors(repo, name):
                got = _stream(url, partial, size, sha256, report)
        except _PastTheEndError:
            if size is None:  # nothing to compare with: the hash check decides (and a mismatch starts again)
                return None
            raise _size_disagrees(repo, name, size, partial.stat().st_size, partial) from None
        except OSError as exc:
            if "Consistency check" not in str(exc):  # huggingface_hub: the body's length was not the size asked for
                # a full disk or a file size limit: say where, and that what arrived is kept for a re-run
                raise FileSystemError(os_error_message(exc, "write the download to", partial) +
                                      "; what arrived is kept: run the same command again to resume") from exc
            got = None
        arrived = partial.stat().st_size
        if size is None or arrived == size:
            return got
        if arrived > size:  # not a prefix of the file the Hub lists: nothing to resume from
            raise _size_disagrees(repo, name, size, arrived, partial)
        if resume:
            break
    raise HubError(f"{name} from {repo} stopped at {arrived} of {size} bytes: run the same command again to resume")


def fetch_file(snapshot: RepoSnapshot, name: str, progress: Progress | None = None,
               cache: Path | None = None) -> Fetched:
    """Make one file of a snapshot present and verified in the Hub cache."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    require_online()
    cache = cache or hub_cache_dir()
    repo, commit = snapshot.repo, snapshot.commit
    remote = snapshot.files.get(name)
    if remote is None:
        raise HubError(f"{repo} has no file {name} at commit {commit[:12]}: the repo changed; check models.toml")
    url = hf_hub_url(repo, name, revision=commit, endpoint=endpoint())
    with hub_errors(repo, name):
        meta = get_hf_file_metadata(url, timeout=timeout(), endpoint=endpoint())
    if not meta.etag:
        raise HubError(f"the Hub at {endpoint()} gave no ETag for {repo}/{name}: it does not look like a Hub")
    etag = meta.etag
    sha256 = remote.sha256 or (etag if SHA256_RE.match(etag) else None)
    size = meta.size if meta.size is not None else remote.size
    blob, pointer = blob_path(repo, etag, cache), snapshot_path(repo, commit, name, cache)
    lock = repo_folder(repo, cache).parent / ".locks" / repo_folder(repo, cache).name / f"{etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):  # the lock huggingface_hub takes for the same blob
        done = 0

        def report(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(name, done, size)

        if blob.exists() and verified(blob, sha256, etag):
            report(blob.stat().st_size)
            link_snapshot(blob, pointer)
            write_ref(repo, snapshot.revision, commit, cache)
            return Fetched(name, pointer, blob, blob.stat().st_size, sha256, etag, downloaded=False)
        blob.unlink(missing_ok=True)  # a corrupt blob is never used
        partial = blob.with_name(blob.name + PARTIAL_SUFFIX)
        for attempt in range(ATTEMPTS):
            done = 0
            got = _download(meta.location, partial, size=size, sha256=sha256, report=report, repo=repo, name=name)
            ok = got == sha256 if sha256 is not None else verified(partial, None, etag)
            if ok:
                break
            partial.unlink()
            if attempt == ATTEMPTS - 1:
                raise ChecksumError(
                    f"{name} from {repo} does not match the hash the Hub published for it ({(sha256 or etag)[:16]}...) "
                    f"after {ATTEMPTS} downloads; it was deleted, never used: try again later or another repo")
        os.chmod(partial, 0o644)
        os.replace(partial, blob)
        link_snapshot(blob, pointer)
        write_ref(repo, snapshot.revision, commit, cache)
    return Fetched(name, pointer, blob, blob.stat().st_size, sha256, etag, downloaded=True)
