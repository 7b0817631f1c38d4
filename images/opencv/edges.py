"""Edge detection for the opencv example: every image under /pfs/images becomes a black and
white edge map (Canny, thresholds 100 and 200) at /pfs/out/<name without extension>.png."""

import os
import sys

import cv2

IN_DIR = "/pfs/images"
OUT_DIR = "/pfs/out"


def edge_map(src: str) -> None:
    image = cv2.imread(src)
    if image is None:
        sys.exit(f"edges.py: {src} is not an image OpenCV can read")
    edges = cv2.Canny(image, 100, 200)
    stem = os.path.splitext(os.path.basename(src))[0]
    dest = os.path.join(OUT_DIR, stem + ".png")
    if not cv2.imwrite(dest, edges):
        sys.exit(f"edges.py: could not write {dest}")
    print(f"{src} -> {dest}")


for root, _dirs, files in os.walk(IN_DIR, followlinks=True):
    for name in sorted(files):
        edge_map(os.path.join(root, name))
