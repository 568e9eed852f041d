#!/usr/bin/env python3
"""Writes the model the local-engine benchmark runs when no real one is given.

The rembg models are hundreds of megabytes and cannot be fetched in CI, so
the benchmark runs a stand-in with IS-Net's interface (1x3x1024x1024 float32
in, 1x1x1024x1024 out) and a comparable shape of work: a convolutional
encoder down to 128x128, a bottleneck, and a transposed-convolution decoder
back up, about 17 G multiply-adds. Weights are random (seeded), so the
mask means nothing; what is measured is the time around the model, which is
the same whatever the weights. Point CUTOUT_BENCH_MODEL at a real model to
measure that instead.

Usage: python3 benches/local/make_bench_model.py OUT.onnx
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
SIDE = 1024


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rng = np.random.default_rng(5)
    nodes, inits = [], []

    def weight(name, shape):
        fan_in = int(np.prod(shape[1:]))
        data = rng.normal(0.0, (2.0 / fan_in) ** 0.5, size=shape).astype(np.float32)
        inits.append(numpy_helper.from_array(data, name))
        return name

    def bias(name, n):
        inits.append(numpy_helper.from_array(np.zeros(n, dtype=np.float32), name))
        return name

    def conv(x, name, cin, cout, stride, relu=True):
        w = weight(name + "_w", (cout, cin, 3, 3))
        b = bias(name + "_b", cout)
        out = name if not relu else name + "_pre"
        nodes.append(helper.make_node("Conv", [x, w, b], [out], kernel_shape=[3, 3],
                                      strides=[stride, stride], pads=[1, 1, 1, 1]))
        if relu:
            nodes.append(helper.make_node("Relu", [out], [name]))
        return name

    def up(x, name, cin, cout):
        w = weight(name + "_w", (cin, cout, 2, 2))
        b = bias(name + "_b", cout)
        nodes.append(helper.make_node("ConvTranspose", [x, w, b], [name + "_pre"],
                                      kernel_shape=[2, 2], strides=[2, 2]))
        nodes.append(helper.make_node("Relu", [name + "_pre"], [name]))
        return name

    x = "input.1"
    x = conv(x, "enc1", 3, 32, 2)      # 512
    x = conv(x, "enc2", 32, 64, 2)     # 256
    x = conv(x, "enc3", 64, 128, 2)    # 128
    x = conv(x, "mid1", 128, 128, 1)
    x = conv(x, "mid2", 128, 128, 1)
    x = up(x, "dec1", 128, 64)         # 256
    x = conv(x, "dec1c", 64, 64, 1)
    x = up(x, "dec2", 64, 32)          # 512
    x = conv(x, "dec2c", 32, 32, 1)
    x = up(x, "dec3", 32, 16)          # 1024
    x = conv(x, "mask", 16, 1, 1, relu=False)

    graph = helper.make_graph(
        nodes, "cutout-bench-isnet-shaped",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, SIDE, SIDE])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="cutout-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, sys.argv[1])


if __name__ == "__main__":
    main()
