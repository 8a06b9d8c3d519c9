"""jarvis-wallet: let an agent spend from a Solana wallet without holding the key."""

__version__ = "0.1.0"
