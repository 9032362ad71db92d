"""Enrichment of silver transactions: rates at the invoice date, country facts and product categories."""
