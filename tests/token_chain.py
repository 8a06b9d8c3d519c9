"""SPL Token state in LiteSVM for tests: mints and token accounts set up directly, read back.

LiteSVM (solders 0.29) loads SPL Token, not Token-2022 nor the ATA program, so the runtime
checks here cover SPL Token; Token-2022 and ATA are covered by decoding vectors.
"""

from __future__ import annotations

from solders.account import Account
from solders.pubkey import Pubkey
from solders.token.state import Mint, TokenAccount, TokenAccountState

from jarvis_wallet.solana.token import TOKEN_PROGRAM_ID
from tests.runtime import Chain

TOKEN_PROGRAM = Pubkey(TOKEN_PROGRAM_ID)
MINT_LENGTH = 82
TOKEN_ACCOUNT_LENGTH = 165


class TokenChain(Chain):
    """A Chain that can also hold SPL Token mints and accounts."""

    def _put_token_state(self, address: Pubkey, data: bytes) -> None:
        self.put_account(address, Account(self.rent_exempt(len(data)), data, TOKEN_PROGRAM, False, 0))

    def mint(
        self, address: Pubkey, *, authority: Pubkey, decimals: int, supply: int = 0, freeze_authority: Pubkey | None = None
    ) -> None:
        data = bytes(Mint(authority, supply, decimals, True, freeze_authority))
        assert len(data) == MINT_LENGTH
        self._put_token_state(address, data)

    def token_account(self, address: Pubkey, *, mint: Pubkey, owner: Pubkey, amount: int) -> None:
        data = bytes(TokenAccount(mint, owner, amount, None, TokenAccountState.Initialized, None, 0, None))
        assert len(data) == TOKEN_ACCOUNT_LENGTH
        self._put_token_state(address, data)

    def token_state(self, address: Pubkey) -> TokenAccount | None:
        account = self.account(address)
        if account is None or account.owner != TOKEN_PROGRAM or len(account.data) != TOKEN_ACCOUNT_LENGTH:
            return None
        return TokenAccount.from_bytes(bytes(account.data))

    def supply(self, mint: Pubkey) -> int:
        return Mint.from_bytes(bytes(self.account(mint).data)).supply

    def holdings(self, owner: Pubkey, accounts) -> dict[Pubkey, int]:
        """Tokens per mint that ``owner`` holds among ``accounts`` (as owner: a delegate's
        allowance is still the owner's balance until it is used)."""
        totals: dict[Pubkey, int] = {}
        for address in accounts:
            state = self.token_state(address)
            if state is not None and state.owner == owner:
                totals[state.mint] = totals.get(state.mint, 0) + state.amount
        return totals
