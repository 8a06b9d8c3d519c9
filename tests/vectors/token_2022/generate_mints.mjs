// Token-2022 mint accounts encoded by the program maintainers' own client,
// @solana-program/token-2022 (Codama-generated from the program's IDL), for
// tests/test_solana_mint_account.py. Each vector is encoded with getMintEncoder, decoded back
// with getMintDecoder, and the decoded values are written in jarvis-wallet's field names.
//
// Run (needs node and network for npm, once; the output is committed):
//   cd "$(mktemp -d)" && npm install @solana-program/token-2022@0.15.0 @solana/kit@5 \
//     && node /path/to/tests/vectors/token_2022/generate_mints.mjs > /path/to/tests/vectors/token_2022/mints.json
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const t22 = require('@solana-program/token-2022');
const kit = require('@solana/kit');

const key = (byte) => kit.getAddressDecoder().decode(new Uint8Array(32).fill(byte));
const bytes = (n, byte) => new Uint8Array(n).fill(byte);
const ZERO = key(0);
const [A, B, C, D] = [key(1), key(2), key(3), key(4)];
const none = null;

const base = {
  mintAuthority: A, supply: 1_000_000_000n, decimals: 6, isInitialized: true, freezeAuthority: B,
};

const ext = (kind, data = {}) => ({ __kind: kind, ...data });
const fee = (epoch, maximumFee, transferFeeBasisPoints) => ({ epoch, maximumFee, transferFeeBasisPoints });

const vectors = [
  ['no_extensions_list', { ...base, extensions: [] }],
  ['transfer_fee_config', { ...base, extensions: [ext('TransferFeeConfig', {
    transferFeeConfigAuthority: C, withdrawWithheldAuthority: ZERO, withheldAmount: 77n,
    olderTransferFee: fee(10n, 5000n, 25), newerTransferFee: fee(12n, 18446744073709551615n, 10000) })] }],
  ['mint_close_authority', { ...base, extensions: [ext('MintCloseAuthority', { closeAuthority: C })] }],
  ['confidential_transfer_mint', { ...base, extensions: [ext('ConfidentialTransferMint', {
    authority: C, autoApproveNewAccounts: true, auditorElgamalPubkey: D })] }],
  ['default_account_state_frozen', { ...base, extensions: [ext('DefaultAccountState', { state: t22.AccountState.Frozen })] }],
  ['default_account_state_initialized', { ...base, extensions: [ext('DefaultAccountState', { state: t22.AccountState.Initialized })] }],
  ['non_transferable', { ...base, extensions: [ext('NonTransferable')] }],
  ['interest_bearing_config', { ...base, extensions: [ext('InterestBearingConfig', {
    rateAuthority: C, initializationTimestamp: 1700000000n, preUpdateAverageRate: -5,
    lastUpdateTimestamp: 1700000100n, currentRate: 250 })] }],
  ['permanent_delegate', { ...base, extensions: [ext('PermanentDelegate', { delegate: C })] }],
  ['transfer_hook', { ...base, extensions: [ext('TransferHook', { authority: C, programId: D })] }],
  ['confidential_transfer_fee', { ...base, extensions: [ext('ConfidentialTransferFee', {
    authority: C, elgamalPubkey: D, harvestToMintEnabled: true, withheldAmount: bytes(64, 9) })] }],
  ['metadata_pointer', { ...base, extensions: [ext('MetadataPointer', { authority: none, metadataAddress: D })] }],
  ['token_metadata', { ...base, extensions: [ext('TokenMetadata', {
    updateAuthority: C, mint: D, name: 'PayPal USD', symbol: 'PYUSD', uri: 'https://example.com/pyusd.json',
    additionalMetadata: new Map([['issuer', 'Paxos'], ['note', '\u2713']]) })] }],
  ['group_pointer', { ...base, extensions: [ext('GroupPointer', { authority: C, groupAddress: D })] }],
  ['token_group', { ...base, extensions: [ext('TokenGroup', { updateAuthority: C, mint: D, size: 3n, maxSize: 10n })] }],
  ['group_member_pointer', { ...base, extensions: [ext('GroupMemberPointer', { authority: C, memberAddress: D })] }],
  ['token_group_member', { ...base, extensions: [ext('TokenGroupMember', { mint: D, group: C, memberNumber: 7n })] }],
  ['confidential_mint_burn', { ...base, extensions: [ext('ConfidentialMintBurn', {
    confidentialSupply: bytes(64, 5), decryptableSupply: bytes(36, 6), supplyElgamalPubkey: D, pendingBurn: bytes(64, 7) })] }],
  ['scaled_ui_amount', { ...base, extensions: [ext('ScaledUiAmountConfig', {
    authority: C, multiplier: 1.5, newMultiplierEffectiveTimestamp: 1800000000n, newMultiplier: 2 })] }],
  ['pausable_paused', { ...base, extensions: [ext('PausableConfig', { authority: C, paused: true })] }],
  ['permissioned_burn', { ...base, extensions: [ext('PermissionedBurn', { authority: C })] }],
  ['pyusd_like', { ...base, mintAuthority: A, freezeAuthority: B, extensions: [
    ext('MintCloseAuthority', { closeAuthority: C }),
    ext('PermanentDelegate', { delegate: C }),
    ext('TransferHook', { authority: C, programId: ZERO }),
    ext('ConfidentialTransferMint', { authority: C, autoApproveNewAccounts: false, auditorElgamalPubkey: none }),
    ext('TransferFeeConfig', { transferFeeConfigAuthority: C, withdrawWithheldAuthority: C, withheldAmount: 0n,
      olderTransferFee: fee(0n, 0n, 0), newerTransferFee: fee(0n, 0n, 0) }),
    ext('MetadataPointer', { authority: C, metadataAddress: D }),
    ext('TokenMetadata', { updateAuthority: C, mint: D, name: 'PayPal USD', symbol: 'PYUSD', uri: 'https://x',
      additionalMetadata: new Map() }),
  ] }],
];

