"""The token policy: every SPL Token, Token-2022 and ATA instruction with the wallet in it, and
the per-mint limits at their boundaries (pure: no database, no runtime; see test_token_runtime.py
for what LiteSVM does with the same transactions)."""

from __future__ import annotations

import pytest
import solders.system_program as sp
import spl.token.instructions as spl
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message as SoldersMessage
from solders.pubkey import Pubkey
from spl.token import models as m

from jarvis_wallet.errors import PolicyDenied
from jarvis_wallet.policy import REASONS, Limits, TokenLimits, decide
from jarvis_wallet.protocol import POLICY_REFUSAL_CODES
from jarvis_wallet.solana import parse_message
from jarvis_wallet.solana.associated_token import associated_token_address
from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from jarvis_wallet.solana.token_2022 import TOKEN_2022_PROGRAM_ID
from jarvis_wallet.solana.token_spend import (
    TOKEN_2022_ACCOUNT_BYTES_UPPER_BOUND,
    RegisteredMint,
    rent_exempt_lamports,
)
from tests.token_vectors import ALL_VECTORS, MINT, OWNER, PAYER, S1, Vector

WALLET = Pubkey(bytes([200]) * 32)
OTHER = Pubkey(bytes([201]) * 32)
USDC = Pubkey(bytes([202]) * 32)
T22 = Pubkey(bytes([203]) * 32)
UNKNOWN = Pubkey(bytes([204]) * 32)
TOKEN = Pubkey(TOKEN_PROGRAM_ID)
TOKEN_2022 = Pubkey(TOKEN_2022_PROGRAM_ID)
FEE = 5_000
REGISTRY = {
    bytes(USDC): RegisteredMint("USDC", bytes(USDC), TOKEN_PROGRAM_ID, 6, ()),  # read from the chain
    bytes(T22): RegisteredMint("T22", bytes(T22), TOKEN_2022_PROGRAM_ID, 2, ("transfer_fee_config",)),
}
LIMITS = {bytes(USDC): TokenLimits(25_000_000, 200_000_000), bytes(T22): TokenLimits(10_000, 50_000)}
WALLET_USDC = Pubkey(associated_token_address(bytes(WALLET), bytes(USDC), TOKEN_PROGRAM_ID))
WALLET_T22 = Pubkey(associated_token_address(bytes(WALLET), bytes(T22), TOKEN_2022_PROGRAM_ID))


def run(*instructions, registry=REGISTRY, limits=LIMITS, spent=None, payer=WALLET, **kwargs):
    message = parse_message(bytes(SoldersMessage.new_with_blockhash(list(instructions), payer, Hash(bytes(32)))))
    return decide(
        message=message, wallet=bytes(WALLET), limits=Limits(10**9, 10**10), spent_24h_lamports=0,
        token_registry=registry, token_limits=limits, token_spent_24h=spent or {}, **kwargs,
    )


def transfer_checked(amount, *, mint=USDC, decimals=6, source=WALLET_USDC, owner=WALLET, program=TOKEN, signers=()):
    return spl.transfer_checked(m.TransferCheckedParams(
        program_id=program, source=source, mint=mint, dest=OTHER, owner=owner, amount=amount, decimals=decimals,
        signers=list(signers),
    ))


def with_fee(amount, fee, *, decimals=2, mint=T22):
    data = bytes([26, 1]) + amount.to_bytes(8, "little") + bytes([decimals]) + fee.to_bytes(8, "little")
    return Instruction(TOKEN_2022, data, [
        AccountMeta(WALLET_T22, False, True), AccountMeta(mint, False, False), AccountMeta(OTHER, False, True),
        AccountMeta(WALLET, True, False),
    ])


def counted(decision) -> dict[bytes, int]:
    return decision.spend.tokens.per_mint


# -- the counted transfers ----------------------------------------------------------------


