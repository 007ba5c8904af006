"""Detection: what the source shows. The task overrides anything detected."""
