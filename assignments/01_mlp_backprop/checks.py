"""Hidden checks of chapter 01: Linear, activations, losses and Net, by hand, no autograd.

Never shipped to students. Every check runs in float64 on inputs drawn from its own seeded
generator, sets parameters directly, and records each graded output separately.
"""

import torch

from autograder.checks import Check, Output
from autograder.kit import (
    FROM_SCRATCH,
    ProbeScale,
    ProbeSquareRoll,
    exercise_container,
    forward_backward_twice,
    gaussian_problem,
    noncontiguous,
    randint,
    randn,
    uniform_problem,
)

# From scratch: no autograd and no library version of the layers being written.
FORBIDDEN = (
    *FROM_SCRATCH,
    "torch.softmax",
    "torch.log_softmax",
    "Tensor.softmax",
    "Tensor.log_softmax",
    "torch.logsumexp",
    "Tensor.logsumexp",
)


# ---------------------------------------------------------------------------- q1: Linear
def exercise_linear(api, case, rng, out):
    """Two forward/backward rounds on different inputs; the second is graded."""
    n, fan_in, fan_out = case["N"], case["in"], case["out"]
    layer = api.Linear(fan_in, fan_out)
    layer.weight = randn(rng, fan_in, fan_out)
    layer.bias = randn(rng, fan_out)
    rounds = []
    for _ in range(2):
        x = randn(rng, n, fan_in)
        rounds.append(
            ((noncontiguous(x) if case.get("noncontiguous") else x,), randn(rng, n, fan_out))
        )
    forward_backward_twice(out, layer, tuple(rounds), grads=("grad_weight", "grad_bias"))


def exercise_linear_init(api, case, rng, out):
    """init_params(std) on a layer of 10 x 20000, called twice with different stds.

    Statistical, on the student's own draw (the generator is passed, but any way of drawing
    is accepted): ``gaussian_problem`` on the 200000 weights and ``uniform_problem`` on the
    20000 biases fail a correct draw with probability below 1e-18 per test (computations in
    their docstrings); union over 2 cases x 2 calls x 5 tests: below 1e-16.
    """
    layer = api.Linear(10, 20000)
    problems = {"weight": "", "bias": ""}
    for std in case["stds"]:
        layer.init_params(std, generator=rng)
        found = {
            "weight": (
                tuple(layer.weight.shape) == (10, 20000) and gaussian_problem(layer.weight, std)
            ),
            "bias": (tuple(layer.bias.shape) == (20000,) and uniform_problem(layer.bias, 0.0, 1.0)),
        }
        for name, problem in found.items():
            if problem is False:
                layout = "(in_features, out_features)" if name == "weight" else "(out_features,)"
                problem = (
                    f"has shape {tuple(getattr(layer, name).shape)} on Linear(10, 20000)"
                    f", expected {layout}"
                )
            if problem and not problems[name]:
                problems[name] = f"after init_params({std}) the {name} {problem}"
    for name, problem in problems.items():
        if problem:
            out.fail(name, problem)
        out[name] = torch.tensor(True)


LINEAR_CASES = (
    {"N": 1, "in": 1, "out": 1},
    {"N": 4, "in": 3, "out": 5},
    {"N": 6, "in": 6, "out": 6},
    {"N": 7, "in": 10, "out": 2},
    {"N": 5, "in": 6, "out": 4, "noncontiguous": True},
    {"N": 32, "in": 20, "out": 10},
)


# ----------------------------------------------------------------------- q2: activations
def make_activation_exercise(class_name, *init_args):
    def exercise(api, case, rng, out):
        layer = getattr(api, class_name)(*init_args)
        rounds = tuple(
            ((case["scale"] * randn(rng, *case["shape"]),), randn(rng, *case["shape"]))
            for _ in range(2)
        )
        forward_backward_twice(out, layer, rounds)

    return exercise


ACTIVATION_CASES = (
    {"shape": (1, 1), "scale": 1.0},
    {"shape": (4, 7), "scale": 1.0},
    {"shape": (3, 2, 5), "scale": 3.0},
    {"shape": (16, 9), "scale": 30.0},
    {"shape": (6, 5), "scale": 1000.0},
)


def activation_check(class_name, *init_args, hint_y, hint_dx, dx_from_y=False):
    return Check(
        name=class_name + (f"({init_args[0]})" if init_args else ""),
        question="q2",
        uses=(class_name,),
        exercise=make_activation_exercise(class_name, *init_args),
        cases=ACTIVATION_CASES,
        outputs=(
            Output("y", points=0.5, hint=hint_y),
            Output("dx", points=0.5, hint=hint_dx, needs=("y",) if dx_from_y else ()),
        ),
    )


# ---------------------------------------------------------------------------- q3: losses
def exercise_mse(api, case, rng, out):
    rounds = tuple(
        ((randn(rng, *case["shape"]), randn(rng, *case["shape"])), None) for _ in range(2)
    )
    forward_backward_twice(
        out, api.MSELoss(), rounds, y="loss", dx="dpred", input_names=("pred", "target")
    )


def exercise_cross_entropy(api, case, rng, out):
    n, classes = case["N"], case["C"]
    rounds = tuple(
        ((case["scale"] * randn(rng, n, classes), randint(rng, classes, n)), None) for _ in range(2)
    )
    forward_backward_twice(
        out,
        api.CrossEntropyLoss(),
        rounds,
        y="loss",
        dx="dlogits",
        input_names=("logits", "target"),
    )


