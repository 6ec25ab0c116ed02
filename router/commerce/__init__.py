"""Merchant services, each a domain in the payments' shape: service providers and their
sub-merchants, profit sharing (splits), pre-authorisations (holds, deposit-free credit,
capture)."""
