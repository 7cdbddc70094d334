"""The dispatch of microdl's own formulas, as :mod:`microdl.nn.formulas` writes it (written by
``microdl.nn.formulas.write_dispatch_module()``; do not edit).

The kernels take an activation and a loss as their registry codes and call ``F.activate(code, z, p)``,
``F.loss_and_output(code, z, y, has_y, p)``, ...; ``F`` is this code compiled for the kernels' target,
with each name below bound to the target's compiled copy of the formula it is imported as here. A
user's registered formulas add branches to the compiled dispatch, not to this file.
"""

# ruff: noqa: I001  (the imports are in the order the generator writes them)

from microdl.nn.activations import (
    elu as activate_5,
    elu as activate_from_z_5,
    elu_derivative as derivative_5,
    elu_derivative as derivative_from_z_5,
    gelu as activate_6,
    gelu as activate_from_z_6,
    gelu_derivative as derivative_6,
    gelu_derivative as derivative_from_z_6,
    identity as activate_0,
    identity as activate_from_output_0,
    identity_derivative as derivative_0,
    identity_derivative as derivative_from_output_0,
    leaky_relu as activate_2,
    leaky_relu as activate_from_output_2,
    leaky_relu_derivative as derivative_2,
    leaky_relu_derivative as derivative_from_output_2,
    relu as activate_1,
    relu as activate_from_output_1,
    relu_derivative as derivative_1,
    relu_derivative as derivative_from_output_1,
    sigmoid as activate_4,
    sigmoid as activate_from_output_4,
    sigmoid_derivative as derivative_4,
    sigmoid_derivative as derivative_from_output_4,
    silu as activate_7,
    silu as activate_from_z_7,
    silu_derivative as derivative_7,
    silu_derivative as derivative_from_z_7,
    tanh as activate_3,
    tanh as activate_from_output_3,
    tanh_derivative as derivative_3,
    tanh_derivative as derivative_from_output_3,
)
from microdl.nn.losses import (
    absolute_error as loss_and_output_5,
    absolute_error_delta as output_delta_5,
    binary_cross_entropy as loss_and_output_1,
    canonical_delta as output_delta_0,
    cross_entropy as loss_and_output_0,
    huber as loss_and_output_4,
    huber_delta as output_delta_4,
    poisson as loss_and_output_3,
    squared_error as loss_and_output_2,
)


def activate(code, z, p):
    if code == 1:  # relu
        return activate_1(z, p)
    if code == 2:  # leaky_relu
        return activate_2(z, p)
    if code == 3:  # tanh
        return activate_3(z, p)
    if code == 4:  # sigmoid
        return activate_4(z, p)
    if code == 5:  # elu
        return activate_5(z, p)
    if code == 6:  # gelu
        return activate_6(z, p)
    if code == 7:  # silu
        return activate_7(z, p)
    return activate_0(z, p)  # identity


def derivative(code, z, a, p):
    if code == 1:  # relu
        return derivative_1(z, a, p)
    if code == 2:  # leaky_relu
        return derivative_2(z, a, p)
    if code == 3:  # tanh
        return derivative_3(z, a, p)
    if code == 4:  # sigmoid
        return derivative_4(z, a, p)
    if code == 5:  # elu
        return derivative_5(z, a, p)
    if code == 6:  # gelu
        return derivative_6(z, a, p)
    if code == 7:  # silu
        return derivative_7(z, a, p)
    return derivative_0(z, a, p)  # identity


def activate_from_output(code, z, p):
    if code == 1:  # relu
        return activate_from_output_1(z, p)
    if code == 2:  # leaky_relu
        return activate_from_output_2(z, p)
    if code == 3:  # tanh
        return activate_from_output_3(z, p)
    if code == 4:  # sigmoid
        return activate_from_output_4(z, p)
    return activate_from_output_0(z, p)  # identity


def derivative_from_output(code, a, p):
    if code == 1:  # relu
        return derivative_from_output_1(a, a, p)
    if code == 2:  # leaky_relu
        return derivative_from_output_2(a, a, p)
    if code == 3:  # tanh
        return derivative_from_output_3(a, a, p)
    if code == 4:  # sigmoid
        return derivative_from_output_4(a, a, p)
    return derivative_from_output_0(a, a, p)  # identity


def activate_from_z(code, z, p):
    if code == 6:  # gelu
        return activate_from_z_6(z, p)
    if code == 7:  # silu
        return activate_from_z_7(z, p)
    return activate_from_z_5(z, p)  # elu


def derivative_from_z(code, z, a, p):
    if code == 6:  # gelu
        return derivative_from_z_6(z, a, p)
    if code == 7:  # silu
        return derivative_from_z_7(z, a, p)
    return derivative_from_z_5(z, a, p)  # elu


def loss_and_output(code, z, y, has_y, p):
    if code == 1:  # binary_cross_entropy
        return loss_and_output_1(z, y, has_y, p)
    if code == 2:  # squared_error
        return loss_and_output_2(z, y, has_y, p)
    if code == 3:  # poisson
        return loss_and_output_3(z, y, has_y, p)
    if code == 4:  # huber
        return loss_and_output_4(z, y, has_y, p)
    if code == 5:  # absolute_error
        return loss_and_output_5(z, y, has_y, p)
    return loss_and_output_0(z, y, has_y, p)  # cross_entropy


def output_delta(code, a, y, c, p):
    if code == 4:  # huber
        return output_delta_4(a, y, c, p)
    if code == 5:  # absolute_error
        return output_delta_5(a, y, c, p)
    return output_delta_0(a, y, c, p)  # cross_entropy, binary_cross_entropy, squared_error, poisson
