"""The `evaluate` module folder vqa_rad (package marker so a wheel ships it)."""
