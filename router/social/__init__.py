"""Social payments: a platform's users and their real-name status, payouts to wallets,
red packets and user-to-user transfers (API.md, "Users" to "Transfers").

    records.py        users and payouts as stored and shown; masking of real names
    packets.py        red packets and transfers (one share, one recipient) and grabs
    users.py          the real-name gate
    payouts.py        sending payouts and settling them from the rails' word
    payout_create.py  a payout from the API: payee, rail, real name, natural key
    red_packets.py    create, fund, grab, render
    expiry.py         a packet's worker: events, expiry, the refund to the sender

`wiring.Social` wires them for one gateway process (this package imports nothing, so
the store can import its records).
"""

