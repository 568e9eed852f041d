#!/usr/bin/env python3
"""rembg's pre- and post-processing, step for step, as a yardstick.

Cutout promises masks comparable with rembg's. This script does what
rembg's sessions do (normalize, run, read the first output's channel 0,
sigmoid for BiRefNet, min-max rescale, truncate to 8 bits, Lanczos back to
the image's size) with numpy, Pillow and onnxruntime, so the test in
tests/local_engine.rs can compare Cutout's mask with it pixel for pixel.

Usage:
  pip install onnxruntime==1.32.0 numpy pillow
  python3 scripts/rembg_reference.py MODEL.onnx FAMILY IMAGE MASK.png
FAMILY is u2net, isnet or birefnet.
"""

import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FAMILIES = {
    # family: (side, mean, std, sigmoid)
    "u2net": (320, IMAGENET_MEAN, IMAGENET_STD, False),
    "isnet": (1024, IMAGENET_MEAN, (1.0, 1.0, 1.0), False),
    "birefnet": (1024, IMAGENET_MEAN, IMAGENET_STD, True),
}


def normalize(img, mean, std, size):
    im = img.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    im_ary = np.array(im)
    im_ary = im_ary / max(np.max(im_ary), 1e-6)
    tmp_img = np.zeros((im_ary.shape[0], im_ary.shape[1], 3))
    for c in range(3):
        tmp_img[:, :, c] = (im_ary[:, :, c] - mean[c]) / std[c]
    tmp_img = tmp_img.transpose((2, 0, 1))
    return np.expand_dims(tmp_img, 0).astype(np.float32)


def predict(session, img, family):
    side, mean, std, sigmoid = FAMILIES[family]
    name = session.get_inputs()[0].name
    outs = session.run(None, {name: normalize(img, mean, std, (side, side))})
    pred = outs[0][:, 0, :, :]
    if sigmoid:
        pred = 1 / (1 + np.exp(-pred))
    ma = np.max(pred)
    mi = np.min(pred)
    pred = (pred - mi) / (ma - mi)
    pred = np.squeeze(pred)
    mask = Image.fromarray((pred * 255).astype("uint8"))  # mode "L", as rembg asks
    return mask.resize(img.size, Image.Resampling.LANCZOS)


def main():
    if len(sys.argv) != 5 or sys.argv[2] not in FAMILIES:
        sys.exit(__doc__)
    model, family, image, out = sys.argv[1:]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    img = ImageOps.exif_transpose(Image.open(image))
    predict(session, img, family).save(out)


if __name__ == "__main__":
    main()
