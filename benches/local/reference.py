#!/usr/bin/env python3
"""The local-engine benchmark's reference: rembg's way, timed.

Runs the same model on the same image with the same thread count as the
Rust side, doing exactly what rembg does per image (open and decode the
file, EXIF-transpose, normalize with Pillow's Lanczos, run ONNX Runtime,
min-max the first output, Lanczos the mask back to the image's size), and
prints one JSON line: the session load time, each run's latency and the
process's peak resident memory.

Usage: python3 benches/local/reference.py MODEL FAMILY IMAGE THREADS RUNS
"""

import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))

import onnxruntime as ort  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from rembg_reference import predict  # noqa: E402


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    model, family, image, threads, runs = sys.argv[1:]
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    started = time.perf_counter()
    session = ort.InferenceSession(model, sess_options=options,
                                   providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - started) * 1000
    latencies = []
    for _ in range(int(runs)):
        started = time.perf_counter()
        img = ImageOps.exif_transpose(Image.open(image))
        img.load()
        mask = predict(session, img, family)
        mask.load()
        latencies.append((time.perf_counter() - started) * 1000)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "runtime": "onnxruntime " + ort.__version__ + " (Python)",
        "load_ms": load_ms,
        "latencies_ms": latencies,
        "peak_rss_kb": peak_kb,
    }))


if __name__ == "__main__":
    main()
