"""`jarvis-wallet approvals list|show|approve|deny|watch`: the operator's yes or no.

Approving writes to the database as the operator's OS user; no socket operation approves.
"""

from __future__ import annotations

from typing import Optional

import typer

from ._common import (
    JsonOption,
    bounded_option,
    database_url,
    escape,
    lamports_cell,
    print_fields,
    print_json,
    print_table,
    say,
    short_key,
)

app = typer.Typer(
    help="Transactions held above a wallet's approval threshold: list them, approve or deny them.",
    no_args_is_help=True,
)

IdArgument = typer.Argument(..., min=1, max=2**63 - 1, metavar="ID", help="The approval request id.")
MAX_LIST = 10_000


def _reports(ctx, *, wallet, everything, limit) -> list[dict]:
    from ..approvals import approval_report, list_approvals
    from ..db import session

    with session(database_url(ctx)):
        return [approval_report(row) for row in list_approvals(wallet=wallet, everything=everything, limit=limit)]


def _duration(seconds: int) -> str:
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _rows(reports: list[dict]) -> list[list[str]]:
    return [
        [
            str(r["approval_id"]),
            r["status"],
            short_key(r["wallet"]),
            lamports_cell(r["lamports"]),
            escape(", ".join(short_key(d) for d in r["destinations"]) or "-"),
            f"{r['peer_uid']}/{r['peer_pid']}",
            escape(r["purpose"] or ""),
            _duration(r["age_seconds"]),
            _duration(r["seconds_left"]) if r["status"] in ("pending", "approved") else "-",
        ]
        for r in reports
    ]


_COLUMNS = ["id", "status", "wallet", "spend", "pays", "uid/pid", "purpose", "age", "left"]


@app.command("list")
def approvals_list(
    ctx: typer.Context,
    wallet: Optional[str] = typer.Option(None, "--wallet", help="Only this wallet's requests."),
    everything: bool = typer.Option(False, "--all", help="Every request (approved, denied, used, expired too), not only pending ones."),
    limit: int = bounded_option(100, "--limit", low=1, high=MAX_LIST, help=f"With --all, at most this many decided or expired ones, newest first, after every pending one (1 to {MAX_LIST})."),
    json_output: bool = JsonOption,
) -> None:
    """List requests waiting for approval: what they pay, who asked, why, age and time left.

    Example: jarvis-wallet approvals list --json
    """
    reports = _reports(ctx, wallet=wallet, everything=everything, limit=limit)
    if json_output:
        print_json(reports)
        return
    print_table("Approval requests", _COLUMNS, _rows(reports), wrap=("purpose",))
    if not reports:
        say("No request waits for approval." if not everything else "No approval requests.")


@app.command("show")
def approvals_show(ctx: typer.Context, approval_id: int = IdArgument, json_output: bool = JsonOption) -> None:
    """Show one request: its decoded payments, who asked, the decision, and the linked transactions.

    Example: jarvis-wallet approvals show 7
    """
    from ..approvals import approval_report, get_request
    from ..db import session

    with session(database_url(ctx)):
        report = approval_report(get_request(approval_id))
    if json_output:
        print_json(report)
        return
    fields = []
    for key, value in report.items():
        if key in ("lamports", "fee_lamports"):
            fields.append((key, lamports_cell(value)))
        elif key == "payments":
            fields.append((key, escape("; ".join(
                f"#{p['instruction_index']} {p['kind']} {p['lamports']} lamports to {p['destination_label']}" for p in value
            ) or "-")))
        elif key == "transactions":
            fields.append((key, escape("; ".join(
                f"{t['transaction_id']} {t['status']}" + (f" ({t['reason']})" if t["reason"] else "")
                + (f" {t['signature']}" if t["signature"] else "")
                for t in value
            ) or "-")))
        elif key != "destinations":
            fields.append((key, escape("" if value is None else value)))
    print_fields(f"Approval request {report['approval_id']}", fields)


def _decide(ctx, decide, approval_id: int, text: Optional[str], json_output: bool, verb: str) -> None:
    """Record the operator's decision; print it (with --json, as `approvals show --json` does)."""
    from ..approvals import approval_report
    from ..db import session

    with session(database_url(ctx)):
        report = approval_report(decide(approval_id, text))
    if json_output:
        print_json(report)
        return
    line = (
        f"Approval request {report['approval_id']} {verb} by {report['decided_by']} (uid {report['decided_by_uid']}) "
        f"at {report['decided_at']}"
    )
    until = "good until" if verb == "approved" else "the payment is refused until"
    typer.echo(f"{line}; {until} {report['expires_at']}")


ShowJsonOption = typer.Option(False, "--json", help="Print the request as `approvals show --json` does.")


@app.command("approve")
def approvals_approve(
    ctx: typer.Context,
    approval_id: int = IdArgument,
    note: Optional[str] = typer.Option(None, "--note", help="Why (recorded with your user name; at most 512 characters)."),
    json_output: bool = ShowJsonOption,
) -> None:
    """Approve a pending request: the agent's next request of the same payment is signed, once.

    The approval is good for approval_ttl_seconds (default 15 minutes) from now; the limits are
    checked again when it is used.

    Example: jarvis-wallet approvals approve 7 --note "invoice 42, checked with Ana"
    """
    from ..approvals import approve

    _decide(ctx, lambda i, text: approve(i, note=text), approval_id, note, json_output, "approved")


@app.command("deny")
def approvals_deny(
    ctx: typer.Context,
    approval_id: int = IdArgument,
    reason: Optional[str] = typer.Option(None, "--reason", help="Why (recorded, and told to the agent; at most 512 characters)."),
    json_output: bool = ShowJsonOption,
) -> None:
    """Deny a pending request, or revoke an approval not used yet: the agent's requests of the same
    payment are refused (approval_denied) for approval_ttl_seconds from now. A used approval
    (consumed) cannot be revoked.

    Example: jarvis-wallet approvals deny 7 --reason "not an invoice we know"
    """
    from ..approvals import deny

    _decide(ctx, lambda i, text: deny(i, reason=text), approval_id, reason, json_output, "denied")


@app.command("watch")
def approvals_watch(
    ctx: typer.Context,
    wallet: Optional[str] = typer.Option(None, "--wallet", help="Only this wallet's requests."),
    interval: float = bounded_option(2.0, "--interval", low=0.2, high=3600.0, help="Seconds between refreshes (0.2 to 3600)."),
    count: int = bounded_option(0, "--count", low=0, high=1_000_000, help="Stop after this many refreshes (0: until Ctrl-C)."),
) -> None:
    """A live view of pending requests, refreshed every --interval seconds; Ctrl-C leaves.

    Decide in another terminal with `approvals approve ID` or `approvals deny ID`.

    Example: jarvis-wallet approvals watch --wallet <PUBKEY>
    """
    import time

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    def render() -> Table:
        reports = _reports(ctx, wallet=wallet, everything=False, limit=100)
        table = Table(title=f"Pending approvals ({time.strftime('%H:%M:%S')}; approve with `jarvis-wallet approvals approve ID`)",
                      title_justify="left")
        for column in _COLUMNS:
            table.add_column(column, overflow="fold" if column == "purpose" else None, no_wrap=column != "purpose")
        for row in _rows(reports):
            table.add_row(*row)
        if not reports:
            table.caption = "no request waits for approval"
        return table

    shown = 0
    try:
        with Live(render(), console=Console(), auto_refresh=False) as live:
            shown = 1
            while count == 0 or shown < count:
                time.sleep(interval)
                live.update(render(), refresh=True)
                shown += 1
    except KeyboardInterrupt:
        pass