def test_transfer_checked_is_counted_against_its_mint():
    decision = run(transfer_checked(12_500_000))
    assert decision.allowed, decision.message
    assert counted(decision) == {bytes(USDC): 12_500_000}
    assert decision.spend.spend_lamports == FEE  # SOL: the fee only
    assert "12.5 USDC (12500000 base units)" in decision.message
    (movement,) = decision.spend.tokens.movements
    assert (movement.source, movement.destination, movement.symbol) == (bytes(WALLET_USDC), bytes(OTHER), "USDC")


def test_transfer_checked_with_fee_counts_the_gross_amount():
    decision = run(with_fee(9_000, 90))
    assert decision.allowed, decision.message
    assert counted(decision) == {bytes(T22): 9_000}


def test_movements_sum_per_mint():
    decision = run(transfer_checked(10_000_000), with_fee(3_000, 30), transfer_checked(15_000_000))
    assert decision.allowed, decision.message
    assert counted(decision) == {bytes(USDC): 25_000_000, bytes(T22): 3_000}


def test_plain_transfer_from_the_wallets_associated_account_counts_for_its_mint():
    plain = spl.transfer(m.TransferParams(program_id=TOKEN, source=WALLET_USDC, dest=OTHER, owner=WALLET, amount=7))
    decision = run(plain)
    assert decision.allowed and counted(decision) == {bytes(USDC): 7}
    # The same bytes under Token-2022 name another account: not the wallet's USDC account.
    t22 = spl.transfer(m.TransferParams(program_id=TOKEN_2022, source=WALLET_USDC, dest=OTHER, owner=WALLET, amount=7))
    assert run(t22).reason == "token_unchecked_transfer"


def test_plain_transfer_of_a_mint_registered_offline_is_refused():
    """A plain Transfer is counted in the registry's decimals, which the runtime never checks:
    only a registration read from the chain (extensions recorded) may vouch for them."""
    offline = {bytes(USDC): RegisteredMint("USDC", bytes(USDC), TOKEN_PROGRAM_ID, 6)}
    plain = spl.transfer(m.TransferParams(program_id=TOKEN, source=WALLET_USDC, dest=OTHER, owner=WALLET, amount=7))
    decision = run(plain, registry=offline)
    assert not decision.allowed and decision.reason == "token_unchecked_transfer"
    assert "registered offline" in decision.message and "TransferChecked" in decision.message
    assert "--rpc-url" in decision.message and "USDC" in decision.message
    assert run(transfer_checked(7), registry=offline).allowed  # the checked form stays open


def test_plain_transfer_from_another_account_is_refused():
    plain = spl.transfer(m.TransferParams(program_id=TOKEN, source=OTHER, dest=UNKNOWN, owner=WALLET, amount=7))
    decision = run(plain)
    assert decision.reason == "token_unchecked_transfer"
    assert str(OTHER) in decision.message and "TransferChecked" in decision.message


@pytest.mark.parametrize(
    "instruction, reason, named",
    [
        (transfer_checked(1, mint=UNKNOWN), "token_not_registered", str(UNKNOWN)),
        (transfer_checked(1, decimals=9), "token_mismatch", "USDC"),
        (transfer_checked(1, program=TOKEN_2022), "token_mismatch", "USDC"),
        (with_fee(1, 0, decimals=6), "token_mismatch", "T22"),
    ],
    ids=["unregistered", "decimals", "program", "fee-decimals"],
)
def test_a_transfer_must_match_the_registry(instruction, reason, named):
    decision = run(instruction)
    assert decision.reason == reason
    assert named in decision.message


def test_a_wallet_without_limits_for_a_mint_may_not_spend_it():
    decision = run(transfer_checked(1), limits={bytes(T22): LIMITS[bytes(T22)]})
    assert decision.reason == "token_no_limits"
    assert "--token USDC" in decision.message and str(USDC) in decision.message
    assert run(with_fee(1, 0), limits={bytes(T22): LIMITS[bytes(T22)]}).allowed


# -- boundaries: exactly at a limit, one base unit over --------------------------------------


@pytest.mark.parametrize("amount, allowed", [(25_000_000, True), (25_000_001, False)])
def test_per_transaction_boundary(amount, allowed):
    decision = run(transfer_checked(amount))
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reason == "token_per_tx_limit_exceeded" and str(USDC) in decision.message


