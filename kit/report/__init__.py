"""Reports are views of evidence: nothing here is claimed without a record behind it."""
