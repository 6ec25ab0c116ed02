"""The bank rail: UnionPay-style acquiring over signed JSON (see README.md)."""