@pytest.mark.parametrize("amount, allowed", [(20_000_000, True), (20_000_001, False)])
def test_daily_boundary(amount, allowed):
    decision = run(transfer_checked(amount), spent={bytes(USDC): 180_000_000})
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reason == "token_daily_limit_exceeded" and "180 USDC" in decision.message


def test_per_transaction_limit_holds_over_the_sum_of_a_mints_instructions():
    assert run(transfer_checked(25_000_000), transfer_checked(1)).reason == "token_per_tx_limit_exceeded"
    # Another mint's spend does not count against this one.
    assert run(transfer_checked(25_000_000), with_fee(10_000, 0)).allowed


def test_u64_amounts_are_exact():
    top = 2**64 - 1
    limits = {bytes(USDC): TokenLimits(top, top)}
    assert run(transfer_checked(top), limits=limits).allowed
    # Two maximal transfers sum above u64: still compared exactly, and refused.
    assert run(transfer_checked(top), transfer_checked(1), limits=limits).reason == "token_per_tx_limit_exceeded"
    assert run(transfer_checked(1), limits=limits, spent={bytes(USDC): top}).reason == "token_daily_limit_exceeded"


# -- every instruction, with the wallet as its authority (or payer) --------------------------

# What each kind gets when the vectors' authority (OWNER) or payer (PAYER) is the wallet.
# "counted": allowed and counted for its mint; "allowed": allowed, nothing counted.
EXPECTED = {
    "transfer_checked": "counted",
    "transfer_checked_with_fee": "counted",
    "transfer": "token_unchecked_transfer",
    "approve": "token_delegation",
    "approve_checked": "token_delegation",
    "set_authority": "token_authority_change",
    "mint_to": "token_mint_to",
    "mint_to_checked": "token_mint_to",
    "burn": "token_burn",
    "burn_checked": "token_burn",
    "permissioned_burn": "token_burn",
    "permissioned_burn_checked": "token_burn",
    "freeze_account": "token_freeze",
    "thaw_account": "token_freeze",
    "close_account": "token_close_to_other",
    "withdraw_excess_lamports": "token_close_to_other",
    "unwrap_lamports": "token_close_to_other",
    "revoke": "allowed",
    "initialize_account": "allowed",
    "enable_required_memo_transfers": "allowed",
    "disable_required_memo_transfers": "allowed",
    "enable_cpi_guard": "allowed",
    "create": "allowed",  # SOL: the rent deposit, below
    "create_idempotent": "allowed",
    "recover_nested": "allowed",
}


def substitute(vector: Vector, key: Pubkey) -> Instruction:
    ix = vector.instruction
    return Instruction(
        ix.program_id, bytes(ix.data),
        [AccountMeta(WALLET if a.pubkey == key else a.pubkey, a.is_signer, a.is_writable) for a in ix.accounts],
    )


def registry_for(vector: Vector) -> dict:
    program = TOKEN_2022_PROGRAM_ID if vector.program == "token_2022" else TOKEN_PROGRAM_ID
    decimals = vector.fields.get("decimals", 0)
    return {bytes(MINT): RegisteredMint("VEC", bytes(MINT), program, decimals if isinstance(decimals, int) else 0)}


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=lambda v: v.name)
def test_every_instruction_with_the_wallet_as_authority(vector):
    key = PAYER if vector.program == "associated_token" else OWNER
    instruction = substitute(vector, key)
    involved = any(a.pubkey == WALLET for a in instruction.accounts)
    expected = EXPECTED.get(vector.kind, "token_instruction_not_allowed") if involved else "allowed"
    if vector.lists.get("multisig_signers") and involved:
        expected = "token_multisig" if WALLET in vector.lists["multisig_signers"] else expected
    registry = registry_for(vector)
    decision = run(instruction, registry=registry, limits={bytes(MINT): TokenLimits(2**64 - 1, 2**64 - 1)})
    assert decision.reason != "program_not_allowed"
    if expected in ("counted", "allowed"):
        assert decision.allowed, decision.message
        assert bool(counted(decision)) is (expected == "counted")
        if expected == "counted":
            assert counted(decision) == {bytes(MINT): vector.fields["amount"]}
    else:
        assert decision.reason == expected, decision.message
        assert decision.reason in REASONS and decision.reason in POLICY_REFUSAL_CODES
        assert f"instruction 0 (" in decision.message and "\n" not in decision.message
        with pytest.raises(PolicyDenied):
            decision.raise_if_denied()


