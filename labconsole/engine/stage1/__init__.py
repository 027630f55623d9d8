"""Stage I: locate the neurons that memorize minority groups (ranking, interventions, readouts, tracing)."""
