"""What the decoder says an SPL Token instruction does, against what LiteSVM does with it.

Each instruction is built from the decoder's own tables (tag, layout, account roles in
order), executed by the real SPL Token program, and the runtime's effect is compared with
the decoded fields and roles: the amount leaves the account decoded as ``source`` and
arrives at ``destination``, the delegate named ``delegate`` gets ``amount``, and so on.
"""

from __future__ import annotations

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey

from jarvis_wallet.solana.message import parse_message
from jarvis_wallet.solana.programs import decode_instructions
from jarvis_wallet.solana.token import BASE_INSTRUCTIONS
from tests.runtime import SOL, sign
from tests.token_chain import TOKEN_PROGRAM, TokenChain

OWNER = Keypair.from_seed(bytes([41]) * 32)
MINT = Pubkey(bytes([42]) * 32)
SOURCE = Pubkey(bytes([43]) * 32)
DESTINATION = Pubkey(bytes([44]) * 32)
DELEGATE = Pubkey(bytes([45]) * 32)
LAMPORTS_TO = Pubkey(bytes([46]) * 32)
DECIMALS = 6
START = 1_000_000

_WIDTH = {"u64": 8, "u8": 1}
_SIGNING_ROLES = {"authority", "owner"}
_READ_ONLY_ROLES = {"delegate", "owner", "authority"}


def build(kind: str, fields: dict, accounts: dict[str, Pubkey]) -> Instruction:
    """An instruction as the decoder understands ``kind``: its tag, layout and role order."""
    [(tag, spec)] = [(tag, spec) for tag, spec in BASE_INSTRUCTIONS.items() if spec.kind == kind]
    data = bytes([tag]) + b"".join(fields[name].to_bytes(_WIDTH[kind_of], "little") for name, kind_of in spec.layout)
    metas = [AccountMeta(accounts[role], role in _SIGNING_ROLES, role not in _READ_ONLY_ROLES) for role in spec.roles]
    return Instruction(TOKEN_PROGRAM, data, metas)


@pytest.fixture
def chain() -> TokenChain:
    chain = TokenChain()
    chain.fund(OWNER.pubkey(), 10 * SOL)
    chain.mint(MINT, authority=OWNER.pubkey(), decimals=DECIMALS, supply=2 * START)
    chain.token_account(SOURCE, mint=MINT, owner=OWNER.pubkey(), amount=START)
    chain.token_account(DESTINATION, mint=MINT, owner=DELEGATE, amount=START)
    return chain


def run(chain: TokenChain, instruction: Instruction):
    """Decode the message the way the signer will, then execute it."""
    message = Message.new_with_blockhash([instruction], OWNER.pubkey(), chain.blockhash)
    parsed = parse_message(bytes(message))
    [decoded] = decode_instructions(parsed)
    execution = chain.execute(sign(message, [OWNER]))
    assert execution.ok, execution.error
    role = {name: Pubkey(parsed.account_key(index)) for name, index in decoded.roles.items()}
    return decoded, role


ACCOUNTS = {"source": SOURCE, "destination": DESTINATION, "authority": OWNER.pubkey(), "owner": OWNER.pubkey(),
            "mint": MINT, "delegate": DELEGATE, "account": SOURCE}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "fields"),
    [("transfer", {"amount": 250_000}), ("transfer_checked", {"amount": 123_456, "decimals": DECIMALS})],
)
def test_transfer_moves_the_decoded_amount_from_source_to_destination(chain, kind, fields):
    decoded, role = run(chain, build(kind, fields, ACCOUNTS))
    amount = decoded.fields["amount"]
    assert chain.token_state(role["source"]).amount == START - amount
    assert chain.token_state(role["destination"]).amount == START + amount
    assert role["authority"] == chain.token_state(role["source"]).owner == OWNER.pubkey()


def test_transfer_checked_with_wrong_decimals_is_refused_by_the_runtime(chain):
    # The decoded 'decimals' is the one the runtime checks against the mint.
    message = Message.new_with_blockhash(
        [build("transfer_checked", {"amount": 1, "decimals": DECIMALS + 1}, ACCOUNTS)], OWNER.pubkey(), chain.blockhash
    )
    [decoded] = decode_instructions(parse_message(bytes(message)))
    assert decoded.fields["decimals"] == DECIMALS + 1
    assert not chain.execute(sign(message, [OWNER])).ok
    assert chain.token_state(SOURCE).amount == START


def test_approve_gives_the_decoded_delegate_the_decoded_amount(chain):
    decoded, role = run(chain, build("approve", {"amount": 77_000}, ACCOUNTS))
    state = chain.token_state(role["source"])
    assert (state.delegate, state.delegated_amount) == (role["delegate"], decoded.fields["amount"])
    assert state.amount == START  # approving moves nothing


def test_burn_takes_the_decoded_amount_from_the_account_and_the_mint_supply(chain):
    decoded, role = run(chain, build("burn", {"amount": 40_000}, ACCOUNTS))
    assert chain.token_state(role["account"]).amount == START - decoded.fields["amount"]
    assert chain.supply(role["mint"]) == 2 * START - decoded.fields["amount"]


def test_close_account_sends_the_accounts_lamports_to_the_decoded_destination(chain):
    chain.token_account(SOURCE, mint=MINT, owner=OWNER.pubkey(), amount=0)  # only an empty account closes
    held = chain.balance(SOURCE)
    decoded, role = run(chain, build("close_account", {}, {**ACCOUNTS, "destination": LAMPORTS_TO}))
    assert held > 0
    assert chain.balance(role["account"]) == 0 and chain.token_state(role["account"]) is None
    assert chain.balance(role["destination"]) == held
    assert role["destination"] == LAMPORTS_TO and decoded.kind == "close_account"
