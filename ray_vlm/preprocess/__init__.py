"""Stage 2 of the flow: records -> model inputs, with the model's own processor."""

from ray_vlm.preprocess.prompt import chat_messages, prompt_style, question_turns, render_prompt

__all__ = ["chat_messages", "prompt_style", "question_turns", "render_prompt"]
