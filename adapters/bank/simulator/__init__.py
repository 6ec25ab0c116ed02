"""Simulator of the bank rail: speaks the real signed protocol, keeps a ledger, breaks on demand.

`records` (orders and refunds), `checks` (request bodies), `ledger` (the state machine and
the one place money is taken), `runtime` (signing, notifications, faults) and `app` (routes).
"""
