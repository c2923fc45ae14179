"""The `evaluate` module folder vqa_accuracy (package marker so a wheel ships it)."""
