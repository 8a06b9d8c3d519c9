"""OpenSSH ssh-agent as the peer: start one with a fresh Ed25519 key, ask it to sign.

The client speaks the agent protocol (draft-miller-ssh-agent, OpenSSH ``PROTOCOL.agent``):
every message is ``uint32 length || byte type || contents``; ``string`` is ``uint32 length ||
bytes``.

    SSH_AGENTC_REQUEST_IDENTITIES (11)  ->  SSH_AGENT_IDENTITIES_ANSWER (12):
        uint32 nkeys, then per key: string key_blob, string comment
    SSH_AGENTC_SIGN_REQUEST (13): string key_blob, string data, uint32 flags
                                        ->  SSH_AGENT_SIGN_RESPONSE (14): string signature

An Ed25519 key blob is ``string "ssh-ed25519" || string public_key(32)``; its signature blob
is ``string "ssh-ed25519" || string signature(64)``, the raw Ed25519 signature of ``data``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nacl.signing

SSH_AGENT_FAILURE = 5
SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENT_SIGN_RESPONSE = 14
ED25519_KEY_TYPE = b"ssh-ed25519"
START_TIMEOUT_SECONDS = 5.0


class AgentError(RuntimeError):
    """The agent refused, or answered something this client does not understand."""


@dataclass(frozen=True)
class RunningAgent:
    socket_path: Path
    key_blob: bytes  # the identity to sign with, as the agent lists it
    public_key: bytes  # its raw 32-byte Ed25519 public key


class AgentClient:
    """One connection to an agent; one request at a time."""

    def __init__(self, socket_path: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(str(socket_path))

    def identities(self) -> list[bytes]:
        reply = self._call(bytes([SSH_AGENTC_REQUEST_IDENTITIES]), SSH_AGENT_IDENTITIES_ANSWER)
        (count,) = struct.unpack_from(">I", reply)
        offset, blobs = 4, []
        for _ in range(count):
            blob, offset = read_string(reply, offset)
            _comment, offset = read_string(reply, offset)
            blobs.append(blob)
        return blobs

    def sign(self, key_blob: bytes, data: bytes, flags: int = 0) -> bytes:
        """The signature blob the agent returns for ``data``."""
        request = bytes([SSH_AGENTC_SIGN_REQUEST]) + pack_string(key_blob) + pack_string(data) + struct.pack(">I", flags)
        signature_blob, _ = read_string(self._call(request, SSH_AGENT_SIGN_RESPONSE), 0)
        return signature_blob

    def _call(self, request: bytes, expected_type: int) -> bytes:
        self._sock.sendall(struct.pack(">I", len(request)) + request)
        (length,) = struct.unpack(">I", self._recv_exact(4))
        reply = self._recv_exact(length)
        if not reply or reply[0] != expected_type:
            code = reply[0] if reply else None
            raise AgentError(f"ssh-agent answered type {code} (expected {expected_type}; {SSH_AGENT_FAILURE} is failure)")
        return reply[1:]

    def _recv_exact(self, size: int) -> bytes:
        buffer = bytearray()
        while len(buffer) < size:
            chunk = self._sock.recv(size - len(buffer))
            if not chunk:
                raise AgentError("ssh-agent closed the connection")
            buffer += chunk
        return bytes(buffer)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def pack_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def read_string(buffer: bytes, offset: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from(">I", buffer, offset)
    start = offset + 4
    if start + length > len(buffer):
        raise AgentError("truncated string in an ssh-agent reply")
    return buffer[start : start + length], start + length


def ed25519_payload(blob: bytes, what: str) -> bytes:
    """The raw bytes inside an ``ssh-ed25519`` key or signature blob."""
    key_type, offset = read_string(blob, 0)
    payload, offset = read_string(blob, offset)
    if key_type != ED25519_KEY_TYPE or offset != len(blob):
        raise AgentError(f"not an ssh-ed25519 {what} blob")
    return payload


def verify_agent_signature(agent: RunningAgent, data: bytes) -> None:
    """Ask for one signature and check it with PyNaCl: the peer must be doing real work."""
    with AgentClient(agent.socket_path) as client:
        signature = ed25519_payload(client.sign(agent.key_blob, data), "signature")
    nacl.signing.VerifyKey(agent.public_key).verify(data, signature)  # raises BadSignatureError


@contextlib.contextmanager
def running_agent(workdir: Path) -> Iterator[RunningAgent]:
    """A private ``ssh-agent -D`` holding a fresh Ed25519 key; stopped on exit. Each call gets a
    directory of its own under ``workdir``: ssh-keygen will not overwrite the key of a former round."""
    agent_dir = Path(tempfile.mkdtemp(prefix="ssh-agent-", dir=workdir))
    key_path = agent_dir / "id_ed25519"
    socket_path = agent_dir / "agent.sock"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "jarvis-wallet-benchmark", "-f", str(key_path)],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(socket_path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_socket(socket_path, agent)
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(["ssh-add", "-q", str(key_path)], check=True, env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        with AgentClient(socket_path) as client:
            (key_blob,) = client.identities()
        yield RunningAgent(socket_path, key_blob, ed25519_payload(key_blob, "key"))
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=5)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def _wait_for_socket(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not path.exists():
        if process.poll() is not None:
            raise AgentError(f"ssh-agent exited during start-up (exit code {process.returncode})")
        if time.monotonic() > deadline:
            raise AgentError(f"ssh-agent did not create {path} within {START_TIMEOUT_SECONDS:g} s")
        time.sleep(0.01)


@contextlib.contextmanager
def agent_workload(agent: RunningAgent, data: bytes, budget: int):
    """Workload: ask the agent to sign ``data`` over one connection."""
    with AgentClient(agent.socket_path) as client:
        yield lambda i: client.sign(agent.key_blob, data)
