"""A synthetic, learnable image dataset: one coloured shape at one of four positions on black.

Caption: ``a {colour} {shape} on the {position}``; VQA questions ask the colour, the shape or the
position. 6 colours x 3 shapes x 4 positions = 72 combinations, random sizes and offsets, so a
tiny model must read the image to answer and fresh test images are never exact copies.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

COLOURS = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 220, 40),
    "white": (240, 240, 240),
    "purple": (150, 60, 200),
}
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("left", "right", "top", "bottom")
CAPTION_PROMPT = "Describe the image."
QUESTIONS = {
    "colour": "What colour is the shape?",
    "shape": "What shape is it?",
    "position": "Where is the shape?",
}
SIZE = 64


@dataclass(frozen=True)
class Shape:
    colour: str
    shape: str
    position: str

    @property
    def caption(self) -> str:
        return f"a {self.colour} {self.shape} on the {self.position}"

    def answer(self, kind: str) -> str:
        return {"colour": self.colour, "shape": self.shape, "position": self.position}[kind]


def random_shape(rng: random.Random) -> Shape:
    return Shape(rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.choice(POSITIONS))


def draw(shape: Shape, rng: random.Random) -> Image.Image:
    """A ``SIZE`` x ``SIZE`` RGB image of ``shape`` in its half of the canvas, jittered."""
    im = Image.new("RGB", (SIZE, SIZE), (0, 0, 0))
    r = rng.randint(SIZE // 8, SIZE // 5)
    half, q = SIZE // 2, SIZE // 4
    cx, cy = {
        "left": (q, half),
        "right": (SIZE - q, half),
        "top": (half, q),
        "bottom": (half, SIZE - q),
    }[shape.position]
    cx += rng.randint(-2, 2)
    cy += rng.randint(-2, 2)
    box = (cx - r, cy - r, cx + r, cy + r)
    fill = COLOURS[shape.colour]
    d = ImageDraw.Draw(im)
    if shape.shape == "circle":
        d.ellipse(box, fill=fill)
    elif shape.shape == "square":
        d.rectangle(box, fill=fill)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    return im


def corpus() -> list[str]:
    """Every text the demo data can contain (trains the tiny tokenizers)."""
    lines = [CAPTION_PROMPT, *QUESTIONS.values(), "caption en"]
    for c in COLOURS:
        for s in SHAPES:
            for p in POSITIONS:
                lines.append(Shape(c, s, p).caption)
    lines += list(COLOURS) + list(SHAPES) + list(POSITIONS)
    return lines * 20
