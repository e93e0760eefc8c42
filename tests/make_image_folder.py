"""Writes a tiny image folder (ImageFolder layout) of PNG files for the CLI
tests: DIR/{train,val}/<class>/<n>.png, classes told apart by colour and
stripe direction, sizes varied so that the loader's resize and crop work.
Pure Python (zlib + struct): no imaging library needed.

usage: make_image_folder.py DIR [--per-class N] [--corrupt]"""
import os
import struct
import sys
import zlib


def png_bytes(width, height, pixel):
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


CLASSES = {
    "ant": lambda x, y, k: (200, 40 + (x * 7 + k) % 60, 30) if (x // 3) % 2 else (120, 20, 20),
    "bee": lambda x, y, k: (30, 200, 40 + (y * 5 + k) % 60) if (y // 3) % 2 else (20, 110, 20),
    "cow": lambda x, y, k: (40, 30 + (x + y + k) % 50, 210) if ((x + y) // 3) % 2 else (20, 20, 120),
}


def main():
    root = sys.argv[1]
    per_class = int(sys.argv[sys.argv.index("--per-class") + 1]) if "--per-class" in sys.argv else 12
    for split, count in (("train", per_class), ("val", max(2, per_class // 3))):
        for name, colour in CLASSES.items():
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for k in range(count):
                width, height = 20 + (k * 7) % 13, 17 + (k * 5) % 11
                with open(os.path.join(folder, f"{k:03d}.png"), "wb") as f:
                    f.write(png_bytes(width, height, lambda x, y: colour(x, y, k)))
    if "--corrupt" in sys.argv:
        with open(os.path.join(root, "train", "bee", "zz-broken.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)


if __name__ == "__main__":
    main()
