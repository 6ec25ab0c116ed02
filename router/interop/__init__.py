"""Cross-platform payment pages: one code any wallet can scan, pay-for-me links."""
