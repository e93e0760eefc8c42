"""Writes a tiny image folder (ImageFolder layout) of PNG files for the CLI
tests: DIR/{train,val}/<class>/<n>.png, classes told apart by colour and
stripe direction, sizes varied so that the loader's resize and crop work.
Pure Python (zlib + struct): no imaging library needed.

--corrupt adds DIR/train/bee/zz-broken.png, which is no image; --jpeg adds
DIR/train/bee/zz-photo.jpg, a 16x16 baseline JPEG of the bee class's stripes
(its bytes are below); --corrupt-jpeg writes that file cut in half, a JPEG
that fails to decode ("truncated JPEG"); --sealed-jpeg writes it with its last
10 bytes (the end of the scan and the end marker) replaced by an end marker,
which libjpeg alone would decode with gray in place of the missing data.

usage: make_image_folder.py DIR [--per-class N] [--corrupt] [--jpeg | --corrupt-jpeg | --sealed-jpeg]"""
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


# Encoded once by PIL (quality 75) and kept here so no imaging library is needed.
BEE_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f1e1d1a"
    "1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffdb0043010909090c0b0c180d0d1832211c213232323232"
    "323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232ffc0001108001000100301"
    "2200021101031101ffc400160001010100000000000000000000000000000406ffc4001e1000010109000000000000000000000000001401"
    "0305546591a3d2e2ffc4001501010100000000000000000000000000000506ffc4001a110002020300000000000000000000000000010211"
    "215191ffda000c03010002110311003f00cf27824e3fb37509e0938fecdd4a14d031f214d031f201923ee5b7d47fffd9")

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
    if "--jpeg" in sys.argv or "--corrupt-jpeg" in sys.argv or "--sealed-jpeg" in sys.argv:
        with open(os.path.join(root, "train", "bee", "zz-photo.jpg"), "wb") as f:
            if "--jpeg" in sys.argv:
                f.write(BEE_JPEG)
            elif "--corrupt-jpeg" in sys.argv:
                f.write(BEE_JPEG[:len(BEE_JPEG) // 2])
            else:
                f.write(BEE_JPEG[:-10] + b"\xff\xd9")


if __name__ == "__main__":
    main()
