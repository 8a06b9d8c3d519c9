"""Wall time of commands run as fresh processes: ``jarvis-wallet sign`` and ``signer start``.

An agent that shells out pays interpreter start-up and imports on every call, so the CLI is
measured as a whole process, beside ``python -c "import typer"`` (the least a Typer CLI can
cost) run the same way.
"""

from __future__ import annotations

import base64
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from jarvis_wallet.config import default_pid_path
from jarvis_wallet.signer import SignerSettings, start_signer, stop_signer

from workloads import MessageTemplate

# The least any Typer command costs (Typer 0.25 and later also import pydantic here, which
# `import typer` alone does not show; jarvis-wallet pins an earlier Typer for that reason).
MINIMAL_TYPER_COMMAND = """
from pathlib import Path
from typing import Optional
import typer
app = typer.Typer()
@app.command()
def main(source: str, out: Optional[Path] = typer.Option(None, "--out")) -> None:
    typer.echo(source)
app()
"""

LEFTOVER_GRACE_SECONDS = 2.0
# Variables that would point a command at someone else's signer, key or database.
_FOREIGN_ENV = ("SIGNER_SHARED_SECRET", "SIGNER_SOCKET_PATH", "SOLANA_PRIVATE_KEY", "JARVIS_WALLET_DATABASE_URL")


def isolated_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The environment for commands: nothing of the user's own wallet, runtime dirs in ``workdir``."""
    env = {key: value for key, value in os.environ.items() if key not in _FOREIGN_ENV}
    env.update(XDG_RUNTIME_DIR=str(workdir / "xdg-run"), XDG_DATA_HOME=str(workdir / "xdg-data"))
    env.update(extra)
    return env


def jarvis_wallet_command() -> list[str]:
    script = Path(sys.executable).parent / "jarvis-wallet"
    return [str(script)] if script.exists() else [sys.executable, "-m", "jarvis_wallet"]


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning ``argv`` to its exit; a failure stops the benchmark."""
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return elapsed


def _compile_bytecode() -> None:
    """Compile jarvis_wallet as an installed package would be: with PYTHONDONTWRITEBYTECODE set
    (as on these machines) an editable checkout would otherwise recompile every module on every
    run, while typer's own modules were compiled when pip installed them."""
    import compileall

    import jarvis_wallet

    compileall.compile_dir(Path(jarvis_wallet.__file__).parent, quiet=1)


def median_wall_time(argv: list[str], env: dict[str, str], runs: int) -> float:
    wall_time(argv, env)  # warm-up: page cache, .pyc files
    return statistics.median(wall_time(argv, env) for _ in range(runs))


def measure_cli(socket_path: Path, template: MessageTemplate, workdir: Path, runs: int) -> dict:
    """Median wall time of ``jarvis-wallet sign FILE`` (a distinct message each run) beside
``import typer``, a minimal Typer command and a bare interpreter, run the same way."""
    env = isolated_env(workdir, SIGNER_SOCKET_PATH=str(socket_path))
    _compile_bytecode()
    files = []
    for index, message in enumerate(template.unique(runs + 1)):
        path = workdir / f"cli-tx-{index}.b64"
        path.write_text(base64.b64encode(message).decode("ascii") + "\n")
        files.append(path)
    command = jarvis_wallet_command()
    wall_time([*command, "sign", str(files[0])], env)  # warm-up
    sign_s = statistics.median(wall_time([*command, "sign", str(path)], env) for path in files[1:])
    typer_s = median_wall_time([sys.executable, "-c", "import typer"], env, runs)
    minimal_s = median_wall_time([sys.executable, "-c", MINIMAL_TYPER_COMMAND, "hello"], env, runs)
    python_s = median_wall_time([sys.executable, "-c", "pass"], env, runs)
    return {
        "runs": runs,
        "sign_median_s": sign_s,
        "import_typer_median_s": typer_s,
        "ratio_import_typer": sign_s / typer_s,
        "minimal_typer_command_median_s": minimal_s,
        "ratio_minimal_typer_command": sign_s / minimal_s,
        "python_bare_median_s": python_s,
    }


def measure_startup(database_url: str, keypair_path: Path, workdir: Path, runs: int) -> dict:
    """Median wall time of ``signer start --detach`` until it returns ready; each run stopped after."""
    socket_path = workdir / "startup" / "signer.sock"
    env = isolated_env(workdir)
    command = jarvis_wallet_command()
    start = [*command, "--database-url", database_url, "signer", "start", "--detach",
             "--keypair", str(keypair_path), "--socket", str(socket_path)]
    stop = [*command, "signer", "stop", "--socket", str(socket_path)]
    detached, stops = [], []
    try:
        for _ in range(runs + 1):  # the first is a warm-up
            detached.append(wall_time(start, env))
            stops.append(wall_time(stop, env))
    except BaseException:
        # Interrupted while a `start` was forking: its signer may still be about to come up.
        _stop_leftover(socket_path, grace_seconds=LEFTOVER_GRACE_SECONDS)
        raise
    return {
        "runs": runs,
        "start_detach_median_s": statistics.median(detached[1:]),
        "stop_median_s": statistics.median(stops[1:]),
        "in_process_start_median_s": _in_process_start(database_url, keypair_path, socket_path, runs),
    }


def _in_process_start(database_url: str, keypair_path: Path, socket_path: Path, runs: int) -> float:
    """``start_signer`` from Python (fork to ready), without interpreter start-up and imports."""
    settings = SignerSettings(socket_path=socket_path, database_url=database_url, keypair_path=keypair_path)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with start_signer(settings):  # stopped on leaving the block
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def _stop_leftover(socket_path: Path, *, grace_seconds: float) -> None:
    """Stop a detached signer serving ``socket_path`` if one appears within ``grace_seconds``."""
    deadline = time.monotonic() + grace_seconds
    while not default_pid_path(socket_path).exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)
    with contextlib.suppress(Exception):
        stop_signer(socket_path)
