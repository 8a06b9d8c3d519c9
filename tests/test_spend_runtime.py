"""What the policy counts, checked against what the Solana runtime (LiteSVM) really moves.

Each allowed case is decided by ``policy.decide``, signed, executed in LiteSVM, and the lamports
that left the wallet's control (tests/runtime.py says what "control" means) are compared with
the spend the policy counted: never less, and equal where the policy is exact. Each refused case
is also executed, signed anyway, to show what the refusal prevents: money leaving the wallet's
control without being counted.
"""

from __future__ import annotations

import pytest
import solders.compute_budget as cb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import solders.system_program as sp
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey

from jarvis_wallet.errors import InvalidTransaction
from jarvis_wallet.policy import Decision, Limits, decide
from jarvis_wallet.solana import parse_message
from jarvis_wallet.solana.programs import ED25519_PROGRAM_ID, SECP256K1_PROGRAM_ID

from runtime import SOL, Chain, Execution, message_bytes, sign

WALLET = Keypair.from_seed(bytes([1]) * 32)
OTHER = Keypair.from_seed(bytes([2]) * 32)
ATTACKER = Keypair.from_seed(bytes([3]) * 32)
RECIPIENT = Pubkey.from_string("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")
# Some other program, as an account owner: unrelated to every program the policy decodes (the
# Token program was used here once; it is governed now, so it is no "other" program any more).
SOME_PROGRAM = Pubkey(bytes([42]) * 32)
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ROOMY = Limits(per_tx_lamports=1_000 * SOL, daily_lamports=1_000 * SOL)
NONCE_SPACE = 80
W = WALLET.pubkey()


@pytest.fixture
def chain() -> Chain:
    chain = Chain()
    for keypair in (WALLET, OTHER, ATTACKER):
        chain.fund(keypair.pubkey(), 100 * SOL)
    return chain


def decide_on(chain: Chain, instructions, *, payer: Pubkey = W, **options) -> tuple[Message, Decision]:
    message = Message.new_with_blockhash(list(instructions), payer, chain.blockhash)
    parsed = parse_message(message_bytes(message))
    decision = decide(message=parsed, wallet=bytes(W), limits=ROOMY, spent_24h_lamports=0, **options)
    return message, decision


def execute_and_measure(chain: Chain, message: Message, signers, watch=()) -> tuple[Execution, int, set]:
    """Sign with ``signers``, execute, and return the lamports that left the wallet's control
    and the addresses of the wallet's that someone else now controls."""
    before = chain.controlled_lamports(W, watch=watch)
    controlled = chain.controlled_addresses(W, watch=watch)
    execution = chain.execute(sign(message, signers))
    return execution, before - chain.controlled_lamports(W, watch=watch), chain.taken_addresses(W, controlled, watch=watch)


def withdraw_nonce(nonce: Pubkey, authority: Pubkey, to: Pubkey, lamports: int) -> Instruction:
    return sp.withdraw_nonce_account({"nonce_pubkey": nonce, "authorized_pubkey": authority, "to_pubkey": to, "lamports": lamports})


# -- what the policy allows: counted >= moved, and equal where exact ----------------------------------


def _transfer(chain: Chain):
    return [sp.transfer({"from_pubkey": W, "to_pubkey": RECIPIENT, "lamports": SOL})], [WALLET], ()


def _priority_fee_without_limit(chain: Chain):
    return [
        cb.set_compute_unit_price(1_000_000),
        sp.transfer({"from_pubkey": W, "to_pubkey": RECIPIENT, "lamports": SOL}),
    ], [WALLET], ()


def _create_account_pays_rent(chain: Chain):
    new = Keypair()
    rent = chain.rent_exempt(165)
    create = sp.create_account({"from_pubkey": W, "to_pubkey": new.pubkey(), "lamports": rent, "space": 165, "owner": SOME_PROGRAM})
    return [create], [WALLET, new], ()


