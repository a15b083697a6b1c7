"""Insight algorithms: payee normalization, recurring payments, unusual transactions and the forecast (stdlib only)."""
