"""The MSP's logo: only a real PNG or JPEG, bounded in bytes and pixels, is kept.

The image is decoded in full when it is uploaded, so a truncated or disguised file is
refused then, not found broken when an invoice is printed.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image

from app.core.errors import PayloadTooLarge, Unprocessable

MAX_LOGO_BYTES = 512 * 1024
MAX_LOGO_SIDE = 4096  # pixels
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}
WHERE = ("body", "file")


@dataclass(frozen=True, slots=True)
class CheckedLogo:
    content_type: str
    data: bytes
    width: int
    height: int
    sha256: str


def check_logo(data: bytes) -> CheckedLogo:
    if not data:
        raise Unprocessable("The file is empty.", loc=WHERE)
    if len(data) > MAX_LOGO_BYTES:
        raise PayloadTooLarge(f"A logo may be at most {MAX_LOGO_BYTES // 1024} KiB.")
    try:
        # `formats` keeps Pillow from trying every decoder it has on what was sent.
        with Image.open(io.BytesIO(data), formats=list(CONTENT_TYPES)) as image:
            width, height = image.size
            if width > MAX_LOGO_SIDE or height > MAX_LOGO_SIDE:
                raise Unprocessable(
                    f"A logo may be at most {MAX_LOGO_SIDE} x {MAX_LOGO_SIDE} pixels; "
                    f"this one is {width} x {height}.",
                    loc=WHERE,
                )
            image.load()
            kind = str(image.format)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise Unprocessable("The file is not a readable PNG or JPEG image.", loc=WHERE) from exc
    return CheckedLogo(
        content_type=CONTENT_TYPES[kind],
        data=data,
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
    )
