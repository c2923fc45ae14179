"""ray_vlm: fine-tune, serve and score vision-language models on Ray."""
