"""Promotions: merchant points and the policies (whitelists, quotas) on actions."""