@pytest.mark.parametrize("vector", [v for v in ALL_VECTORS if S1 in v.lists.get("multisig_signers", [])], ids=lambda v: v.name)
def test_the_wallet_as_a_multisig_signer_is_refused(vector):
    decision = run(substitute(vector, S1), registry=registry_for(vector))
    assert decision.reason == "token_multisig", decision.message


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=lambda v: v.name)
def test_the_wallet_anywhere_is_decided_never_ignored(vector):
    """Whatever account the wallet stands in for: a token refusal, or allowed with only what
    the kind may do (a counted transfer, a harmless or crediting instruction)."""
    for account in {a.pubkey for a in vector.instruction.accounts}:
        decision = run(substitute(vector, account), registry=registry_for(vector),
                       limits={bytes(MINT): TokenLimits(2**64 - 1, 2**64 - 1)})
        if decision.allowed:
            assert not counted(decision) or vector.kind in ("transfer_checked", "transfer_checked_with_fee", "transfer")
            assert vector.kind not in ("approve", "approve_checked", "set_authority", "burn", "burn_checked") or not any(
                role in ("owner", "authority") and key == account for role, key in vector.roles.items()
            )
        else:
            assert decision.reason.startswith("token_") or decision.reason == "not_a_signer", decision.message


def test_only_crediting_the_wallet_is_not_spend():
    into_wallet = spl.transfer_checked(m.TransferCheckedParams(
        program_id=TOKEN, source=OTHER, mint=USDC, dest=WALLET, owner=UNKNOWN, amount=5, decimals=6,
    ))
    decision = run(into_wallet)
    assert decision.allowed and not counted(decision)
    close_to_wallet = spl.close_account(m.CloseAccountParams(program_id=TOKEN, account=WALLET_USDC, dest=WALLET, owner=WALLET))
    assert run(close_to_wallet).allowed


# -- associated accounts: the rent deposit is SOL spend --------------------------------------


