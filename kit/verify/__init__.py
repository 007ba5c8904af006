"""Verification reads deliverables and returns Evidence. It never writes deliverables."""
