"""The `evaluate` module folder caption_text (package marker so a wheel ships it)."""
