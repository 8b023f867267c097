"""The Hub as localr1 sees it: the endpoint, offline mode and the timeout (read from the environment at each call,
not when huggingface_hub was imported), what a repo holds at a commit, and huggingface_hub's errors in words."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from localr1.hub.errors import HubError, HubTimeoutError, OfflineError

DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT_ENV = "LOCALR1_HUB_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
_TRUE = {"1", "true", "yes", "on"}
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


def endpoint() -> str:
    """The Hub's base URL (HF_ENDPOINT, for a mirror or a local test server)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    """True when the user switched the Hub off (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def timeout() -> float:
    """Seconds to wait for the Hub to answer (LOCALR1_HUB_TIMEOUT, default 30)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise HubError(f"{TIMEOUT_ENV}={raw!r} should be a number of seconds above 0")
    return value


def require_online() -> None:
    """Fail at once, before any request, when offline mode is on."""
    if offline():
        raise OfflineError("offline mode is on (HF_HUB_OFFLINE): downloading needs the network; unset HF_HUB_OFFLINE "
                           "to download, or use a model already on disk (localr1 models lists them)")


@dataclass(frozen=True)
class RemoteFile:
    """A file of a repo at a commit: its size and, for LFS files, the sha256 the Hub publishes."""

    name: str
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class RepoSnapshot:
    """A repo at one commit."""

    repo: str
    revision: str
    commit: str
    files: dict[str, RemoteFile]


def _is(exc: BaseException, *names: str) -> bool:
    """Whether any class of the exception has one of these names (the HTTP library under huggingface_hub varies
    between its versions: requests, httpx, httpx2)."""
    return any(any(n in cls.__name__ for n in names) for cls in type(exc).__mro__)


@contextmanager
def hub_errors(repo: str, what: str = "") -> Iterator[None]:
    """Turn huggingface_hub's and the HTTP library's exceptions into one-line HubErrors."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = endpoint()
    try:
        yield
    except GatedRepoError:
        raise HubError(f"{repo} is gated on {where}: accept its terms on the Hub and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise HubError(f"{repo} was not found on {where} (or it is private): check the repo name in models.toml") \
            from None
    except RevisionNotFoundError:
        raise HubError(f"{repo} has no revision {what or ''} on {where}") from None
    except EntryNotFoundError:
        raise HubError(f"{repo} has no file {what} on {where}: the repo changed; check models.toml") from None
    except OfflineModeIsEnabled:
        require_online()
        raise OfflineError("offline mode is on (HF_HUB_OFFLINE): downloading needs the network") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "an error"
        raise HubError(f"the Hub at {where} answered {status} for {repo} {what}: try again later") from None
    except Exception as exc:
        if _is(exc, "Timeout"):
            raise HubTimeoutError(
                f"the Hub at {where} did not answer within {timeout():g} s: check your network and run the same "
                f"command again (a download resumes where it stopped; {TIMEOUT_ENV} sets the wait)") from None
        if _is(exc, "TooManyRedirects"):
            raise HubError(f"the Hub at {where} redirected {repo} {what} in a loop: check HF_ENDPOINT, or try again "
                           "later") from None
        if _is(exc, "ConnectError", "ConnectionError", "NetworkError", "RemoteProtocolError", "ReadError"):
            raise OfflineError(f"cannot reach the Hub at {where} ({exc}): check your network (or HF_ENDPOINT) and "
                               "run the same command again") from None
        raise


def check_file_name(repo: str, name: str) -> None:
    """Refuse a file name from the Hub that would lead outside the repo's folder in the cache (a hostile mirror)."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or "\0" in name or any(p in ("", ".", "..") for p in parts):
        raise HubError(f"the Hub at {endpoint()} listed a file {name[:80]!r} in {repo} whose path leads outside the "
                       "repo: refusing it (check HF_ENDPOINT)")


def repo_snapshot(repo: str, revision: str = "main") -> RepoSnapshot:
    """The commit a revision resolves to and every file with its size and sha256 (one API call)."""
    from huggingface_hub import HfApi

    require_online()
    try:
        with hub_errors(repo, revision):
            info = HfApi(endpoint=endpoint()).model_info(repo, revision=revision, files_metadata=True,
                                                         timeout=timeout())
        return _snapshot(repo, revision, info)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not JSON, or not the Hub's JSON
        raise HubError(f"the Hub at {endpoint()} answered something that is not the Hub's API for {repo} "
                       f"({type(exc).__name__}): check HF_ENDPOINT") from None


def _snapshot(repo: str, revision: str, info: Any) -> RepoSnapshot:
    if not info.sha:
        raise HubError(f"the Hub at {endpoint()} did not say which commit {repo}@{revision} is")
    if not isinstance(info.sha, str) or not COMMIT_RE.match(info.sha):  # it names a folder of the cache
        raise HubError(f"the Hub at {endpoint()} gave {str(info.sha)[:60]!r} as the commit of {repo}@{revision}, "
                       "not a commit id: refusing it (check HF_ENDPOINT)")
    files = {}
    for sibling in info.siblings or []:
        check_file_name(repo, sibling.rfilename)
        lfs = sibling.lfs
        files[sibling.rfilename] = RemoteFile(sibling.rfilename, lfs.size if lfs else sibling.size,
                                              lfs.sha256 if lfs else None)
    return RepoSnapshot(repo, revision, info.sha, files)
