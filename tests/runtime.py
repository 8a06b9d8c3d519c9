"""The real Solana runtime (LiteSVM, in-process) as the oracle for what the policy counts.

Invariant 10 of the design: for every transaction the policy allows, the spend it counts is at
least what the runtime moves out of the wallet and out of every account the wallet controls.
Reading the instruction format says what we *think* moves; executing the signed transaction
says what does. Tests use this module to compare the two:

    chain = Chain()
    chain.fund(wallet.pubkey(), 10 * SOL)
    before = chain.controlled_lamports(wallet.pubkey(), watch=[seed_account])
    result = chain.execute(signed_transaction)
    lost = before - chain.controlled_lamports(wallet.pubkey(), watch=[seed_account])
    assert counted_spend >= lost
    # and no account of the wallet's changed hands without a lamport moving: taken_addresses()

"Controlled" is read off the accounts after execution, not off the instructions: the wallet's
own account while it is System-owned without data; a System-owned account without data whose
address derives from the wallet as base (only the wallet's signature can move it:
TransferWithSeed); an initialised nonce account whose authority is the wallet. An account that changed owner, gained data or got another authority is
no longer the wallet's, whatever its balance: that is how a drain without a transfer shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import solders.system_program as system_program
from solders.account import Account
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

SOL = 1_000_000_000
SYSTEM_PROGRAM = Pubkey.default()
NONCE_ACCOUNT_LENGTH = 80
_NONCE_INITIALIZED = 1


@dataclass(frozen=True)
class Execution:
    """What the runtime did with one transaction."""

    ok: bool
    fee: int  # charged whether or not the instructions succeeded
    error: str | None


@dataclass(frozen=True)
class NonceState:
    authority: Pubkey
    durable_nonce: Hash


class Chain:
    """One LiteSVM bank; every helper works on real accounts, no balances are made up."""

    def __init__(self) -> None:
        self.svm = LiteSVM()
        # Addresses derived from a wallet as base with the System Program as owner: the only
        # derived accounts whose lamports the wallet's signature alone can move.
        self._derived: set[Pubkey] = set()

    @property
    def blockhash(self) -> Hash:
        return self.svm.latest_blockhash()

    def fund(self, address: Pubkey, lamports: int) -> None:
        self.svm.airdrop(address, lamports)

    def balance(self, address: Pubkey) -> int:
        return self.svm.get_balance(address) or 0

    def account(self, address: Pubkey) -> Account | None:
        return self.svm.get_account(address)

    def put_account(self, address: Pubkey, account: Account) -> None:
        self.svm.set_account(address, account)

    def rent_exempt(self, data_length: int) -> int:
        return self.svm.minimum_balance_for_rent_exemption(data_length)

    def next_blockhash(self) -> Hash:
        """Move to a new blockhash (what a nonce advance needs)."""
        self.svm.expire_blockhash()
        return self.blockhash

    def execute(self, transaction: VersionedTransaction | bytes) -> Execution:
        if isinstance(transaction, (bytes, bytearray)):
            transaction = VersionedTransaction.from_bytes(bytes(transaction))
        result = self.svm.send_transaction(transaction)
        if isinstance(result, FailedTransactionMetadata):
            return Execution(ok=False, fee=result.meta().fee(), error=str(result.err()))
        return Execution(ok=True, fee=result.fee(), error=None)

    def nonce(self, address: Pubkey) -> NonceState | None:
        """The state of an initialised nonce account, or None."""
        account = self.account(address)
        if account is None or account.owner != SYSTEM_PROGRAM or len(account.data) != NONCE_ACCOUNT_LENGTH:
            return None
        data = bytes(account.data)
        if int.from_bytes(data[4:8], "little") != _NONCE_INITIALIZED:
            return None
        return NonceState(Pubkey.from_bytes(data[8:40]), Hash.from_bytes(data[40:72]))

    def controlled_lamports(self, wallet: Pubkey, *, watch: Iterable[Pubkey] = ()) -> int:
        """Lamports the wallet controls among itself and ``watch``, as the accounts stand now."""
        total = 0
        for address in dict.fromkeys([wallet, *watch]):
            account = self.account(address)
            if account is not None and self._controls(wallet, address, account):
                total += account.lamports
        return total

    def controlled_addresses(self, wallet: Pubkey, *, watch: Iterable[Pubkey] = ()) -> frozenset[Pubkey]:
        """The accounts among the wallet and ``watch`` that the wallet controls now."""
        return frozenset(
            address
            for address in dict.fromkeys([wallet, *watch])
            if (account := self.account(address)) is not None and self._controls(wallet, address, account)
        )

    def taken_addresses(self, wallet: Pubkey, controlled_before: frozenset[Pubkey], *, watch: Iterable[Pubkey] = ()) -> set[Pubkey]:
        """Addresses that were the wallet's (it controlled them before, or they derive from it)
        and now hold an account someone else controls: control taken without a lamport moved,
        which counting lamports cannot see. An account closed (no lamports left) is not taken."""
        taken = set()
        for address in dict.fromkeys([wallet, *watch]):
            account = self.account(address)
            if account is None or account.lamports == 0 or self._controls(wallet, address, account):
                continue
            if address in controlled_before or address == wallet or address in self._derived:
                taken.add(address)
        return taken

    def _controls(self, wallet: Pubkey, address: Pubkey, account: Account) -> bool:
        if account.owner != SYSTEM_PROGRAM:
            return False
        if not account.data:
            return address == wallet or address in self._derived
        state = self.nonce(address)
        return state is not None and state.authority == wallet

    def derive(self, wallet: Pubkey, seed: str, owner: Pubkey = SYSTEM_PROGRAM) -> Pubkey:
        """The address derived from ``wallet`` with ``seed`` for ``owner``; while it is a System
        account without data, its lamports count as the wallet's."""
        address = Pubkey.create_with_seed(wallet, seed, owner)
        self._derived.add(address)
        return address

    def create_nonce_account(self, payer: Keypair, authority: Pubkey, lamports: int = 2 * SOL) -> Pubkey:
        """A real nonce account, created and initialised by a transaction ``payer`` signs and funds."""
        nonce = Keypair()
        instructions = system_program.create_nonce_account(payer.pubkey(), nonce.pubkey(), authority, lamports)
        created = self.execute(sign(Message.new_with_blockhash(instructions, payer.pubkey(), self.blockhash), [payer, nonce]))
        assert created.ok, created.error
        self.next_blockhash()  # a nonce advances only past the blockhash it was created with
        return nonce.pubkey()

    def system_account(self, address: Pubkey, lamports: int, *, data_length: int = 0) -> None:
        """A System-owned account holding ``lamports`` (set up directly, as a test fixture)."""
        self.put_account(address, Account(lamports, bytes(data_length), SYSTEM_PROGRAM, False, 0))


def sign(message: Message | MessageV0, signers: Iterable[Keypair]) -> VersionedTransaction:
    """A fully signed transaction; every required signer must be among ``signers``."""
    return VersionedTransaction(message, list(signers))


def message_bytes(message: Message | MessageV0) -> bytes:
    """The bytes a signer signs (and our parser reads)."""
    return to_bytes_versioned(message) if isinstance(message, MessageV0) else bytes(message)