def ata_create(mint: Pubkey, program: Pubkey, *, idempotent=False, owner=OTHER, funder=WALLET) -> Instruction:
    address = Pubkey(associated_token_address(bytes(owner), bytes(mint), bytes(program)))
    accounts = [
        AccountMeta(funder, True, True), AccountMeta(address, False, True), AccountMeta(owner, False, False),
        AccountMeta(mint, False, False), AccountMeta(Pubkey.default(), False, False), AccountMeta(program, False, False),
    ]
    return Instruction(Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"), bytes([1 if idempotent else 0]), accounts)


@pytest.mark.parametrize(
    "mint, program, size",
    [
        (USDC, TOKEN, 165),
        (UNKNOWN, TOKEN, 165),
        # Token-2022 with the registry's extensions: base + type byte + ImmutableOwner + TransferFeeAmount.
        (T22, TOKEN_2022, 165 + 1 + 4 + 4 + 8),
        (UNKNOWN, TOKEN_2022, TOKEN_2022_ACCOUNT_BYTES_UPPER_BOUND),
    ],
)
@pytest.mark.parametrize("idempotent", [False, True])
def test_associated_account_rent_the_wallet_funds_counts_as_sol(mint, program, size, idempotent):
    decision = run(ata_create(mint, program, idempotent=idempotent))
    assert decision.allowed, decision.message
    rent = rent_exempt_lamports(size)
    assert decision.spend.spend_lamports == FEE + rent
    (deposit,) = decision.spend.tokens.rent_deposits
    assert deposit.exact is (size != TOKEN_2022_ACCOUNT_BYTES_UPPER_BOUND)
    assert rent_exempt_lamports(165) == 2_039_280  # what the runtime charges for a token account


def test_rent_counts_against_the_sol_limits():
    rent = rent_exempt_lamports(165)
    decision = run(ata_create(USDC, TOKEN), transfer_checked(1))
    assert decision.allowed and decision.spend.spend_lamports == FEE + rent
    refused = decide(
        message=parse_message(bytes(SoldersMessage.new_with_blockhash([ata_create(USDC, TOKEN)], WALLET, Hash(bytes(32))))),
        wallet=bytes(WALLET), limits=Limits(FEE + rent - 1, 10**10), spent_24h_lamports=0, token_registry=REGISTRY,
    )
    assert refused.reason == "per_tx_limit_exceeded"


def test_associated_account_funded_by_another_is_not_the_wallets_spend():
    decision = run(ata_create(USDC, TOKEN, owner=WALLET, funder=OTHER), sp.transfer(
        {"from_pubkey": WALLET, "to_pubkey": OTHER, "lamports": 0}))
    assert decision.allowed and decision.spend.spend_lamports == 2 * FEE  # two signatures, no rent
    assert decision.spend.tokens.rent_deposits == ()


def test_rent_deposit_payee_is_the_accounts_owner_for_the_destination_allowlist():
    assert run(ata_create(USDC, TOKEN), destination_allowlist=[bytes(OTHER)]).allowed
    assert run(ata_create(USDC, TOKEN), destination_allowlist=[bytes(UNKNOWN)]).reason == "destination_not_allowed"
    # The wallet's own account: its rent stays the wallet's to reclaim.
    assert run(ata_create(USDC, TOKEN, owner=WALLET), destination_allowlist=[]).allowed


def test_wrapped_sol_round_trip_counts_the_sol_moved_in():
    native = Pubkey.from_string("So11111111111111111111111111111111111111112")
    wrapped = Pubkey(associated_token_address(bytes(WALLET), bytes(native), TOKEN_PROGRAM_ID))
    decision = run(
        sp.transfer({"from_pubkey": WALLET, "to_pubkey": wrapped, "lamports": 1_000}),
        spl.sync_native(m.SyncNativeParams(program_id=TOKEN, account=wrapped)),
        spl.close_account(m.CloseAccountParams(program_id=TOKEN, account=wrapped, dest=WALLET, owner=WALLET)),
    )
    assert decision.allowed and decision.spend.spend_lamports == FEE + 1_000


def test_every_token_reason_is_a_wire_refusal_code():
    token_reasons = {reason for reason in REASONS if reason.startswith("token_")}
    assert token_reasons <= POLICY_REFUSAL_CODES
    assert len(token_reasons) == 14


def test_a_destination_allow_list_governs_token_payments_too():
    """Tokens may go to an allow-listed owner's associated account of that mint, or to an
    allow-listed token account; anywhere else is destination_not_allowed, naming the mint."""
    owner = Pubkey(bytes([205]) * 32)
    owners_usdc = Pubkey(associated_token_address(bytes(owner), bytes(USDC), TOKEN_PROGRAM_ID))
    owners_t22 = Pubkey(associated_token_address(bytes(owner), bytes(USDC), TOKEN_2022_PROGRAM_ID))

    def pay_to(destination):
        return spl.transfer_checked(m.TransferCheckedParams(
            program_id=TOKEN, source=WALLET_USDC, mint=USDC, dest=destination, owner=WALLET, amount=5, decimals=6,
        ))

    assert run(pay_to(owners_usdc), destination_allowlist=[bytes(owner)]).allowed
    assert run(pay_to(OTHER), destination_allowlist=[bytes(OTHER)]).allowed  # a listed token account
    refused = run(pay_to(OTHER), destination_allowlist=[bytes(owner)])
    assert refused.reason == "destination_not_allowed"
    assert str(USDC) in refused.message and str(OTHER) in refused.message and "0.000005 USDC" in refused.message
    # The owner's account under the other token program is another address: not allowed.
    assert run(pay_to(owners_t22), destination_allowlist=[bytes(owner)]).reason == "destination_not_allowed"
    # Without an allow-list, tokens go anywhere the limits allow.
    assert run(pay_to(OTHER)).allowed
