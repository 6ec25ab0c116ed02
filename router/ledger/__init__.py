"""The journal: every movement of money, per merchant, in a hash chain.

    entries.py   what an entry holds, its canonical form and its hash
    chainer.py   the worker that chains inbox entries into their merchants' chains
    verify.py    recompute a chain and name the first entry that does not verify
    reconcile.py compare a rail's bill of a day with the journal
"""
