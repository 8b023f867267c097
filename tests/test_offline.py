"""Loading a model and chatting opens no network connection, in Python or in native code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli_helpers import LOCALR1

pytestmark = pytest.mark.model

AUDITED_CHAT = textwrap.dedent(
    """
    import sys
    attempts = []
    def block_network(event, args):
        if event.startswith("socket."):
            attempts.append(event)
            raise PermissionError("network use is blocked in this test: " + event)
    sys.addaudithook(block_network)
    from localr1.engine import ChatMessage, LoadRequest, SamplingParams
    from localr1.loader import open_engine
    engine = open_engine("demo", LoadRequest(context_size=512))
    events = list(engine.chat([ChatMessage("user", "Say hi.")], SamplingParams(temperature=0, max_tokens=8)))
    assert events[-1].answer, "no answer"
    print("attempts:", attempts)
    """
)


def test_no_python_socket_is_created_while_chatting() -> None:
    result = subprocess.run([sys.executable, "-c", AUDITED_CHAT], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ), check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "attempts: []"


@pytest.mark.needs("strace")
def test_no_inet_socket_syscall_from_any_code(tmp_path: Path) -> None:
    log = tmp_path / "strace.log"
    result = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=socket,connect", "-o", str(log),
         *LOCALR1, "run", "-t", "0", "-n", "8", "Say hi."],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    calls = log.read_text()
    assert not re.search(r"AF_INET6?\b", calls), calls
