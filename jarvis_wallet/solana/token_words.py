"""Plain-words sentences for SPL Token, Token-2022 and ATA instructions.

Amounts are in the mint's base units (the decoders do not know the mint's
decimals; ``decimals`` is shown where the instruction states it). Accounts are
named by the caller's ``who(role)`` (the message's account labels).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .pubkey import encode_pubkey

# kind -> sentence; {name} is a field, {@role} an account, {amount:units} base units.
_SENTENCES = {
    "initialize_mint": "initialize mint {@mint} ({decimals} decimals), mint authority {mint_authority}, freeze authority {freeze_authority}",
    "initialize_account": "initialize token account {@account} for mint {@mint}, owner {@owner}",
    "initialize_multisig": "initialize multisig {@multisig}: {m} of {#members} signers",
    "transfer": "transfer {amount:units} from token account {@source} to {@destination}, authorised by {@authority}",
    "approve": "approve delegate {@delegate} for {amount:units} of token account {@source}, owner {@owner}",
    "revoke": "revoke the delegate of token account {@source}, owner {@owner}",
    "set_authority": "set the {authority_type} authority of {@account} to {new_authority}, authorised by {@authority}",
    "mint_to": "mint {amount:units} of mint {@mint} to {@destination}, authorised by {@authority}",
    "burn": "burn {amount:units} from token account {@account} (mint {@mint}), authorised by {@authority}",
    "close_account": "close account {@account}, its lamports to {@destination}, authorised by {@owner}",
    "freeze_account": "freeze token account {@account} (mint {@mint}), authorised by {@authority}",
    "thaw_account": "thaw token account {@account} (mint {@mint}), authorised by {@authority}",
    "transfer_checked": "transfer {amount:units} ({decimals} decimals) of mint {@mint} from token account {@source} to {@destination}, authorised by {@authority}",
    "approve_checked": "approve delegate {@delegate} for {amount:units} ({decimals} decimals) of mint {@mint} from token account {@source}, owner {@owner}",
    "mint_to_checked": "mint {amount:units} ({decimals} decimals) of mint {@mint} to {@destination}, authorised by {@authority}",
    "burn_checked": "burn {amount:units} ({decimals} decimals) from token account {@account} (mint {@mint}), authorised by {@authority}",
    "initialize_account2": "initialize token account {@account} for mint {@mint}, owner {owner}",
    "sync_native": "sync the wrapped SOL balance of token account {@account}",
    "initialize_account3": "initialize token account {@account} for mint {@mint}, owner {owner}",
    "initialize_multisig2": "initialize multisig {@multisig}: {m} of {#members} signers",
    "initialize_mint2": "initialize mint {@mint} ({decimals} decimals), mint authority {mint_authority}, freeze authority {freeze_authority}",
    "get_account_data_size": "ask the account size for mint {@mint}",
    "initialize_immutable_owner": "make the owner of token account {@account} immutable",
    "amount_to_ui_amount": "convert {amount:units} of mint {@mint} to a UI amount",
    "ui_amount_to_amount": "convert UI amount {ui_amount!r} of mint {@mint} to base units",
    "withdraw_excess_lamports": "withdraw excess lamports of {@source} to {@destination}, authorised by {@authority}",
    "unwrap_lamports": "unwrap {amount:lamports} from wrapped SOL account {@source} to {@destination}, authorised by {@authority}",
    "initialize_mint_close_authority": "set the close authority of new mint {@mint} to {close_authority}",
    "reallocate": "reallocate token account {@account} for extensions {extension_types}, paid by {@payer}, owner {@owner}",
    "create_native_mint": "create the native mint {@native_mint}, paid by {@payer}",
    "initialize_non_transferable_mint": "make new mint {@mint} non-transferable",
    "initialize_permanent_delegate": "make {delegate} permanent delegate of new mint {@mint}",
    "initialize_transfer_fee_config": "set a transfer fee of {transfer_fee_basis_points} basis points (at most {maximum_fee:units}) on new mint {@mint}, fee authority {transfer_fee_config_authority}, withdraw authority {withdraw_withheld_authority}",
    "transfer_checked_with_fee": "transfer {amount:units} ({decimals} decimals, fee {fee:units}) of mint {@mint} from token account {@source} to {@destination}, authorised by {@authority}",
    "withdraw_withheld_tokens_from_mint": "withdraw the fees withheld in mint {@mint} to {@destination}, authorised by {@authority}",
    "withdraw_withheld_tokens_from_accounts": "withdraw the fees withheld in {num_token_accounts} accounts of mint {@mint} to {@destination}, authorised by {@authority}",
    "harvest_withheld_tokens_to_mint": "move the fees withheld in {#sources} accounts into mint {@mint}",
    "set_transfer_fee": "set the transfer fee of mint {@mint} to {transfer_fee_basis_points} basis points (at most {maximum_fee:units}), authorised by {@authority}",
    "initialize_default_account_state": "make new token accounts of mint {@mint} start {state}",
    "update_default_account_state": "make new token accounts of mint {@mint} start {state}, authorised by {@freeze_authority}",
    "enable_required_memo_transfers": "require memos on transfers into token account {@account}, owner {@owner}",
    "disable_required_memo_transfers": "stop requiring memos on transfers into token account {@account}, owner {@owner}",
    "initialize_interest_bearing_mint": "make new mint {@mint} interest-bearing at {rate} basis points, rate authority {rate_authority}",
    "update_interest_rate": "set the interest rate of mint {@mint} to {rate} basis points, authorised by {@rate_authority}",
    "enable_cpi_guard": "enable the CPI guard of token account {@account}, owner {@owner}",
    "disable_cpi_guard": "disable the CPI guard of token account {@account}, owner {@owner}",
    "initialize_transfer_hook": "make new mint {@mint} call transfer hook program {program_id}, hook authority {authority}",
    "update_transfer_hook": "make mint {@mint} call transfer hook program {program_id}, authorised by {@authority}",
    "initialize_metadata_pointer": "point new mint {@mint} at metadata {metadata_address}, pointer authority {authority}",
    "update_metadata_pointer": "point mint {@mint} at metadata {metadata_address}, authorised by {@authority}",
    "initialize_group_pointer": "point new mint {@mint} at group {group_address}, pointer authority {authority}",
    "update_group_pointer": "point mint {@mint} at group {group_address}, authorised by {@authority}",
    "initialize_group_member_pointer": "point new mint {@mint} at group member {member_address}, pointer authority {authority}",
    "update_group_member_pointer": "point mint {@mint} at group member {member_address}, authorised by {@authority}",
    "initialize_scaled_ui_amount": "scale UI amounts of new mint {@mint} by {multiplier}, authority {authority}",
    "update_multiplier": "scale UI amounts of mint {@mint} by {multiplier} from unix time {effective_timestamp}, authorised by {@authority}",
    "initialize_pausable": "make new mint {@mint} pausable by {authority}",
    "pause": "pause mint {@mint}, authorised by {@authority}",
    "resume": "resume mint {@mint}, authorised by {@authority}",
    "initialize_permissioned_burn": "require {authority} to approve every burn of new mint {@mint}",
    "permissioned_burn": "burn {amount:units} from token account {@account} (mint {@mint}), authorised by {@authority} and {@permissioned_burn_authority}",
    "permissioned_burn_checked": "burn {amount:units} ({decimals} decimals) from token account {@account} (mint {@mint}), authorised by {@authority} and {@permissioned_burn_authority}",
    "confidential_transfer_deposit": "move {amount:units} ({decimals} decimals) of token account {@account} into its confidential balance",
    "confidential_transfer_withdraw": "move {amount:units} ({decimals} decimals) of token account {@account} out of its confidential balance",
    "token_metadata_initialize": "initialize metadata {@metadata} of mint {@mint}: name {name!r}, symbol {symbol!r}, uri {uri!r}",
    "token_metadata_update_field": "set metadata field {field!r} of {@metadata} to {value!r}, authorised by {@update_authority}",
    "token_metadata_remove_key": "remove metadata key {key!r} from {@metadata}, authorised by {@update_authority}",
    "token_metadata_update_authority": "set the update authority of metadata {@metadata} to {new_authority}, authorised by {@update_authority}",
    "token_metadata_emit": "emit metadata {@metadata}",
    "token_group_initialize_group": "initialize group {@group} of mint {@mint} (at most {max_size} members), update authority {update_authority}",
    "token_group_update_group_max_size": "set the size limit of group {@group} to {max_size}, authorised by {@update_authority}",
    "token_group_update_group_authority": "set the update authority of group {@group} to {new_authority}, authorised by {@update_authority}",
    "token_group_initialize_member": "add member {@member} (mint {@member_mint}) to group {@group}",
}
_ATA_SENTENCES = {
    "create": "create associated token account {@associated_account} of {@wallet} for mint {@mint}, paid by {@funder}",
    "create_idempotent": "create (if missing) associated token account {@associated_account} of {@wallet} for mint {@mint}, paid by {@funder}",
    "recover_nested": "recover nested token account {@nested_account} into {@destination}, for wallet {@wallet}",
}


def _value(name: str, value: object, quote: Callable[[str], str]) -> str:
    if name.endswith("!r"):
        return quote(str(value))
    if value is None:
        return "none"
    if isinstance(value, bytes):
        return encode_pubkey(value)
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "none"
    if name == "authority_type":
        return str(value).replace("_", " ")
    return str(value)


def describe_token(
    program: str,
    kind: str,
    fields: Mapping[str, object],
    lists: Mapping[str, tuple[int, ...]],
    who: Callable[[str], str],
    quote: Callable[[str], str],
) -> str:
    """One sentence for a decoded token or ATA instruction."""
    template = (_ATA_SENTENCES if program == "associated_token" else _SENTENCES).get(kind)
    if template is None:  # confidential instructions: named, their ciphertexts and proofs not shown
        return f"Token-2022 {kind.replace('_', ' ')} (confidential; amounts not shown)"
    out = []
    for i, piece in enumerate(template.replace("}", "{").split("{")):  # odd pieces are placeholders
        if i % 2 == 0:
            out.append(piece)
        elif piece.startswith("@"):
            out.append(who(piece[1:]))
        elif piece.startswith("#"):
            out.append(str(len(lists.get(piece[1:], ()))))
        else:
            name, _, unit = piece.partition(":")
            value = fields[name.removesuffix("!r")]
            if unit == "units":
                out.append(f"{value} base units")
            elif unit == "lamports":
                out.append("all lamports" if value is None else f"{value} lamports")
            else:
                out.append(_value(name, value, quote))
    sentence = "".join(out)
    signers = lists.get("multisig_signers")
    if signers:
        sentence += f" (multisig, {len(signers)} signer{'s' if len(signers) != 1 else ''})"
    return sentence
