"""Shared test fixtures (the thread setting lives in the root conftest.py)."""
