"""Passgate core: pure WebAuthn ceremonies (no web, storage, asyncio or clock)."""