def _transfer_with_seed_out_of_a_derived_account(chain: Chain):
    derived = chain.derive(W, "savings")
    chain.system_account(derived, 5 * SOL)
    move = sp.transfer_with_seed(
        {"from_pubkey": derived, "from_base": W, "from_seed": "savings", "from_owner": Pubkey.default(), "to_pubkey": RECIPIENT, "lamports": 2 * SOL}
    )
    return [move], [WALLET], (derived,)


def _nonce_withdrawal_by_the_wallet(chain: Chain):
    nonce = chain.create_nonce_account(OTHER, W)
    return [withdraw_nonce(nonce, W, RECIPIENT, SOL)], [WALLET], (nonce,)


def _nonce_withdrawal_with_the_wallet_listed_after_the_authority(chain: Chain):
    # Account 4 names OTHER, but the runtime takes the stored authority (the wallet) from any of
    # the instruction's signers: the withdrawal succeeds and is the wallet's spend.
    nonce = chain.create_nonce_account(OTHER, W)
    withdraw = withdraw_nonce(nonce, OTHER.pubkey(), RECIPIENT, SOL)
    withdraw = Instruction(withdraw.program_id, withdraw.data, [*withdraw.accounts, AccountMeta(W, True, False)])
    return [withdraw], [WALLET, OTHER], (nonce,)


def _nonce_withdrawal_naming_the_wallet_only_as_the_nonce_account(chain: Chain):
    # Listed where the runtime cannot take it as the authority (the wallet has no nonce state):
    # the instruction fails, nothing but the fee moves, and nothing but the fee is counted.
    return [withdraw_nonce(W, OTHER.pubkey(), RECIPIENT, SOL)], [WALLET, OTHER], ()


