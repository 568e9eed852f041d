#!/usr/bin/env python3
"""Writes the tiny ONNX models the local engine's tests run.

Each model has the input a real model of its family has (1x3xSxS float32)
and answers with something a test can predict by hand: channel 0 of the
first output is a 1x1 convolution of the normalised RGB (squared for the
U2-Net and IS-Net stand-ins, so that rembg's mean, deviation and
divide-by-maximum steps all change the mask; raw logits for the BiRefNet
stand-in, so that the sigmoid does). A second channel and a second output
carry different numbers, so reading the wrong one fails the tests.

The weights are repeated in `tests/local_engine.rs`; change them together.

Usage: pip install onnx==1.23.2 numpy && python3 scripts/make_test_models.py
Writes tests/fixtures/models/*.onnx (a few KB each); commit them.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "models"
OPSET = 13

# Channel 0 of the first output: conv(x) = sum(W0[c] * x[c]) + B0.
W0 = [0.5, 0.25, 0.125]
B0 = 3.0
# BiRefNet's logits: small enough that the sigmoid is far from flat.
W0_LOGITS = [0.5, 0.25, 0.125]
B0_LOGITS = 0.25
# Channel 1 and the second output: anything else (negative weights, so
# reading them inverts the mask).
W1 = [-1.0, 0.5, -0.75]
B1 = 0.0
W_SECOND = [-0.3, -0.6, 0.9]
B_SECOND = 1.0


def conv_1x1(name, inputs, weights, bias):
    """A 1x1 Conv from 3 channels to len(weights) channels."""
    w = numpy_helper.from_array(np.array(weights, dtype=np.float32).reshape(len(weights), 3, 1, 1), name + "_w")
    b = numpy_helper.from_array(np.array(bias, dtype=np.float32), name + "_b")
    node = helper.make_node("Conv", [inputs, w.name, b.name], [name], kernel_shape=[1, 1])
    return node, [w, b]


def make(name, size, logits, bad_output=False):
    x = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])
    nodes, inits = [], []

    w0, b0 = (W0_LOGITS, B0_LOGITS) if logits else (W0, B0)
    n, i = conv_1x1("conv0", "input.1", [w0, W1], [b0, B1])
    nodes.append(n)
    inits += i
    if logits:
        first = "conv0"
    else:
        # Squared, to make the mask depend on the mean and the maximum.
        nodes.append(helper.make_node("Mul", ["conv0", "conv0"], ["first"]))
        first = "first"

    n, i = conv_1x1("second", "input.1", [W_SECOND], [B_SECOND])
    nodes.append(n)
    inits += i

    if bad_output:
        # A 1xSxS answer: no channel axis, which rembg cannot read either.
        shape = numpy_helper.from_array(np.array([1, size, size], dtype=np.int64), "flat_shape")
        inits.append(shape)
        nodes.append(helper.make_node("Slice", [first, "starts", "ends", "axes"], ["channel0"]))
        inits += [
            numpy_helper.from_array(np.array([0], dtype=np.int64), "starts"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "ends"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
        ]
        nodes.append(helper.make_node("Reshape", ["channel0", "flat_shape"], ["out"]))
        outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, size, size])]
    else:
        outputs = [
            helper.make_tensor_value_info(first, TensorProto.FLOAT, [1, 2, size, size]),
            helper.make_tensor_value_info("second", TensorProto.FLOAT, [1, 1, size, size]),
        ]

    graph = helper.make_graph(nodes, name, [x], outputs, inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="cutout scripts/make_test_models.py",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = OUT / f"{name}.onnx"
    onnx.save(model, path)
    print(f"wrote {path.relative_to(OUT.parent.parent.parent)} ({path.stat().st_size} bytes)")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    make("tiny-u2net", 320, logits=False)
    make("tiny-isnet", 1024, logits=False)
    make("tiny-birefnet", 1024, logits=True)
    make("tiny-bad-output", 320, logits=False, bad_output=True)


if __name__ == "__main__":
    main()
