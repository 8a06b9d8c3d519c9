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


def test_every_option_of_signer_start_is_documented():
    """Its options are the signer's settings (budgets, windows, caps): cli.md names each one."""
    text = (ROOT / "docs" / "cli.md").read_text()
    start = typer.main.get_command(app).commands["signer"].commands["start"]
    options = [param.opts[0] for param in start.params if param.opts[0].startswith("--")]
    assert "--free-decision-rate" in options
    assert [option for option in options if f"[{option}" not in text and f"`{option}`" not in text] == []


def test_every_migration_and_audit_column_is_documented():
    from jarvis_wallet.migrations import MIGRATIONS
    from jarvis_wallet.models import WalletTransaction

    text = (ROOT / "docs" / "database.md").read_text()
    assert [m.name for m in MIGRATIONS if f"| `{m.name}` |" not in text] == []
    assert [name for name in WalletTransaction._meta.sorted_field_names if f"`{name}`" not in text] == []


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


def test_database_doc_names_the_isolation_level_the_signer_pins():
    from jarvis_wallet.signing import DECISION_ISOLATION_LEVEL

    text = (ROOT / "docs" / "database.md").read_text()
    assert f"BEGIN TRANSACTION ISOLATION LEVEL {DECISION_ISOLATION_LEVEL.upper()}" in text
    assert "## Locking and isolation" in text and "BEGIN IMMEDIATE" in text