def _co_signing_while_another_pays(chain: Chain):
    pay = sp.transfer({"from_pubkey": OTHER.pubkey(), "to_pubkey": RECIPIENT, "lamports": SOL})
    memo = Instruction(Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"), b"ok", [AccountMeta(W, True, False)])
    return [pay, memo], [OTHER, WALLET], ()


def _create_account_with_seed_over_a_funded_derived_account(chain: Chain):
    # The wallet signs as base while another account funds: the runtime refuses to create over
    # an account that holds lamports (AccountAlreadyInUse), so the derived money stays put.
    derived = chain.derive(W, "vault")
    chain.system_account(derived, 5 * SOL)
    create = sp.create_account_with_seed(
        {"from_pubkey": OTHER.pubkey(), "to_pubkey": derived, "base": W, "seed": "vault", "lamports": 1, "space": 0, "owner": Pubkey.default()}
    )
    return [create], [OTHER, WALLET], (derived,)


def _initialize_nonce_on_a_derived_account_without_data(chain: Chain):
    # InitializeNonceAccount only works on a System account of nonce size: on a derived account
    # without data the runtime refuses it, and only the fee moves.
    derived = chain.derive(W, "plain")
    chain.system_account(derived, 5 * SOL)
    return [sp.initialize_nonce_account({"nonce_pubkey": derived, "authority": W})], [WALLET], (derived,)


EXACT = "exact"
UPPER_BOUND = "upper bound"


@pytest.mark.parametrize(
    ("build", "payer", "accuracy"),
    [
        (_transfer, W, EXACT),
        (_priority_fee_without_limit, W, EXACT),
        (_create_account_pays_rent, W, EXACT),
        (_transfer_with_seed_out_of_a_derived_account, W, EXACT),
        (_nonce_withdrawal_by_the_wallet, W, EXACT),
        (_nonce_withdrawal_with_the_wallet_listed_after_the_authority, W, EXACT),
        (_nonce_withdrawal_naming_the_wallet_only_as_the_nonce_account, W, EXACT),
        (_co_signing_while_another_pays, OTHER.pubkey(), EXACT),
        (_create_account_with_seed_over_a_funded_derived_account, OTHER.pubkey(), EXACT),
        # Fails in the runtime, so only the fee moves: the fee is what is counted.
        (_initialize_nonce_on_a_derived_account_without_data, W, EXACT),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_counted_spend_matches_what_the_runtime_moves(chain: Chain, build, payer: Pubkey, accuracy: str) -> None:
    instructions, signers, watch = build(chain)
    message, decision = decide_on(chain, instructions, payer=payer)
    assert decision.allowed, decision.message
    execution, moved, taken = execute_and_measure(chain, message, signers, watch)
    counted = decision.spend.spend_lamports
    assert counted >= moved, (counted, moved, execution)
    assert not taken, (taken, execution)
    if accuracy == EXACT:
        assert counted == max(moved, 0), (counted, moved, execution)
    if payer == W:
        assert decision.spend.fee_lamports == execution.fee


# -- the fee: what the runtime charges, whichever programs run --------------------------------------------

UPGRADEABLE_LOADER = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
LOADER_V4 = Pubkey.from_string("LoaderV411111111111111111111111111111111111")
BPF_LOADER = Pubkey.from_string("BPFLoader2111111111111111111111111111111111")
DEPRECATED_LOADER = Pubkey.from_string("BPFLoader1111111111111111111111111111111111")
MEMO = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
STAKE = Pubkey.from_string("Stake11111111111111111111111111111111111111")
SECP256R1 = Pubkey.from_string("Secp256r1SigVerify1111111111111111111111111")


@pytest.mark.parametrize(
    "instructions",
    [
        [Instruction(Pubkey(ED25519_PROGRAM_ID), bytes([0, 0]), [])],
        [Instruction(Pubkey(SECP256K1_PROGRAM_ID), bytes([0]), [])],
        # Precompiles charge every signature they verify, even ones that fail to verify.
        [Instruction(Pubkey(ED25519_PROGRAM_ID), bytes([2, 0]) + bytes(28), [])],
        [Instruction(Pubkey(SECP256K1_PROGRAM_ID), bytes([3]) + bytes(33), [])],
        [Instruction(UPGRADEABLE_LOADER, b"\x07", [])],
        [Instruction(LOADER_V4, b"\x07", [])],
        [Instruction(BPF_LOADER, b"\x07", [])],
        [Instruction(DEPRECATED_LOADER, b"\x07", [])],
        [Instruction(MEMO, b"memo", [])],
        # SPL Token is decoded now, so it gets a well-formed instruction (GetAccountDataSize).
        [Instruction(TOKEN_PROGRAM, bytes([21]), [AccountMeta(RECIPIENT, False, False)])],
        [Instruction(STAKE, b"\x07", [])],
        [Instruction(SECP256R1, bytes([0, 0]), [])],
        [Instruction(UPGRADEABLE_LOADER, b"\x07", []), Instruction(MEMO, b"m", []), Instruction(Pubkey(ED25519_PROGRAM_ID), bytes([0, 0]), [])],
    ],
    ids=lambda instructions: "+".join(str(i.program_id)[:8] for i in instructions),
)
def test_fee_counted_is_the_fee_charged(chain: Chain, instructions) -> None:
    # A unit price of 1 lamport per unit makes the default compute unit limit visible in the fee.
    transfer = sp.transfer({"from_pubkey": W, "to_pubkey": RECIPIENT, "lamports": SOL})
    message, decision = decide_on(chain, [cb.set_compute_unit_price(1_000_000), transfer, *instructions])
    assert decision.allowed, decision.message
    execution = chain.execute(sign(message, [WALLET]))
    assert decision.spend.fee_lamports == execution.fee, (decision.spend.compute_unit_limit, execution)


# -- what the policy refuses, and what signing it anyway would have cost -----------------------------------


def _allocate_with_seed_then_initialize_nonce(chain: Chain):
    # The drain of issue #10: a derived account of 50 SOL handed to an attacker's nonce authority,
    # with no transfer at all; the attacker withdraws it afterwards.
    derived = chain.derive(W, "reserve")
    chain.system_account(derived, 50 * SOL)
    allocate = sp.allocate_with_seed(
        {"address": derived, "base": W, "seed": "reserve", "space": NONCE_SPACE, "owner": Pubkey.default()}
    )
    initialize = sp.initialize_nonce_account({"nonce_pubkey": derived, "authority": ATTACKER.pubkey()})
    return [allocate, initialize], [WALLET], (derived,)


def _assign_with_seed_to_another_program(chain: Chain):
    derived = Pubkey.create_with_seed(W, "vault", Pubkey.default())
    chain.derive(W, "vault")
    chain.system_account(derived, 50 * SOL)
    # AssignWithSeed derives the address with the *new* owner; a derived account made for that
    # owner is what an agent would point it at.
    target = Pubkey.create_with_seed(W, "vault", SOME_PROGRAM)
    chain.system_account(target, 50 * SOL)
    chain._derived.add(target)  # System-owned and derived from the wallet: the wallet's money
    assign = sp.assign_with_seed({"address": target, "base": W, "seed": "vault", "owner": SOME_PROGRAM})
    return [assign], [WALLET], (target,)


def _allocate_the_wallet_then_initialize_nonce(chain: Chain):
    allocate = sp.allocate({"pubkey": W, "space": NONCE_SPACE})
    initialize = sp.initialize_nonce_account({"nonce_pubkey": W, "authority": ATTACKER.pubkey()})
    return [allocate, initialize], [OTHER, WALLET], ()


def _authorize_nonce_to_another(chain: Chain):
    nonce = chain.create_nonce_account(OTHER, W)
    authorize = sp.authorize_nonce_account({"nonce_pubkey": nonce, "authorized_pubkey": W, "new_authority": ATTACKER.pubkey()})
    return [authorize], [WALLET], (nonce,)


def _withdraw_own_nonce_then_reinitialize_for_another(chain: Chain):
    # Found in review: the wallet's nonce account emptied into the wallet (nothing to count),
    # topped up by the attacker, and re-initialised with the attacker's authority. No lamport
    # leaves, but the account, and anything paid into it later, is the attacker's.
    nonce = chain.create_nonce_account(OTHER, W)
    withdraw = withdraw_nonce(nonce, W, W, chain.balance(nonce))
    top_up = sp.transfer({"from_pubkey": ATTACKER.pubkey(), "to_pubkey": nonce, "lamports": chain.rent_exempt(NONCE_SPACE)})
    initialize = sp.initialize_nonce_account({"nonce_pubkey": nonce, "authority": ATTACKER.pubkey()})
    return [withdraw, top_up, initialize], [ATTACKER, WALLET], (nonce,)


def _withdraw_own_nonce_in_full_and_keep_it_alive(chain: Chain):
    # Found in the second review: the same handover in two steps. Emptied into the wallet and
    # topped up in the transaction the wallet signs, the nonce account survives uninitialised;
    # the attacker initialises it alone afterwards (InitializeNonceAccount needs no signature).
    nonce = chain.create_nonce_account(OTHER, W)
    withdraw = withdraw_nonce(nonce, W, W, chain.balance(nonce))
    top_up = sp.transfer({"from_pubkey": ATTACKER.pubkey(), "to_pubkey": nonce, "lamports": chain.rent_exempt(NONCE_SPACE)})
    return [withdraw, top_up], [ATTACKER, WALLET], (nonce,)


def _withdraw_own_nonce_to_the_wallet_as_its_only_signer_and_keep_it_alive(chain: Chain):
    # Found in the third review: with only four accounts the wallet signs as the recipient, and
    # the runtime takes it as the nonce's authority from there.
    nonce = chain.create_nonce_account(OTHER, W)
    withdraw = withdraw_nonce(nonce, W, W, chain.balance(nonce))
    withdraw = Instruction(withdraw.program_id, withdraw.data, [
        AccountMeta(nonce, False, True), AccountMeta(W, True, True), *withdraw.accounts[2:4],
    ])
    top_up = sp.transfer({"from_pubkey": W, "to_pubkey": nonce, "lamports": chain.rent_exempt(NONCE_SPACE)})
    return [withdraw, top_up], [WALLET], (nonce,)


def _empty_a_derived_account_then_recreate_it_for_another(chain: Chain):
    # Found in review: "the runtime only creates over an empty address" does not protect a
    # derived address that the same transaction first empties into the wallet.
    derived = chain.derive(W, "deposit")
    chain.system_account(derived, 5 * SOL)
    empty = sp.transfer_with_seed(
        {"from_pubkey": derived, "from_base": W, "from_seed": "deposit", "from_owner": Pubkey.default(), "to_pubkey": W, "lamports": 5 * SOL}
    )
    create = sp.create_account_with_seed(
        {"from_pubkey": ATTACKER.pubkey(), "to_pubkey": derived, "base": W, "seed": "deposit",
         "lamports": chain.rent_exempt(NONCE_SPACE), "space": NONCE_SPACE, "owner": Pubkey.default()}
    )
    initialize = sp.initialize_nonce_account({"nonce_pubkey": derived, "authority": ATTACKER.pubkey()})
    return [empty, create, initialize], [ATTACKER, WALLET], (derived,)


def _squat_an_unused_derived_address_for_another_program(chain: Chain):
    # The address a wallet's seed "stake:0" account would have, created for another program
    # by someone else: whatever is sent there later is that program's to give.
    derived = chain.derive(W, "stake:0", SOME_PROGRAM)
    create = sp.create_account_with_seed(
        {"from_pubkey": ATTACKER.pubkey(), "to_pubkey": derived, "base": W, "seed": "stake:0",
         "lamports": chain.rent_exempt(0), "space": 0, "owner": SOME_PROGRAM}
    )
    return [create], [ATTACKER, WALLET], (derived,)


@pytest.mark.parametrize(
    ("build", "payer", "reason", "uncounted_at_least", "takes_control"),
    [
        (_allocate_with_seed_then_initialize_nonce, W, "ownership_change", 50 * SOL, True),
        (_assign_with_seed_to_another_program, W, "ownership_change", 50 * SOL, True),
        (_allocate_the_wallet_then_initialize_nonce, OTHER.pubkey(), "ownership_change", 99 * SOL, True),
        (_authorize_nonce_to_another, W, "ownership_change", 2 * SOL, True),
        (_withdraw_own_nonce_then_reinitialize_for_another, ATTACKER.pubkey(), "ownership_change", 0, True),
        (_withdraw_own_nonce_in_full_and_keep_it_alive, ATTACKER.pubkey(), "ownership_change", 0, True),
        (_withdraw_own_nonce_to_the_wallet_as_its_only_signer_and_keep_it_alive, W, "ownership_change", 0, True),
        (_empty_a_derived_account_then_recreate_it_for_another, ATTACKER.pubkey(), "ownership_change", 0, True),
        (_squat_an_unused_derived_address_for_another_program, ATTACKER.pubkey(), "ownership_change", 0, True),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_refused_because_signing_would_take_money_or_control_uncounted(
    chain, build, payer, reason, uncounted_at_least, takes_control
) -> None:
    instructions, signers, watch = build(chain)
    message, decision = decide_on(chain, instructions, payer=payer)
    assert decision.reason == reason, decision.message
    execution, moved, taken = execute_and_measure(chain, message, signers, watch)
    assert execution.ok, execution.error  # the runtime would have done it
    assert moved - decision.spend.spend_lamports >= uncounted_at_least
    assert bool(taken) == takes_control, taken


def test_a_nonce_account_kept_alive_is_taken_by_the_attacker_alone(chain: Chain) -> None:
    """What the refusal above prevents: the second step needs no signature of the wallet's."""
    instructions, signers, (nonce,) = _withdraw_own_nonce_in_full_and_keep_it_alive(chain)
    message, _ = decide_on(chain, instructions, payer=ATTACKER.pubkey())
    assert chain.execute(sign(message, signers)).ok
    take = Message.new_with_blockhash(
        [sp.initialize_nonce_account({"nonce_pubkey": nonce, "authority": ATTACKER.pubkey()})], ATTACKER.pubkey(), chain.blockhash
    )
    assert chain.execute(sign(take, [ATTACKER])).ok
    assert chain.nonce(nonce).authority == ATTACKER.pubkey()


def test_a_partial_withdrawal_from_the_wallets_nonce_is_allowed_and_counted(chain: Chain) -> None:
    nonce = chain.create_nonce_account(OTHER, W)
    message, decision = decide_on(chain, [withdraw_nonce(nonce, W, RECIPIENT, SOL)])
    assert decision.allowed and decision.spend.spend_lamports == SOL + 5_000


def test_the_drain_completes_for_the_attacker_once_signed(chain: Chain) -> None:
    """The whole attack, end to end: after the signed handover the attacker takes the 50 SOL."""
    instructions, signers, watch = _allocate_with_seed_then_initialize_nonce(chain)
    message, _ = decide_on(chain, instructions)
    assert chain.execute(sign(message, signers)).ok
    (derived,) = watch
    chain.next_blockhash()
    take = withdraw_nonce(derived, ATTACKER.pubkey(), ATTACKER.pubkey(), chain.balance(derived))
    before = chain.balance(ATTACKER.pubkey())
    taken = Message.new_with_blockhash([take], ATTACKER.pubkey(), chain.blockhash)
    assert chain.execute(sign(taken, [ATTACKER])).ok
    assert chain.balance(ATTACKER.pubkey()) - before >= 50 * SOL - 5_000


# -- any mix of System instructions: never more moved than counted ------------------------------------------

NEW = Keypair.from_seed(bytes([4]) * 32)
SEEDS = ("a", "reserve")
OWNERS = (Pubkey.default(), SOME_PROGRAM)
AMOUNTS = st.sampled_from([0, 1, 890_880, SOL, 3 * SOL])


class World:
    """A chain where the wallet controls money in every form the System Program knows."""

    def __init__(self) -> None:
        self.chain = chain = Chain()
        for keypair in (WALLET, OTHER, ATTACKER):
            chain.fund(keypair.pubkey(), 100 * SOL)
        self.derived = []
        for seed in SEEDS:
            for owner in OWNERS:  # funded System accounts at every address the wallet can derive
                address = chain.derive(W, seed, owner)
                chain.system_account(address, 5 * SOL)
                self.derived.append(address)
        self.wallet_nonce = chain.create_nonce_account(OTHER, W)
        self.other_nonce = chain.create_nonce_account(OTHER, OTHER.pubkey())
        self.watch = (*self.derived, self.wallet_nonce, self.other_nonce)


SIGNERS = st.sampled_from([W, OTHER.pubkey()])
ANY_KEY = st.sampled_from([W, OTHER.pubkey(), NEW.pubkey(), RECIPIENT])


@st.composite
def system_instruction(draw):
    """A System instruction, drawn now, built later against a World (which holds the nonces)."""
    kind = draw(st.sampled_from([
        "transfer", "create", "create_with_seed", "allocate", "allocate_with_seed", "assign",
        "assign_with_seed", "transfer_with_seed", "withdraw_nonce", "authorize_nonce",
        "initialize_nonce", "advance_nonce", "price",
    ]))
    seed, owner, lamports = draw(st.sampled_from(SEEDS)), draw(st.sampled_from(OWNERS)), draw(AMOUNTS)
    space = draw(st.sampled_from([0, 80]))
    base, signer, extra_signer = draw(SIGNERS), draw(SIGNERS), draw(st.sampled_from([None, W, OTHER.pubkey()]))
    to = draw(ANY_KEY)
    own_account = draw(st.sampled_from([W, OTHER.pubkey(), NEW.pubkey()]))
    new_authority = draw(st.sampled_from([W, OTHER.pubkey(), ATTACKER.pubkey()]))
    wallet_nonce, target_index = draw(st.booleans()), draw(st.integers(0, len(SEEDS) * len(OWNERS)))
    price = draw(st.sampled_from([1, 1_000_000]))
    derived = Pubkey.create_with_seed(base, seed, owner)

    def build(world: World) -> Instruction:
        nonce = world.wallet_nonce if wallet_nonce else world.other_nonce
        if kind == "transfer":
            return sp.transfer({"from_pubkey": signer, "to_pubkey": to, "lamports": lamports})
        if kind == "create":
            new = NEW.pubkey() if own_account != W else W
            return sp.create_account({"from_pubkey": signer, "to_pubkey": new, "lamports": lamports, "space": space, "owner": owner})
        if kind == "create_with_seed":
            return sp.create_account_with_seed(
                {"from_pubkey": signer, "to_pubkey": derived, "base": base, "seed": seed, "lamports": lamports, "space": space, "owner": owner}
            )
        if kind == "allocate":
            return sp.allocate({"pubkey": own_account, "space": space})
        if kind == "allocate_with_seed":
            return sp.allocate_with_seed({"address": derived, "base": base, "seed": seed, "space": space, "owner": owner})
        if kind == "assign":
            return sp.assign({"pubkey": own_account, "owner": owner})
        if kind == "assign_with_seed":
            return sp.assign_with_seed({"address": derived, "base": base, "seed": seed, "owner": owner})
        if kind == "transfer_with_seed":
            return sp.transfer_with_seed(
                {"from_pubkey": derived, "from_base": base, "from_seed": seed, "from_owner": owner, "to_pubkey": to, "lamports": lamports}
            )
        if kind == "withdraw_nonce":
            withdraw = withdraw_nonce(nonce, signer, to, lamports)
            if extra_signer is not None:  # a signer listed after the authority
                withdraw = Instruction(withdraw.program_id, withdraw.data, [*withdraw.accounts, AccountMeta(extra_signer, True, False)])
            return withdraw
        if kind == "authorize_nonce":
            return sp.authorize_nonce_account({"nonce_pubkey": nonce, "authorized_pubkey": signer, "new_authority": new_authority})
        if kind == "initialize_nonce":
            account = [*world.derived, NEW.pubkey()][target_index]
            return sp.initialize_nonce_account({"nonce_pubkey": account, "authority": ATTACKER.pubkey()})
        if kind == "advance_nonce":
            return sp.advance_nonce_account({"nonce_pubkey": nonce, "authorized_pubkey": signer})
        return cb.set_compute_unit_price(price)

    return build


@settings(max_examples=400, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(builders=st.lists(system_instruction(), min_size=1, max_size=4), payer=SIGNERS)
def test_no_mix_of_system_instructions_moves_more_than_is_counted(builders, payer) -> None:
    world = World()
    instructions = [build(world) for build in builders]
    try:
        message, decision = decide_on(world.chain, instructions, payer=payer, durable_nonce_accounts=[bytes(world.wallet_nonce), bytes(world.other_nonce)])
    except InvalidTransaction:
        return  # not understood, so never signed (a second Compute Budget price, say)
    if not decision.allowed:
        return
    required = set(message.account_keys[: message.header.num_required_signatures])
    keypairs = [k for k in (WALLET, OTHER, NEW, ATTACKER) if k.pubkey() in required]
    if len(keypairs) != len(required):
        return  # needs a signature nobody here holds (a derived address): the runtime would refuse it
    execution, moved, taken = execute_and_measure(world.chain, message, keypairs, world.watch)
    assert decision.spend.spend_lamports >= moved, (instructions, execution, decision.spend.to_dict())
    assert not taken, (instructions, execution, taken)
