"""Hidden checks of chapter 01: Linear, activations, losses and Net, by hand, no autograd.

Never shipped to students. Every check runs in float64 on inputs drawn from its own seeded
generator, sets parameters directly, and records each graded output separately.
"""
import torch

from autograder.checks import Check, Output
from autograder.kit import FROM_SCRATCH, ProbeScale, ProbeSquareRoll, noncontiguous, randint, randn

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
    n, fan_in, fan_out = case["N"], case["in"], case["out"]
    layer = api.Linear(fan_in, fan_out)
    layer.weight = randn(rng, fan_in, fan_out)
    layer.bias = randn(rng, fan_out)
    x = randn(rng, n, fan_in)
    if case.get("noncontiguous"):
        x = noncontiguous(x)
    dy = randn(rng, n, fan_out)
    out.watch(x=x, dupstream=dy)
    out["y"] = layer.forward(x)
    try:
        out["dx"] = layer.backward(dy)
    finally:
        out.attributes(layer, "grad_weight", "grad_bias")


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
        x = case["scale"] * randn(rng, *case["shape"])
        dy = randn(rng, *case["shape"])
        out.watch(x=x, dupstream=dy)
        out["y"] = layer.forward(x)
        out["dx"] = layer.backward(dy)
    return exercise


ACTIVATION_CASES = (
    {"shape": (1, 1), "scale": 1.0},
    {"shape": (4, 7), "scale": 1.0},
    {"shape": (3, 2, 5), "scale": 3.0},
    {"shape": (16, 9), "scale": 30.0},
    {"shape": (6, 5), "scale": 1000.0},
)


def activation_check(class_name, *init_args, hint_y="", hint_dx=""):
    return Check(
        name=class_name + (f"({init_args[0]})" if init_args else ""),
        question="q2",
        uses=(class_name,),
        exercise=make_activation_exercise(class_name, *init_args),
        cases=ACTIVATION_CASES,
        outputs=(Output("y", points=0.5, hint=hint_y), Output("dx", points=0.5, hint=hint_dx)),
    )


# ---------------------------------------------------------------------------- q3: losses
def exercise_mse(api, case, rng, out):
    pred = randn(rng, *case["shape"])
    target = randn(rng, *case["shape"])
    out.watch(pred=pred, target=target)
    loss_fn = api.MSELoss()
    out["loss"] = loss_fn.forward(pred, target)
    out["dpred"] = loss_fn.backward()


def exercise_cross_entropy(api, case, rng, out):
    n, classes = case["N"], case["C"]
    logits = case["scale"] * randn(rng, n, classes)
    target = randint(rng, classes, n)
    out.watch(logits=logits, target=target)
    loss_fn = api.CrossEntropyLoss()
    out["loss"] = loss_fn.forward(logits, target)
    out["dlogits"] = loss_fn.backward()


# ------------------------------------------------------------------------------- q4: Net
def exercise_net(api, case, rng, out):
    n, d = case["N"], case["D"]
    first = ProbeScale(randn(rng, d), randn(rng, d))
    second = ProbeScale(randn(rng, d), randn(rng, d))
    net = api.Net([first, ProbeSquareRoll(), second])
    x = randn(rng, n, d)
    dy = randn(rng, n, d)
    out.watch(x=x, dupstream=dy)
    out["y"] = net.forward(x)
    out["dx"] = net.backward(dy)
    net.optimizer_step(case["lr"])
    out["params_after_step"] = torch.cat([first.weight, first.bias, second.weight, second.bias])
    net.reset_params(case["std"])
    out["reset_params_std"] = torch.tensor(first.init_calls + [-1.0] + second.init_calls,
                                           dtype=torch.float64)


NET_CASES = (
    {"N": 1, "D": 1, "lr": 0.1, "std": 0.5},
    {"N": 5, "D": 3, "lr": 0.01, "std": 2.0},
    {"N": 8, "D": 4, "lr": 1.0, "std": 1.0},
)


CHECKS = [
    Check(
        name="Linear", question="q1", uses=("Linear",), exercise=exercise_linear,
        cases=LINEAR_CASES,
        outputs=(
            Output("y", hint="y = x @ weight + bias with weight of shape (in, out)."),
            Output("dx", hint="dx = dupstream @ weight.T; check you did not transpose the wrong operand."),
            Output("grad_weight", hint="grad_weight = x.T @ dupstream, summed (not averaged) over the batch, using the x cached in forward."),
            Output("grad_bias", hint="grad_bias sums dupstream over the batch dimension (dim 0)."),
        ),
    ),
    activation_check("ReLU", hint_dx="Pass the gradient where the input was positive, zero elsewhere; use the input cached in forward."),
    activation_check("LeakyReLU", 0.1, hint_y="Negative inputs are multiplied by negative_slope.",
                     hint_dx="The local slope is 1 for positive inputs and negative_slope otherwise."),
    activation_check("Sigmoid", hint_dx="The derivative is s * (1 - s) with s the forward output, not the input."),
    activation_check("Tanh", hint_dx="The derivative is 1 - tanh(x)**2, from the forward output."),
    Check(
        name="MSELoss", question="q3", uses=("MSELoss",), exercise=exercise_mse,
        cases=({"shape": (1,)}, {"shape": (5, 3)}, {"shape": (8, 2, 3)}),
        outputs=(
            Output("loss", hint="Average the squared error over all elements, not only the batch."),
            Output("dpred", hint="d/dpred of the mean is 2 * (pred - target) / number_of_elements."),
        ),
    ),
    Check(
        name="CrossEntropyLoss", question="q3", uses=("CrossEntropyLoss",),
        exercise=exercise_cross_entropy,
        cases=(
            {"N": 1, "C": 2, "scale": 1.0},
            {"N": 6, "C": 4, "scale": 1.0},
            {"N": 3, "C": 10, "scale": 5.0},
            {"N": 5, "C": 3, "scale": 1000.0},
        ),
        outputs=(
            Output("loss", hint="Softmax over the class dimension (dim 1), mean over the batch; subtract the row maximum before exp to stay finite for large logits."),
            Output("dlogits", hint="The gradient is (softmax - one_hot(target)) / N."),
        ),
    ),
    Check(
        name="Net", question="q4", uses=("Net",), exercise=exercise_net, cases=NET_CASES,
        outputs=(
            Output("y", hint="forward applies the layers in order, feeding each output to the next layer."),
            Output("dx", hint="backward visits the layers in reverse order, passing each returned gradient on."),
            Output("params_after_step", hint="optimizer_step does weight -= lr * grad_weight and bias -= lr * grad_bias on every layer with parameters."),
            Output("reset_params_std", hint="reset_params(std) calls init_params(std) on every layer that has it, and only on those."),
        ),
    ),
]
