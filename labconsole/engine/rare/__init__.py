"""Paper B: rare spurious correlations — patterns, spurious score, membership inference,
mitigations, data deletion and the linear-regression theory (SPEC §6)."""
