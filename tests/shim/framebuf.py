"""CPython stand-in for MicroPython's built-in `framebuf` module (tests only).

Implements exactly what the firmware's display code uses, for the MONO_VLSB format (the SSD1306
layout: one byte per column of an 8-pixel page, least significant bit at the top): FrameBuffer with
fill, pixel, fill_rect, rect, hline, vline, text and blit. The arithmetic, the clipping and the
font follow MicroPython's extmod/modframebuf.c, so a drawing made here is byte-identical to the
same drawing in the MicroPython VM (tests/dual/test_display.py compares the raw buffers).

The 8x8 font is MicroPython's font_petme128_8x8 (extmod/font_petme128_8x8.h, MIT licence,
Copyright (c) 2013, 2014 Damien P. George): characters 32..127, 8 bytes each, one byte per column,
LSB at the top. Bytes outside 32..127 (including every byte of a UTF-8 multi-byte character)
draw glyph 127, and a NUL ends the string, as in MicroPython.
"""

MONO_VLSB = 0
MVLSB = 0
RGB565 = 1
GS4_HMSB = 2
MONO_HLSB = 3
MONO_HMSB = 4
GS2_HMSB = 5
GS8 = 6

FONT_PETME128_8X8 = (
    b"\x00\x00\x00\x00\x00\x00\x00\x00"  # ' '
    b"\x00\x00\x00\x4f\x4f\x00\x00\x00"  # '!'
    b"\x00\x07\x07\x00\x00\x07\x07\x00"  # '"'
    b"\x14\x7f\x7f\x14\x14\x7f\x7f\x14"  # '#'
    b"\x00\x24\x2e\x6b\x6b\x3a\x12\x00"  # '$'
    b"\x00\x63\x33\x18\x0c\x66\x63\x00"  # '%'
    b"\x00\x32\x7f\x4d\x4d\x77\x72\x50"  # '&'
    b"\x00\x00\x00\x04\x06\x03\x01\x00"  # "'"
    b"\x00\x00\x1c\x3e\x63\x41\x00\x00"  # '('
    b"\x00\x00\x41\x63\x3e\x1c\x00\x00"  # ')'
    b"\x08\x2a\x3e\x1c\x1c\x3e\x2a\x08"  # '*'
    b"\x00\x08\x08\x3e\x3e\x08\x08\x00"  # '+'
    b"\x00\x00\x80\xe0\x60\x00\x00\x00"  # ','
    b"\x00\x08\x08\x08\x08\x08\x08\x00"  # '-'
    b"\x00\x00\x00\x60\x60\x00\x00\x00"  # '.'
    b"\x00\x40\x60\x30\x18\x0c\x06\x02"  # '/'
    b"\x00\x3e\x7f\x49\x45\x7f\x3e\x00"  # '0'
    b"\x00\x40\x44\x7f\x7f\x40\x40\x00"  # '1'
    b"\x00\x62\x73\x51\x49\x4f\x46\x00"  # '2'
    b"\x00\x22\x63\x49\x49\x7f\x36\x00"  # '3'
    b"\x00\x18\x18\x14\x16\x7f\x7f\x10"  # '4'
    b"\x00\x27\x67\x45\x45\x7d\x39\x00"  # '5'
    b"\x00\x3e\x7f\x49\x49\x7b\x32\x00"  # '6'
    b"\x00\x03\x03\x79\x7d\x07\x03\x00"  # '7'
    b"\x00\x36\x7f\x49\x49\x7f\x36\x00"  # '8'
    b"\x00\x26\x6f\x49\x49\x7f\x3e\x00"  # '9'
    b"\x00\x00\x00\x24\x24\x00\x00\x00"  # ':'
    b"\x00\x00\x80\xe4\x64\x00\x00\x00"  # ';'
    b"\x00\x08\x1c\x36\x63\x41\x41\x00"  # '<'
    b"\x00\x14\x14\x14\x14\x14\x14\x00"  # '='
    b"\x00\x41\x41\x63\x36\x1c\x08\x00"  # '>'
    b"\x00\x02\x03\x51\x59\x0f\x06\x00"  # '?'
    b"\x00\x3e\x7f\x41\x4d\x4f\x2e\x00"  # '@'
    b"\x00\x7c\x7e\x0b\x0b\x7e\x7c\x00"  # 'A'
    b"\x00\x7f\x7f\x49\x49\x7f\x36\x00"  # 'B'
    b"\x00\x3e\x7f\x41\x41\x63\x22\x00"  # 'C'
    b"\x00\x7f\x7f\x41\x63\x3e\x1c\x00"  # 'D'
    b"\x00\x7f\x7f\x49\x49\x41\x41\x00"  # 'E'
    b"\x00\x7f\x7f\x09\x09\x01\x01\x00"  # 'F'
    b"\x00\x3e\x7f\x41\x49\x7b\x3a\x00"  # 'G'
    b"\x00\x7f\x7f\x08\x08\x7f\x7f\x00"  # 'H'
    b"\x00\x00\x41\x7f\x7f\x41\x00\x00"  # 'I'
    b"\x00\x20\x60\x41\x7f\x3f\x01\x00"  # 'J'
    b"\x00\x7f\x7f\x1c\x36\x63\x41\x00"  # 'K'
    b"\x00\x7f\x7f\x40\x40\x40\x40\x00"  # 'L'
    b"\x00\x7f\x7f\x06\x0c\x06\x7f\x7f"  # 'M'
    b"\x00\x7f\x7f\x0e\x1c\x7f\x7f\x00"  # 'N'
    b"\x00\x3e\x7f\x41\x41\x7f\x3e\x00"  # 'O'
    b"\x00\x7f\x7f\x09\x09\x0f\x06\x00"  # 'P'
    b"\x00\x1e\x3f\x21\x61\x7f\x5e\x00"  # 'Q'
    b"\x00\x7f\x7f\x19\x39\x6f\x46\x00"  # 'R'
    b"\x00\x26\x6f\x49\x49\x7b\x32\x00"  # 'S'
    b"\x00\x01\x01\x7f\x7f\x01\x01\x00"  # 'T'
    b"\x00\x3f\x7f\x40\x40\x7f\x3f\x00"  # 'U'
    b"\x00\x1f\x3f\x60\x60\x3f\x1f\x00"  # 'V'
    b"\x00\x7f\x7f\x30\x18\x30\x7f\x7f"  # 'W'
    b"\x00\x63\x77\x1c\x1c\x77\x63\x00"  # 'X'
    b"\x00\x07\x0f\x78\x78\x0f\x07\x00"  # 'Y'
    b"\x00\x61\x71\x59\x4d\x47\x43\x00"  # 'Z'
    b"\x00\x00\x7f\x7f\x41\x41\x00\x00"  # '['
    b"\x00\x02\x06\x0c\x18\x30\x60\x40"  # '\\'
    b"\x00\x00\x41\x41\x7f\x7f\x00\x00"  # ']'
    b"\x00\x08\x0c\x06\x06\x0c\x08\x00"  # '^'
    b"\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0"  # '_'
    b"\x00\x00\x01\x03\x06\x04\x00\x00"  # '`'
    b"\x00\x20\x74\x54\x54\x7c\x78\x00"  # 'a'
    b"\x00\x7f\x7f\x44\x44\x7c\x38\x00"  # 'b'
    b"\x00\x38\x7c\x44\x44\x6c\x28\x00"  # 'c'
    b"\x00\x38\x7c\x44\x44\x7f\x7f\x00"  # 'd'
    b"\x00\x38\x7c\x54\x54\x5c\x58\x00"  # 'e'
    b"\x00\x08\x7e\x7f\x09\x03\x02\x00"  # 'f'
    b"\x00\x98\xbc\xa4\xa4\xfc\x7c\x00"  # 'g'
    b"\x00\x7f\x7f\x04\x04\x7c\x78\x00"  # 'h'
    b"\x00\x00\x00\x7d\x7d\x00\x00\x00"  # 'i'
    b"\x00\x40\xc0\x80\x80\xfd\x7d\x00"  # 'j'
    b"\x00\x7f\x7f\x30\x38\x6c\x44\x00"  # 'k'
    b"\x00\x00\x41\x7f\x7f\x40\x00\x00"  # 'l'
    b"\x00\x7c\x7c\x18\x30\x18\x7c\x7c"  # 'm'
    b"\x00\x7c\x7c\x04\x04\x7c\x78\x00"  # 'n'
    b"\x00\x38\x7c\x44\x44\x7c\x38\x00"  # 'o'
    b"\x00\xfc\xfc\x24\x24\x3c\x18\x00"  # 'p'
    b"\x00\x18\x3c\x24\x24\xfc\xfc\x00"  # 'q'
    b"\x00\x7c\x7c\x04\x04\x0c\x08\x00"  # 'r'
    b"\x00\x48\x5c\x54\x54\x74\x20\x00"  # 's'
    b"\x04\x04\x3f\x7f\x44\x64\x20\x00"  # 't'
    b"\x00\x3c\x7c\x40\x40\x7c\x3c\x00"  # 'u'
    b"\x00\x1c\x3c\x60\x60\x3c\x1c\x00"  # 'v'
    b"\x00\x1c\x7c\x30\x18\x30\x7c\x1c"  # 'w'
    b"\x00\x44\x6c\x38\x38\x6c\x44\x00"  # 'x'
    b"\x00\x9c\xbc\xa0\xa0\xfc\x7c\x00"  # 'y'
    b"\x00\x44\x64\x74\x5c\x4c\x44\x00"  # 'z'
    b"\x00\x08\x08\x3e\x77\x41\x41\x00"  # '{'
    b"\x00\x00\x00\xff\xff\x00\x00\x00"  # '|'
    b"\x00\x41\x41\x77\x3e\x08\x08\x00"  # '}'
    b"\x00\x02\x03\x01\x03\x02\x03\x01"  # '~'
    b"\xaa\x55\xaa\x55\xaa\x55\xaa\x55"  # 127 (also drawn for any byte outside 32..127)
)
assert len(FONT_PETME128_8X8) == 96 * 8


