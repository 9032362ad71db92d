"""Images as Markdown: a PNG or SVG embedded as a base64 data URI."""

from __future__ import annotations

import base64
from typing import Literal

ImageType = Literal["image/png", "image/svg+xml"]


def data_uri(data: bytes, media_type: ImageType) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def markdown_image(alt: str, data: bytes, media_type: ImageType) -> str:
    """`![alt](data:...)`; brackets in the alt text would end it early, so they are left out."""
    plain_alt = alt.replace("[", "").replace("]", "").replace("\n", " ")
    return f"![{plain_alt}]({data_uri(data, media_type)})"
