"""Reverse sync: governed corrections and invoice status back to the CRM (see README.md)."""