class FrameBuffer:
    def __init__(self, buf, width, height, format, stride=None):
        if format != MONO_VLSB:
            raise ValueError("this stand-in implements MONO_VLSB only")
        if stride is None:
            stride = width
        if width < 1 or height < 1 or stride < width:
            raise ValueError("invalid dimensions")
        self._buf = memoryview(buf).cast("B")
        if len(self._buf) < ((height + 7) >> 3) * stride:
            raise ValueError("buffer too small")
        self._w = width
        self._h = height
        self._stride = stride

    # -- the format's primitives (modframebuf.c: mvlsb_setpixel / getpixel / fill_rect)
    def _set(self, x, y, col):
        i = (y >> 3) * self._stride + x
        o = y & 7
        self._buf[i] = (self._buf[i] & ~(1 << o) & 0xFF) | ((1 if col != 0 else 0) << o)

    def _get(self, x, y):
        return (self._buf[(y >> 3) * self._stride + x] >> (y & 7)) & 1

    def _fill_rect(self, x, y, w, h, col):
        # already clipped
        b = self._buf
        bit = 1 if col != 0 else 0
        for yy in range(y, y + h):
            row = (yy >> 3) * self._stride
            o = yy & 7
            keep = ~(1 << o) & 0xFF
            v = bit << o
            for i in range(row + x, row + x + w):
                b[i] = (b[i] & keep) | v

    # -- the methods
    def fill(self, col):
        self._fill_rect(0, 0, self._w, self._h, col)

    def pixel(self, x, y, col=None):
        if 0 <= x < self._w and 0 <= y < self._h:
            if col is None:
                return self._get(x, y)
            self._set(x, y, col)
        return None

    def fill_rect(self, x, y, w, h, col):
        if h < 1 or w < 1 or x + w <= 0 or y + h <= 0 or y >= self._h or x >= self._w:
            return
        xend = min(self._w, x + w)
        yend = min(self._h, y + h)
        x = max(x, 0)
        y = max(y, 0)
        self._fill_rect(x, y, xend - x, yend - y, col)

    def hline(self, x, y, w, col):
        self.fill_rect(x, y, w, 1, col)

    def vline(self, x, y, h, col):
        self.fill_rect(x, y, 1, h, col)

    def rect(self, x, y, w, h, col, fill=False):
        if fill:
            self.fill_rect(x, y, w, h, col)
        else:
            self.fill_rect(x, y, w, 1, col)
            self.fill_rect(x, y + h - 1, w, 1, col)
            self.fill_rect(x, y, 1, h, col)
            self.fill_rect(x + w - 1, y, 1, h, col)

    def text(self, s, x0, y0, col=1):
        for ch in str(s).encode("utf-8"):
            if ch == 0:
                break               # C string: drawing stops at a NUL
            if ch < 32 or ch > 127:
                ch = 127
            base = (ch - 32) * 8
            for j in range(8):
                if 0 <= x0 < self._w:
                    line = FONT_PETME128_8X8[base + j]
                    y = y0
                    while line:
                        if line & 1 and 0 <= y < self._h:
                            self._set(x0, y, col)
                        line >>= 1
                        y += 1
                x0 += 1

    def blit(self, fbuf, x, y, key=-1, palette=None):
        if not isinstance(fbuf, FrameBuffer):
            raise TypeError("this stand-in blits FrameBuffer sources only")
        if palette is not None and not isinstance(palette, FrameBuffer):
            raise TypeError("palette must be a FrameBuffer")
        if x >= self._w or y >= self._h or -x >= fbuf._w or -y >= fbuf._h:
            return
        x0 = max(0, x)
        y0 = max(0, y)
        x1 = max(0, -x)
        y1 = max(0, -y)
        x0end = min(self._w, x + fbuf._w)
        y0end = min(self._h, y + fbuf._h)
        while y0 < y0end:
            cx1 = x1
            for cx0 in range(x0, x0end):
                col = fbuf._get(cx1, y1)
                if palette is not None:
                    col = palette._get(col, 0)
                if col != (key & 0xFFFFFFFF):
                    self._set(cx0, y0, col)
                cx1 += 1
            y1 += 1
            y0 += 1


FrameBuffer1 = FrameBuffer
