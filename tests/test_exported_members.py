import subprocess
import sys

import jarvis_wallet


def test_all_exports_resolve():
    for name in jarvis_wallet.__all__:
        assert getattr(jarvis_wallet, name) is not None, name


def test_private_modules_are_not_exported():
    assert not [name for name in jarvis_wallet.__all__ if name.startswith("_") and name != "__version__"]


def test_import_is_light():
    """`import jarvis_wallet` must not pull in the database or crypto layers (CLI start-up time)."""
    code = "import sys, jarvis_wallet; print(','.join(m for m in ('peewee', 'nacl', 'psycopg2', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_the_sign_command_path_is_light():
    """What `jarvis-wallet sign` imports must not load the database, libsodium or rich (start-up time)."""
    code = (
        "import sys, jarvis_wallet.cli, jarvis_wallet.client, jarvis_wallet.commands.sign, jarvis_wallet.solana.base64_text; "
        "print(','.join(m for m in ('peewee', 'nacl', 'psycopg2', 'rich', 'jarvis_wallet.solana.spend', "
        "'jarvis_wallet.solana.message', "
        "'jarvis_wallet.chain', 'urllib.request', 'solana', 'solders') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
