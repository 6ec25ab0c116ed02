"""Simulator of the bank rail: speaks the real signed protocol, keeps a ledger, breaks on demand.

`records` (orders and refunds), `checks` (request bodies), `ledger` (the state machine and
the one place money is taken), `transfers` (payouts), `bills` (the daily bill), `runtime`
(signing, notifications, faults) and `app` (routes).
"""
