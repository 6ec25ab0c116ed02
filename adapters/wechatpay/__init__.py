"""The WeChat Pay rail: API v3 over RSA-signed JSON with AES-GCM notifications (see README.md)."""
