"""Talking to the chain: the CLI's and the library's business, never the signer's (invariant 9).

- ``rpc``: a strict JSON-RPC client (``RpcClient``) for the methods jarvis-wallet calls.
- ``balances``: the wallet's registered token balances (its associated accounts).
- ``blockhashes``: fetched blockhashes and their last valid block height.
- ``settle``: the rule for what a proven outcome gives back to the daily window, recorded
  under the wallet's lock.
- ``sync``: ``tx sync`` in bounded batches, and waiting for one transaction.
- ``send``: sign through the signer, submit, wait.
"""
