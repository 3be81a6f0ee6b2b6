"""The controller's 128x64 display as PNG images, from the raw framebuffer bytes (MONO_VLSB, the
SSD1306 layout: byte x + 128 * page holds the column x of rows 8*page .. 8*page + 7, least
significant bit at the top). White on black like the OLED, each pixel scaled to a square."""
import os
import re

WIDTH = 128
HEIGHT = 64


def pixels(fb, width=WIDTH, height=HEIGHT):
    """Rows of 0/1 from MONO_VLSB framebuffer bytes."""
    fb = bytes(fb)
    pages = (height + 7) // 8
    if len(fb) < pages * width:
        raise ValueError("framebuffer has %d bytes, a %dx%d screen needs %d" % (len(fb), width, height,
                                                                                 pages * width))
    return [[(fb[(y >> 3) * width + x] >> (y & 7)) & 1 for x in range(width)] for y in range(height)]


def to_image(fb, scale=4, width=WIDTH, height=HEIGHT, on=255, off=0):
    """A Pillow greyscale image of the framebuffer, `scale` screen pixels per framebuffer pixel."""
    from PIL import Image
    if scale < 1:
        raise ValueError("scale must be >= 1")
    rows = pixels(fb, width, height)
    img = Image.new("L", (width, height), off)
    img.putdata([on if v else off for row in rows for v in row])
    if scale != 1:
        img = img.resize((width * scale, height * scale), Image.NEAREST)
    return img


def save_png(fb, path, scale=4):
    to_image(fb, scale).save(path, format="PNG")
    return path


def _safe(name):
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return s or "screen"


def save_screens(shots, out_dir, scale=4):
    """Write one PNG per {"name", "fb_hex"} shot (as in `ovenctl sim` results); returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for shot in shots:
        p = os.path.join(out_dir, _safe(shot["name"]) + ".png")
        save_png(bytes.fromhex(shot["fb_hex"]), p, scale)
        paths.append(p)
    return paths
