"""The `evaluate` module folder cider (package marker so a wheel ships it)."""
