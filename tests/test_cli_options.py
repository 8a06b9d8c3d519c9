"""Every option of every command, given a value it must refuse: one line on stderr, exit 2, no
traceback; with --json also one JSON error object on stdout. And every command's --help."""

from __future__ import annotations

import json

import click
import pytest
import typer

from jarvis_wallet.cli import app

ERROR_KEYS = {"ok", "reason", "message", "exit_code"}
BAD_INTEGERS = ["-1", "9223372036854775808", "99999999999999999999999", "nan", "1e400", "x"]
BAD_FLOATS = ["0", "-1", "nan", "inf", "-inf", "1e400", "9223372036854775808", "x"]


def _leaves(command: click.Command, path: tuple[str, ...] = ()):
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _leaves(sub, path + (name,))
    else:
        yield path, command


LEAVES = list(_leaves(typer.main.get_command(app)))


def _options(command: click.Command):
    return [p for p in command.params if isinstance(p, click.Option) and not p.is_flag and p.name != "help"]


def _bad_values(option: click.Option) -> list[str]:
    """Values just outside the option's range, and the kinds that used to end in a traceback."""
    kind = option.type
    if isinstance(kind, click.types.IntParamType):
        assert isinstance(kind, click.IntRange), f"{option.opts[0]} is an integer without bounds"
        huge = [str(2**63)] if 2**63 > kind.max else []  # tx list --limit on SQLite: OverflowError
        return [str(kind.min - 1), str(kind.max + 1), *huge, "nan", "1e400", "x", ""]
    if isinstance(kind, click.types.FloatParamType):
        assert isinstance(kind, click.FloatRange), f"{option.opts[0]} is a number without bounds"
        below = [str(kind.min)] if kind.min_open else [str(kind.min - 1)]
        return below + ["-1", str(kind.max * 2), "nan", "inf", "-inf", "1e400", str(2**63), "x", ""]
    return [""]


CASES = [
    pytest.param(path, option.opts[0], value, id=f"{' '.join(path)} {option.opts[0]} {value!r}")
    for path, command in LEAVES
    for option in _options(command)
    for value in _bad_values(option)
]


def _takes_json(path) -> bool:
    command = dict(LEAVES)[path]
    return any(p.name == "json_output" for p in command.params)


@pytest.mark.parametrize("path, option, value", CASES)
def test_every_option_refuses_bad_values_in_one_line(cli, path, option, value):
    result = cli(*path, f"{option}={value}")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert option in result.stderr, result.stderr  # the error names the option it is about
    if _takes_json(path):
        result = cli(*path, f"{option}={value}", "--json")
        assert result.exit_code == 2
        data = json.loads(result.stdout)
        assert ERROR_KEYS <= set(data) and data["ok"] is False and data["exit_code"] == 2


def test_an_empty_database_url_is_an_error_not_the_default(cli, tmp_path):
    result = cli("--database-url", "", "tx", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: Invalid value for '--database-url': the value is empty")


def test_numeric_options_are_found():
    """The walk above covers the options the issue names: it would pass vacuously otherwise."""
    names = {(" ".join(path), option) for path, option, _ in (c.values for c in CASES)}
    for expected in [("sign", "--timeout"), ("sign-message", "--timeout"), ("signer start", "--timeout"),
                     ("tx list", "--limit"), ("limits set", "--wallet"), ("sign", "--secret-file")]:
        assert expected in names


@pytest.mark.parametrize("path", [path for path, _ in LEAVES] + [("tx",), ("limits",), ("signer",), ("config",), ()],
                         ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help(cli, path):
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Usage:" in result.stdout and "Traceback" not in result.stdout + result.stderr


ARGUMENT_CASES = [
    pytest.param(path, index, id=f"{' '.join(path)} {param.name}")
    for path, command in LEAVES
    for index, param in enumerate(p for p in command.params if isinstance(p, click.Argument))
    if param.name not in ("value", "text")  # data, where "" is a value (config set) or has its own reason
]


@pytest.mark.parametrize("path, index", ARGUMENT_CASES)
def test_every_empty_argument_is_an_error(cli, path, index):
    """`pubkey ""` used to read the directory "." (an empty path is the current directory)."""
    command = dict(LEAVES)[path]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    argv = ["" if i == index else "x" for i, _ in enumerate(arguments)]
    result = cli(*path, *argv)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"Error: Invalid value for '{arguments[index].human_readable_name}': the value is empty")
    assert result.stderr.count("\n") == 1


def test_argument_walk_is_not_empty():
    assert {" ".join(c.values[0]) for c in ARGUMENT_CASES} >= {"sign", "pubkey", "inspect", "tx show", "config get"}