// The decoder's view in jarvis-wallet's names (fields it shows; ciphertexts and ElGamal keys are not).
const opt = (value) => (value && value.__option !== undefined ? (value.__option === 'Some' ? value.value : null) : value);
const addr = (value) => { const v = opt(value); return v === ZERO || v === null ? null : v; };
const num = (v) => (typeof v === 'bigint' ? Number(v) <= Number.MAX_SAFE_INTEGER ? Number(v) : v.toString() : v);
const snake = {
  TransferFeeConfig: ['transfer_fee_config', (e) => ({
    transfer_fee_config_authority: addr(e.transferFeeConfigAuthority), withdraw_withheld_authority: addr(e.withdrawWithheldAuthority),
    withheld_amount: num(e.withheldAmount),
    older_transfer_fee: { epoch: num(e.olderTransferFee.epoch), maximum_fee: num(e.olderTransferFee.maximumFee), transfer_fee_basis_points: e.olderTransferFee.transferFeeBasisPoints },
    newer_transfer_fee: { epoch: num(e.newerTransferFee.epoch), maximum_fee: num(e.newerTransferFee.maximumFee), transfer_fee_basis_points: e.newerTransferFee.transferFeeBasisPoints } })],
  MintCloseAuthority: ['mint_close_authority', (e) => ({ close_authority: addr(e.closeAuthority) })],
  ConfidentialTransferMint: ['confidential_transfer_mint', (e) => ({
    authority: addr(e.authority), auto_approve_new_accounts: e.autoApproveNewAccounts, has_auditor: addr(e.auditorElgamalPubkey) !== null })],
  DefaultAccountState: ['default_account_state', (e) => ({ state: ['uninitialized', 'initialized', 'frozen'][e.state] })],
  NonTransferable: ['non_transferable', () => ({})],
  InterestBearingConfig: ['interest_bearing_config', (e) => ({
    rate_authority: addr(e.rateAuthority), initialization_timestamp: num(e.initializationTimestamp),
    pre_update_average_rate: e.preUpdateAverageRate, last_update_timestamp: num(e.lastUpdateTimestamp), current_rate: e.currentRate })],
  PermanentDelegate: ['permanent_delegate', (e) => ({ delegate: addr(e.delegate) })],
  TransferHook: ['transfer_hook', (e) => ({ authority: addr(e.authority), program_id: addr(e.programId) })],
  ConfidentialTransferFee: ['confidential_transfer_fee_config', (e) => ({ authority: addr(e.authority), harvest_to_mint_enabled: e.harvestToMintEnabled })],
  MetadataPointer: ['metadata_pointer', (e) => ({ authority: addr(e.authority), metadata_address: addr(e.metadataAddress) })],
  TokenMetadata: ['token_metadata', (e) => ({
    update_authority: addr(e.updateAuthority), mint: e.mint, name: e.name, symbol: e.symbol, uri: e.uri,
    additional_metadata: [...e.additionalMetadata.entries()] })],
  GroupPointer: ['group_pointer', (e) => ({ authority: addr(e.authority), group_address: addr(e.groupAddress) })],
  TokenGroup: ['token_group', (e) => ({ update_authority: addr(e.updateAuthority), mint: e.mint, size: num(e.size), max_size: num(e.maxSize) })],
  GroupMemberPointer: ['group_member_pointer', (e) => ({ authority: addr(e.authority), member_address: addr(e.memberAddress) })],
  TokenGroupMember: ['token_group_member', (e) => ({ mint: e.mint, group: e.group, member_number: num(e.memberNumber) })],
  ConfidentialMintBurn: ['confidential_mint_burn', () => ({})],
  ScaledUiAmountConfig: ['scaled_ui_amount', (e) => ({
    authority: addr(e.authority), multiplier: e.multiplier, new_multiplier_effective_timestamp: num(e.newMultiplierEffectiveTimestamp), new_multiplier: e.newMultiplier })],
  PausableConfig: ['pausable', (e) => ({ authority: addr(e.authority), paused: e.paused })],
  PermissionedBurn: ['permissioned_burn', (e) => ({ authority: addr(e.authority) })],
};

const out = vectors.map(([name, args]) => {
  const data = t22.getMintEncoder().encode(args);
  const mint = t22.getMintDecoder().decode(data);
  const extensions = opt(mint.extensions) ?? [];
  return {
    name,
    data_hex: Buffer.from(data).toString('hex'),
    expected: {
      decimals: mint.decimals,
      supply: num(mint.supply),
      mint_authority: addr(mint.mintAuthority),
      freeze_authority: addr(mint.freezeAuthority),
      extensions: extensions.map((e) => { const [n, f] = snake[e.__kind]; return { name: n, fields: f(e) }; }),
    },
  };
});
process.stdout.write(JSON.stringify({
  source: '@solana-program/token-2022 0.15.0 getMintEncoder/getMintDecoder, via tests/vectors/token_2022/generate_mints.mjs',
  vectors: out,
}, null, 1) + '\n');
