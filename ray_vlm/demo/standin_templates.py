"""Chat templates of the family stand-ins, each of its real checkpoint's structure (role headers,
end-of-turn token, where images go), rendering incrementally: turns[:k] with the generation cue
is a prefix of turns[:k + 1], and an answer is followed by the family's end-of-turn token.
"""

from __future__ import annotations


def content(image: str, trim: bool = False) -> str:
    """Jinja: ``message``'s content in order, each image as ``image``, each text as it is (or
    ``| trim``-med, as Gemma 3's template does)."""
    text = "{{ item['text'] | trim }}" if trim else "{{ item['text'] }}"
    return (
        "{%- if message['content'] is string -%}{{ message['content'] }}"
        "{%- else -%}{%- for item in message['content'] -%}"
        "{%- if item['type'] == 'image' -%}{{ '" + image + "' }}"
        "{%- elif item['type'] == 'text' -%}" + text + "{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
    )


def chatml_template(image: str, system: str = "") -> str:
    """ChatML as Qwen-VL's and InternVL's templates render it: ``<|im_start|>{role}\\n``, the
    content in order (each image as ``image``), ``<|im_end|>\\n``; the generation cue is
    ``<|im_start|>assistant\\n``. ``system``: the default system turn when none is given."""
    default = (
        "{%- if messages[0]['role'] != 'system' -%}"
        "{{ '<|im_start|>system\\n" + system + "<|im_end|>\\n' }}{%- endif -%}"
    )
    return (
        (default if system else "") + "{%- for message in messages -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' }}" + content(image) + "{{ '<|im_end|>\\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


# llava-onevision-qwen2-0.5b-ov-hf: "<|im_start|>user " then every image, then "\n" + text,
# "<|im_end|>" with no newline; but an assistant turn opens exactly as the generation cue
# "<|im_start|>assistant\n" (the real one opens it "<|im_start|>assistant \n", so it does not
# render incrementally).
ONEVISION_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- for item in message['content'] if item['type'] == 'text' -%}{{ item['text'] }}"
    "{%- endfor -%}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{%- for item in message['content'] if item['type'] == 'image' -%}{{ '<image>' }}"
    "{%- endfor -%}"
    "{%- for item in message['content'] if item['type'] == 'text' -%}{{ '\\n' + item['text'] }}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# llava-v1.6-mistral-7b-hf: "[INST] " + every image as "<image>\n" + text + " [/INST]", the answer
# " " + text + "</s>" (the real template's "<\\s> " typo fixed); the tokenizer adds "<s>".
MISTRAL_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{ '[INST] ' }}"
    "{%- for item in message['content'] if item['type'] == 'image' -%}{{ '<image>\\n' }}"
    "{%- endfor -%}"
    "{%- for item in message['content'] if item['type'] == 'text' -%}{{ item['text'] }}"
    "{%- endfor -%}{{ ' [/INST]' }}"
    "{%- else -%}"
    "{%- for item in message['content'] if item['type'] == 'text' -%}{{ ' ' + item['text'] }}"
    "{%- endfor -%}{{ '</s>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

# Llama-3.2-11B-Vision-Instruct: BOS, a dated system turn only when no message has an image, each
# turn "<|start_header_id|>{role}<|end_header_id|>\n\n" content "<|eot_id|>".
MLLAMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set ns = namespace(images=false) -%}"
    "{%- for message in messages if message['content'] is not string -%}"
    "{%- for item in message['content'] if item['type'] == 'image' -%}"
    "{%- set ns.images = true -%}{%- endfor -%}{%- endfor -%}"
    "{%- if not ns.images -%}"
    "{{ '<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: December 2023\\n"
    "Today Date: 26 Jul 2024\\n\\n<|eot_id|>' }}{%- endif -%}"
    "{%- for message in messages -%}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    + content("<|image|>")
    + "{{ '<|eot_id|>' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif -%}"
)

# gemma-3-4b-it: BOS, "<start_of_turn>{user|model}\n" content (text trimmed) "<end_of_turn>\n";
# each image is its "<start_of_image>", which the processor expands.
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{%- for message in messages -%}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role'])"
    " + '\\n' }}" + content("<start_of_image>", trim=True) + "{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)

# SmolVLM-256M-Instruct: "<|im_start|>" once, then "{Role}:" (": " before text) content
# "<end_of_utterance>\n"; the generation cue is "Assistant:".
SMOLVLM_TEMPLATE = (
    "{{ '<|im_start|>' }}{%- for message in messages -%}"
    "{{ message['role'] | capitalize }}"
    "{%- if message['content'] is not string and message['content'][0]['type'] == 'image' -%}"
    "{{ ':' }}{%- else -%}{{ ': ' }}{%- endif -%}"
    + content("<image>")
    + "{{ '<end_of_utterance>\\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}"
)
