"""The `evaluate` module folder exact_match (package marker so a wheel ships it)."""
