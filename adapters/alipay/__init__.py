"""The Alipay rail: OpenAPI gateway protocol with RSA2 signatures (see README.md)."""
