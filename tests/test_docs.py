"""Docs move with the code: every command is documented and has an example in --help."""

from pathlib import Path

import pytest
import typer.main

from jarvis_wallet.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _command_paths(command=None, prefix=("jarvis-wallet",)):
    command = command or typer.main.get_command(app)
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        path = prefix + (name,)
        if getattr(sub, "commands", None):
            yield from _command_paths(sub, path)
        else:
            yield path


COMMANDS = list(_command_paths())


def test_there_are_commands():
    assert ("jarvis-wallet", "limits", "set") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p[1:]))
def test_every_command_is_documented(path):
    text = (ROOT / "docs" / "cli.md").read_text()
    assert f"### `{' '.join(path)}`" in text


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p[1:]))
def test_every_command_has_an_example_in_help(cli, path):
    result = cli(*path[1:], "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "jarvis-wallet" in result.stdout


def test_documented_commands_exist():
    import re

    text = (ROOT / "docs" / "cli.md").read_text()
    documented = {tuple(m.split()) for m in re.findall(r"^### `(jarvis-wallet [^`]*)`", text, re.M)}
    assert documented == set(COMMANDS)


def test_readme_names_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    assert "scripts/demo" in readme and "scripts/test" in readme


def test_readme_client_example_runs_against_a_real_signer(signers, monkeypatch, capsys):
    """The README's agent snippet, executed as written against a forked signer."""
    import re

    from conftest import transfer_message

    snippet = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    keypair = signers.keypair()
    signers.set_limits(per_tx=10**6, daily=10**6)
    handle = signers.start()
    monkeypatch.setenv("SIGNER_SOCKET_PATH", str(handle.socket_path))
    sent = []
    exec(snippet, {"message_bytes": transfer_message(from_key=keypair.public_key, lamports=1000), "send": sent.append})
    assert len(sent) == 1 and len(sent[0]) > 64
    exec(snippet, {"message_bytes": transfer_message(from_key=keypair.public_key, lamports=10**6), "send": sent.append})
    assert capsys.readouterr().out == "refused: per_tx_limit_exceeded\n"


def test_every_document_the_readme_links_exists():
    import re

    readme = (ROOT / "README.md").read_text()
    links = set(re.findall(r"\]\((docs/[^)#]+)", readme))
    assert {"docs/cli.md", "docs/protocol.md", "docs/security.md", "docs/performance.md", "docs/reliability.md"} <= links
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_readme_using_it_runs_as_written(tmp_path):
    """The README's "Using it" block, run by a shell in a fresh home: the transaction it signs is
    the one it builds (placeholders filled in), and every command exits 0."""
    import os
    import re
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Using it\n\n```sh\n(.*?)```", readme, re.S).group(1)
    assert "build-transfer" in block and "tx.b64" in block  # where tx.b64 comes from
    script = block.replace("RECIPIENT_PUBKEY", "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM").replace(
        "RECENT_BLOCKHASH", "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"), "XDG_RUNTIME_DIR": str(home / "run"),
    }
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=home, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (home / "signed.b64").read_text().strip()
    assert not (home / "run" / "jarvis-wallet" / "signer.sock").exists()  # stopped at the end