# ------------------------------------------------------------------------------- q4: Net
def exercise_net(api, case, rng, out):
    """Net holding trusted probe layers (the student's own layers are graded elsewhere)."""
    n, d = case["N"], case["D"]
    layers = [
        ProbeScale(randn(rng, d), randn(rng, d)),
        ProbeSquareRoll(),
        ProbeScale(randn(rng, d), randn(rng, d)),
    ]
    net = api.Net(list(layers))
    rounds = tuple((randn(rng, n, d), randn(rng, n, d)) for _ in range(2))
    exercise_container(out, net, layers, rng, rounds, case["lr"], (case["std"], 2 * case["std"]))


NET_CASES = (
    {"N": 1, "D": 1, "lr": 0.1, "std": 0.5},
    {"N": 5, "D": 3, "lr": 0.01, "std": 2.0},
    {"N": 8, "D": 4, "lr": 1.0, "std": 1.0},
)


LINEAR_INIT_HINT = (
    "init_params(std, generator=None) sets weight = std * torch.randn(in_features, "
    "out_features, generator=generator) and bias = torch.rand(out_features, "
    "generator=generator): a Gaussian weight scaled by std, a bias uniform on "
    "[0, 1) that does not depend on std."
)

CHECKS = [
    Check(
        name="Linear",
        question="q1",
        uses=("Linear",),
        exercise=exercise_linear,
        cases=LINEAR_CASES,
        outputs=(
            Output("y", hint="y = x @ weight + bias with weight of shape (in, out)."),
            Output(
                "dx",
                hint="dx = dupstream @ weight.T; check you did not transpose the wrong operand.",
            ),
            Output(
                "grad_weight",
                needs=("y",),
                hint=(
                    "grad_weight = x.T @ dupstream, summed (not averaged) over the batch, using "
                    "the x cached by the LAST forward; set it (=), do not add to the previous "
                    "call's gradient."
                ),
            ),
            Output(
                "grad_bias",
                hint=(
                    "grad_bias sums dupstream over the batch dimension (dim 0); set it (=), do not"
                    " add to the previous call's gradient."
                ),
            ),
        ),
    ),
    Check(
        name="Linear.init_params",
        question="q1",
        uses=("Linear",),
        exercise=exercise_linear_init,
        cases=({"stds": (0.1, 3.0)}, {"stds": (2.0, 0.5)}),
        outputs=(
            Output("weight", points=0.5, hint=LINEAR_INIT_HINT),
            Output("bias", points=0.5, hint=LINEAR_INIT_HINT),
        ),
    ),
    activation_check(
        "ReLU",
        hint_y="max(0, x) elementwise, keeping the input's shape and dtype.",
        hint_dx=(
            "Pass the gradient where the input was positive, zero elsewhere; use the input cached "
            "by the last forward."
        ),
    ),
    activation_check(
        "LeakyReLU",
        0.1,
        hint_y="Negative inputs are multiplied by negative_slope.",
        hint_dx="The local slope is 1 for positive inputs and negative_slope otherwise.",
    ),
    activation_check(
        "Sigmoid",
        dx_from_y=True,
        hint_y=(
            "1 / (1 + exp(-x)); for large negative x compute exp(x) / (1 + exp(x)) so that exp "
            "never overflows."
        ),
        hint_dx="The derivative is s * (1 - s) with s the forward output, not the input.",
    ),
    activation_check(
        "Tanh",
        dx_from_y=True,
        hint_y="torch.tanh(x) elementwise (or a formula that stays finite for |x| around 1000).",
        hint_dx="The derivative is 1 - tanh(x)**2, from the forward output.",
    ),
    Check(
        name="MSELoss",
        question="q3",
        uses=("MSELoss",),
        exercise=exercise_mse,
        cases=({"shape": (1,)}, {"shape": (5, 3)}, {"shape": (8, 2, 3)}),
        outputs=(
            Output("loss", hint="Average the squared error over all elements, not only the batch."),
            Output(
                "dpred",
                needs=("loss",),
                hint=(
                    "d/dpred of the mean is 2 * (pred - target) / number_of_elements, from the "
                    "pred and target of the last forward."
                ),
            ),
        ),
    ),
    Check(
        name="CrossEntropyLoss",
        question="q3",
        uses=("CrossEntropyLoss",),
        exercise=exercise_cross_entropy,
        cases=(
            {"N": 1, "C": 2, "scale": 1.0},
            {"N": 6, "C": 4, "scale": 1.0},
            {"N": 3, "C": 10, "scale": 5.0},
            {"N": 5, "C": 3, "scale": 1000.0},
        ),
        outputs=(
            Output(
                "loss",
                hint=(
                    "Softmax over the class dimension (dim 1), mean over the batch; subtract the "
                    "row maximum before exp to stay finite for large logits."
                ),
            ),
            Output(
                "dlogits", needs=("loss",), hint="The gradient is (softmax - one_hot(target)) / N."
            ),
        ),
    ),
    Check(
        name="Net",
        question="q4",
        uses=("Net",),
        exercise=exercise_net,
        cases=NET_CASES,
        outputs=(
            Output(
                "y",
                hint="forward applies the layers in order, feeding each output to the next layer.",
            ),
            Output(
                "dx",
                hint=(
                    "backward visits the layers in reverse order, passing each returned gradient "
                    "on."
                ),
            ),
            Output(
                "params_after_step",
                hint=(
                    "optimizer_step does weight -= lr * grad_weight and bias -= lr * grad_bias on "
                    "every layer with parameters, using the gradients set just before the call."
                ),
            ),
            Output(
                "reset_params_std",
                hint=(
                    "reset_params(std) calls init_params(std, generator=generator) exactly once on"
                    " every layer that has it, and only on those (Net is graded with layers of the"
                    " grader's own: test for the method with hasattr, not for your classes with "
                    "isinstance)."
                ),
            ),
        ),
    ),
]
