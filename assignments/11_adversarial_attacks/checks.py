"""Hidden checks of chapter 11: concept questions, FGSM, PGD, the adversarial patch, accuracy
under attack, adversarial training.

Never shipped to students. The students write functions against a model the check gives them;
autograd computes the gradients. The check models are float64 ``nn.Sequential`` stacks drawn
from the check's seeded generator:

* an MLP with dropout and a CNN with batch norm, max pooling and dropout, both behind a fixed
  0/1 input mask, so that the gradient is exactly 0 on the masked pixels (the sign of 0 is 0:
  those pixels must not move);
* handed over in train mode in some cases (dropout draws from the global RNG and batch norm
  uses batch statistics in train mode, so an attack that does not switch to eval gives another,
  random, answer and updates the running statistics), with seeded ``.grad`` already present on
  some parameters (an attack that calls ``loss.backward()`` or ``zero_grad()`` changes them).

Each function is called twice in a row on the same tensors and both results are graded
(``x.requires_grad_()`` on the input accumulates ``x.grad`` across calls; a mode that is not
restored shows in the second call). The state the function must leave alone is graded in
separate items (``model_untouched``, ``mode_restored``, ``input_untouched``), recorded only
when the calls returned, so that a stub scores nothing.

Dependencies removed: ``adversarial_training_step`` calls ``fgsm`` and ``train_patch`` calls
``apply_patch``; during those checks the student's global is replaced by the grader's trusted
version (documented in the notebook), so an fgsm or apply_patch bug costs only its own items.
Those two checks declare the name they replace (``Check.replaces``), so the forbidden-API scan
does not charge them for a forbidden call inside the student's fgsm or apply_patch either.
``accuracy_under_attack`` receives a trusted attack that needs gradients (so a loop run under
``torch.no_grad()`` fails) and records the batches it is given.
The patch check trains a small MLP on a seeded synthetic 10-class image set inside the check
(the grader has no data set) and grades the targeted success of the student's patch on held-out
images at random positions against a threshold (see ``PATCH_THRESHOLD``).
"""

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks import Check, Output
from autograder.kit import randint, randn, run_independently, substituted, uniform

# Attack libraries: the attacks, the projection and the clamping are the students' own.
FORBIDDEN = (
    "torchattacks",
    "foolbox",
    "advertorch",
    "cleverhans",
    "art",
    "deeprobust",
    "autoattack",
    "robustbench",
    "secml",
)


STATE_TOL = 1e-12  # slack of the ball and range flags (projections differ by ~3e-17)


class PatchTooWeak(Exception):
    """The student's patch does not reach the success threshold on held-out images."""


class NotReproducible(Exception):
    """train_patch does not draw its positions from the generator it is given."""


# ------------------------------------------------------------------------ shared helpers
def as_float(value, name):
    """A float64 0-dim tensor from a Python number or a one-element tensor."""
    if isinstance(value, bool):
        raise TypeError(f"{name} returned a bool; return a number")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(
                f"{name} returned a tensor of shape {tuple(value.shape)}; return a single number"
            )
        return value.detach().reshape(()).to(torch.float64)
    if isinstance(value, (int, float)):
        return torch.tensor(float(value), dtype=torch.float64)
    raise TypeError(f"{name} returned {type(value).__name__}; return a float")


def flags(*values):
    return torch.tensor([1.0 if v else 0.0 for v in values], dtype=torch.float64)


class Mask(nn.Module):
    """Centres the input and multiplies it by a fixed 0/1 mask (a buffer): masked pixels get
    gradient exactly 0. Centring keeps the random models' predictions varied."""

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x):
        return (x - 0.5) * self.mask


def fill_parameters(model, rng, scale):
    """Every parameter drawn from rng; batch-norm statistics too (variance positive)."""
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(scale * randn(rng, *param.shape))
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(0.3 * randn(rng, *module.running_mean.shape))
                module.running_var.copy_(uniform(rng, *module.running_var.shape, low=0.5, high=1.5))


def make_model(rng, kind, shape, classes):
    """The check's classifier: 'mlp' (mask, linear, relu, dropout, linear) or 'cnn' (mask,
    conv, batch norm, relu, max pool, dropout, linear), float64, parameters from rng."""
    c, h, w = shape
    mask = (torch.rand(shape, generator=rng, dtype=torch.float64) > 0.25).to(torch.float64)
    if kind == "mlp":
        model = nn.Sequential(
            Mask(mask),
            nn.Flatten(),
            nn.Linear(c * h * w, 12),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(12, classes),
        )
    else:
        model = nn.Sequential(
            Mask(mask),
            nn.Conv2d(c, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(4 * (h // 2) * (w // 2), classes),
        )
    model = model.to(torch.float64)
    fill_parameters(model, rng, 0.6)
    with torch.no_grad():  # small biases, large logits: predictions vary between inputs
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.BatchNorm2d, nn.Conv2d)):
                module.bias.mul_(0.1)
        model[-1].weight.mul_(3.0)
    return model


def add_stale_grads(model, rng):
    """Seeded .grad on every other parameter (None on the rest), as after some training."""
    for index, param in enumerate(model.parameters()):
        param.grad = randn(rng, *param.shape) if index % 2 == 0 else None


def snapshot(model):
    """Copies of everything an attack must leave alone."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "grads": [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
    }


def untouched_flags(model, before):
    """[parameters and buffers equal, .grad equal (None stays None), requires_grad equal]."""
    state = model.state_dict()
    same_state = state.keys() == before["state"].keys() and all(
        torch.equal(state[k].detach(), v) for k, v in before["state"].items()
    )
    grads = [p.grad for p in model.parameters()]
    same_grads = len(grads) == len(before["grads"]) and all(
        (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
        for a, b in zip(grads, before["grads"])
    )
    same_flags = [p.requires_grad for p in model.parameters()] == before["requires_grad"]
    return flags(same_state, same_grads, same_flags)


def modes(model):
    return flags(*(module.training for module in model.modules()))


def set_mode(model, mode):
    model.train(mode == "train")


def make_images(rng, n, shape, low, high):
    """Uniform pixels in [low, high] with about a fifth exactly at each edge of the range."""
    x = uniform(rng, n, *shape, low=low, high=high)
    where = torch.rand(x.shape, generator=rng, dtype=torch.float64)
    x = torch.where(where < 0.2, torch.full_like(x, low), x)
    return torch.where(where > 0.8, torch.full_like(x, high), x)


def trusted_apply_patch(images, patch, top, left):
    """The grader's apply_patch (int or (N,) positions, differentiable w.r.t. the patch)."""
    n, c = images.shape[:2]
    kh, kw = patch.shape[-2:]
    rows = torch.as_tensor(top).reshape(-1).expand(n).view(n, 1, 1) + torch.arange(kh).view(
        1, kh, 1
    )
    cols = torch.as_tensor(left).reshape(-1).expand(n).view(n, 1, 1) + torch.arange(kw).view(
        1, 1, kw
    )
    out = images.clone()
    values = patch.to(images.dtype).expand(c, kh, kw).permute(1, 2, 0)
    out[torch.arange(n).view(n, 1, 1), :, rows, cols] = values.expand(n, kh, kw, c)
    return out


def trusted_fgsm(model, x, y, eps, targeted=False, clamp=(0.0, 1.0)):
    """The grader's FGSM (eval mode, restored; autograd.grad leaves .grad alone)."""
    was_training = model.training
    model.eval()
    try:
        leaf = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(leaf), y), leaf)
    finally:
        model.train(was_training)
    step = -eps * grad.sign() if targeted else eps * grad.sign()
    moved = x.detach() + step
    return moved if clamp is None else moved.clamp(clamp[0], clamp[1])


# ------------------------------------------------------------------ q1: concept questions
def exercise_concepts(api, case, rng, out):
    def max_change():
        answers = []
        for dim, eps, zeros in case["linear"]:
            w = randn(rng, dim)
            if zeros:
                w[::2] = 0.0
            answers.append(as_float(api.linear_max_change(w, eps), "linear_max_change"))
        out["linear_max_change"] = torch.stack(answers)

    def expected():
        out["expected_max_change"] = torch.stack(
            [
                as_float(api.expected_max_change(*row), "expected_max_change")
                for row in case["expected"]
            ]
        )

    run_independently(max_change, expected)


CONCEPT_CASES = (
    {
        "linear": [(1, 0.1, False), (5, 0.5, False), (8, 0.25, True)],
        "expected": [(1, 0.1, 1.0), (784, 0.1, 0.05), (64, 0.3, 2.0)],
    },
    {
        "linear": [(64, 0.01, False), (3, 1.0, True), (100, 0.03, False)],
        "expected": [(10, 1.0, 0.5), (3072, 0.03, 0.01), (2, 0.5, 3.0)],
    },
)


# ------------------------------------------------------------------ q2, q3: FGSM and PGD
def attack_setup(rng, case):
    shape = case["shape"]
    low, high = case.get("clamp", (0.0, 1.0))
    model = make_model(rng, case["model"], shape, case["classes"])
    set_mode(model, case["mode"])
    add_stale_grads(model, rng)
    x = make_images(rng, case["N"], shape, low, high)
    y = randint(rng, case["classes"], case["N"])
    return model, x, y, (low, high)


def record_attack(out, model, x, case, before, x_original, results, clamp):
    out["x_adv"] = torch.stack(results)
    last = results[-1]
    in_ball = bool(((last - x_original).abs() <= case["eps"] + STATE_TOL).all())
    in_range = bool(((last >= clamp[0] - STATE_TOL) & (last <= clamp[1] + STATE_TOL)).all())
    no_graph = not last.requires_grad and last.grad_fn is None
    out["x_adv_valid"] = flags(in_ball, in_range, no_graph)
    out["model_untouched"] = untouched_flags(model, before)
    out["mode_restored"] = modes(model)
    out["input_untouched"] = flags(
        torch.equal(x.detach(), x_original), not x.requires_grad, x.grad is None
    )


def make_attack_exercise(name):
    def exercise(api, case, rng, out):
        model, x, y, clamp = attack_setup(rng, case)
        before, x_original = snapshot(model), x.clone()
        kwargs = {}
        if case.get("targeted"):
            kwargs["targeted"] = True
        if "clamp" in case:
            kwargs["clamp"] = clamp
        if name == "pgd":
            kwargs["random_start"] = case["random_start"]
            kwargs["generator"] = torch.Generator().manual_seed(int(randint(rng, 2**31, 1)))
            attack = lambda: api.pgd(
                model, x, y, case["eps"], case["alpha"], case["steps"], **kwargs
            )
        else:
            attack = lambda: api.fgsm(model, x, y, case["eps"], **kwargs)
        results = []
        for _ in range(2):
            result = attack()
            if type(result) is not torch.Tensor:
                raise TypeError(f"{name} returned {type(result).__name__}, not a tensor")
            results.append(result)
        record_attack(out, model, x, case, before, x_original, results, clamp)

    return exercise


FGSM_CASES = (
    {"model": "mlp", "shape": (1, 4, 4), "classes": 3, "N": 1, "eps": 0.1, "mode": "eval"},
    {"model": "mlp", "shape": (1, 5, 5), "classes": 4, "N": 6, "eps": 0.2, "mode": "train"},
    {
        "model": "mlp",
        "shape": (2, 3, 3),
        "classes": 5,
        "N": 5,
        "eps": 0.15,
        "mode": "train",
        "targeted": True,
    },
    {"model": "cnn", "shape": (1, 6, 6), "classes": 4, "N": 4, "eps": 0.1, "mode": "train"},
    {
        "model": "cnn",
        "shape": (2, 4, 6),
        "classes": 3,
        "N": 1,
        "eps": 0.25,
        "mode": "eval",
        "targeted": True,
    },
    {
        "model": "cnn",
        "shape": (1, 6, 4),
        "classes": 5,
        "N": 5,
        "eps": 0.3,
        "mode": "train",
        "clamp": (-1.0, 1.0),
    },
    {"model": "mlp", "shape": (1, 4, 4), "classes": 3, "N": 3, "eps": 0.0, "mode": "train"},
)

PGD_CASES = (
    {
        "model": "mlp",
        "shape": (1, 4, 4),
        "classes": 3,
        "N": 1,
        "eps": 0.1,
        "alpha": 0.04,
        "steps": 4,
        "random_start": False,
        "mode": "eval",
    },
    {
        "model": "mlp",
        "shape": (1, 5, 5),
        "classes": 4,
        "N": 6,
        "eps": 0.2,
        "alpha": 0.07,
        "steps": 5,
        "random_start": True,
        "mode": "train",
    },
    {
        "model": "mlp",
        "shape": (2, 3, 3),
        "classes": 5,
        "N": 5,
        "eps": 0.15,
        "alpha": 0.05,
        "steps": 4,
        "random_start": True,
        "mode": "train",
        "targeted": True,
    },
    {
        "model": "cnn",
        "shape": (1, 6, 6),
        "classes": 4,
        "N": 4,
        "eps": 0.1,
        "alpha": 0.03,
        "steps": 6,
        "random_start": False,
        "mode": "train",
    },
    {
        "model": "cnn",
        "shape": (2, 4, 6),
        "classes": 3,
        "N": 1,
        "eps": 0.25,
        "alpha": 0.1,
        "steps": 3,
        "random_start": True,
        "mode": "eval",
        "targeted": True,
    },
    {
        "model": "cnn",
        "shape": (1, 6, 4),
        "classes": 5,
        "N": 5,
        "eps": 0.3,
        "alpha": 0.1,
        "steps": 5,
        "random_start": True,
        "mode": "train",
        "clamp": (-1.0, 1.0),
    },
    {
        "model": "mlp",
        "shape": (1, 4, 4),
        "classes": 3,
        "N": 3,
        "eps": 0.0,
        "alpha": 0.05,
        "steps": 3,
        "random_start": True,
        "mode": "train",
    },
)

STATE_HINTS = {
    "model_untouched": "Flags [parameters and buffers unchanged, .grad unchanged, "
    "requires_grad unchanged]. An attack must not train: compute the input "
    "gradient with torch.autograd.grad(loss, x_adv) (loss.backward() adds "
    "to every parameter's .grad, zero_grad() erases gradients that were "
    "there before), and run the model in eval mode (batch norm in train "
    "mode updates its running statistics).",
    "mode_restored": "The training flag of every module after the calls: switch to eval for "
    "the attack, then restore the mode the model had (model.train(was_"
    "training)), also when it was in train mode.",
    "input_untouched": "Flags [x unchanged, x.requires_grad still False, x.grad still None]: "
    "work on a copy (x.detach().clone().requires_grad_()), never on x "
    "itself and never in place.",
}


def attack_outputs(x_adv_hint, valid_hint):
    return (
        Output("x_adv", points=2, rtol=0.0, atol=1e-10, hint=x_adv_hint),
        Output("x_adv_valid", points=0.5, rtol=0.0, atol=0.0, hint=valid_hint),
        *(
            Output(name, points=0.5, rtol=0.0, atol=0.0, hint=hint)
            for name, hint in STATE_HINTS.items()
        ),
    )


# ---------------------------------------------------------------------- q4: the patch
def exercise_apply_patch(api, case, rng, out):
    n, c, h, w = case["images"]
    images = uniform(rng, n, c, h, w, low=0.0, high=1.0)
    original = images.clone()
    kh, kw = case["patch"][1:]
    patch = uniform(rng, *case["patch"], low=0.0, high=1.0).requires_grad_(True)
    positions = []
    for top, left in case["positions"]:
        if top == "random":
            top = randint(rng, h - kh + 1, n)
            left = randint(rng, w - kw + 1, n)
        positions.append((top, left))
    weights = randn(rng, n, c, h, w)
    results = []
    for top, left in positions:
        results.append(api.apply_patch(images, patch, top, left))
    out["patched"] = torch.stack(results)
    out["images_untouched"] = flags(torch.equal(images, original), not images.requires_grad)
    (results[-1] * weights).sum().backward()
    if patch.grad is not None:
        out["grad_patch"] = patch.grad


PATCH_CASES = (
    {"images": (1, 1, 5, 5), "patch": (1, 2, 2), "positions": [(0, 0), (3, 3)]},
    {"images": (3, 1, 8, 8), "patch": (1, 3, 3), "positions": [(2, 5), ("random", None)]},
    {"images": (4, 3, 6, 7), "patch": (3, 2, 2), "positions": [("random", None), ("random", None)]},
    {"images": (2, 3, 6, 6), "patch": (1, 4, 4), "positions": [(1, 2), ("random", None)]},
    {"images": (5, 2, 7, 5), "patch": (2, 3, 3), "positions": [(4, 0), ("random", None)]},
)

# The patch attack. A 10-class synthetic image set (8x8, a binary prototype per class, shifted
# by up to one pixel, plus noise) and an MLP trained on it inside the check: the grader has no
# data set. Measured on this exact seeded setting (float64): the reference's mean targeted
# success over targets 0, 3, 7 on held-out images at random positions is 0.60 (0.66, 0.60,
# 0.56); the same recipe trained at one fixed position reaches 0.30 (0.34, 0.25, 0.30); a patch
# that moves away from the target about 0. The threshold 0.45 sits 0.15 from both. The check
# (model training and five patches) takes about 1 s of CPU on one thread; limit 60 s.
PATCH_TARGETS = (0, 3, 7)
PATCH_SIZE, PATCH_STEPS, PATCH_LR, PATCH_IMAGES = 6, 200, 0.05, 100
PATCH_THRESHOLD = 0.45


def synthetic_images(rng, prototypes, n):
    """n images (n, 1, 8, 8) in [0, 1] and their labels: a class prototype rolled by up to one
    pixel in each direction, plus Gaussian noise (std 0.15), clamped."""
    labels = randint(rng, 10, n)
    base = prototypes[labels]
    shifts = randint(rng, 3, n, 2) - 1
    shifted = torch.zeros_like(base)
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            chosen = ((shifts[:, 0] == a) & (shifts[:, 1] == b)).view(n, 1, 1, 1)
            shifted = torch.where(chosen, torch.roll(base, (a, b), dims=(2, 3)), shifted)
    return (shifted + 0.15 * randn(rng, *base.shape)).clamp(0.0, 1.0), labels


def patch_model(rng):
    """(model, training images, held-out images, held-out labels) of the patch check."""
    prototypes = (torch.rand(10, 1, 8, 8, generator=rng, dtype=torch.float64) > 0.6).to(
        torch.float64
    )
    train_x, train_y = synthetic_images(rng, prototypes, 1000)
    test_x, test_y = synthetic_images(rng, prototypes, 300)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    model = model.to(torch.float64)
    fill_parameters(model, rng, 0.3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    with torch.enable_grad():
        for _ in range(300):
            idx = randint(rng, 1000, 64)
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for param in model.parameters():
        param.grad = None
    model.eval()
    return model, train_x[:PATCH_IMAGES], test_x, test_y


def paste(images, patch, top, left):
    """The grader's own paste (per-image positions), used to evaluate a student's patch."""
    out = images.clone()
    k = patch.shape[-1]
    for i in range(len(images)):
        out[i, :, int(top[i]) : int(top[i]) + k, int(left[i]) : int(left[i]) + k] = patch
    return out


def exercise_train_patch(api, case, rng, out):
    model, images, test_x, test_y = patch_model(rng)
    model.train(case["mode"] == "train")
    add_stale_grads(model, rng)
    before = snapshot(model)
    seeds = [int(s) for s in randint(rng, 2**31, 2)]

    def train(target, seed):
        generator = torch.Generator().manual_seed(seed)
        with substituted(api, apply_patch=trusted_apply_patch):
            patch = api.train_patch(
                model, images.clone(), target, PATCH_SIZE, PATCH_STEPS, PATCH_LR, generator
            )
        if type(patch) is not torch.Tensor:
            raise TypeError(f"train_patch returned {type(patch).__name__}, not a tensor")
        return patch

    patches = {target: train(target, seeds[0]) for target in PATCH_TARGETS}
    again, other_seed = train(PATCH_TARGETS[0], seeds[0]), train(PATCH_TARGETS[0], seeds[1])
    first = patches[PATCH_TARGETS[0]]

    def valid():
        shape_ok = tuple(first.shape) == (1, PATCH_SIZE, PATCH_SIZE)
        in_range = bool(((first >= 0) & (first <= 1)).all()) if shape_ok else False
        out["patch_valid"] = flags(
            shape_ok, in_range, first.dtype == images.dtype, not first.requires_grad
        )

    def success():
        rates = []
        eval_rng = torch.Generator().manual_seed(seeds[1])
        top = randint(eval_rng, 8 - PATCH_SIZE + 1, len(test_x))
        left = randint(eval_rng, 8 - PATCH_SIZE + 1, len(test_x))
        for target, patch in patches.items():
            patch = patch.detach().to(torch.float64).clamp(0, 1).reshape(1, PATCH_SIZE, PATCH_SIZE)
            with torch.no_grad():
                predicted = model.eval()(paste(test_x, patch, top, left)).argmax(dim=1)
            keep = test_y != target
            rates.append(float((predicted[keep] == target).double().mean()))
        mean = sum(rates) / len(rates)
        if mean < PATCH_THRESHOLD:
            raise PatchTooWeak(
                f"your patches made the model predict the target on "
                f"{mean:.2f} of the held-out images on average (targets "
                f"{PATCH_TARGETS}), below the required {PATCH_THRESHOLD}"
            )
        out["success"] = flags(True)

    def reproducible():
        same = torch.equal(again, first)
        differs = not torch.equal(other_seed, first)
        if not (same and differs):
            raise NotReproducible(
                "with the same seed train_patch must return the same patch, "
                "with another seed another one: draw every position from "
                "the generator argument (torch.randint(..., generator="
                "generator)), never from the global RNG"
            )
        out["reproducible"] = flags(True)

    out["model_untouched"] = torch.cat([untouched_flags(model, before), modes(model)])
    run_independently(valid, success, reproducible)


# ---------------------------------------------------------- q5: accuracy under attack
def exercise_accuracy(api, case, rng, out):
    shape = (1, 6, 6)
    model = make_model(rng, "cnn", shape, 4)
    n = case["N"]
    x = make_images(rng, n, shape, 0.0, 1.0)
    with torch.no_grad():
        y = model.eval()(x).argmax(dim=1)  # mostly right labels: accuracy is informative
    flip = torch.rand(n, generator=rng) < 0.25
    y = torch.where(flip, randint(rng, 4, n), y)
    set_mode(model, case["mode"])
    add_stale_grads(model, rng)
    before = snapshot(model)
    received = []

    def attack(m, xb, yb):
        received.append(xb.detach().clone())
        if not torch.is_grad_enabled():  # else autograd's "does not require grad", unexplained
            raise RuntimeError(
                "the attack was called with gradients disabled (inside torch.no_grad()); "
                "an attack differentiates the loss, so call attack(model, xb, yb) outside "
                "torch.no_grad() and put only the prediction inside"
            )
        return trusted_fgsm(m, xb, yb, case["eps"])

    accuracies = []
    for _ in range(2):
        received.clear()
        value = api.accuracy_under_attack(
            model, x, y, attack if case["eps"] else None, case["batch_size"]
        )
        accuracies.append(as_float(value, "accuracy_under_attack"))
    out["accuracy"] = torch.stack(accuracies)
    if case["eps"]:
        sizes = [float(len(b)) for b in received]
        in_order = bool(received) and torch.equal(torch.cat(received), x)
        out["attack_batches"] = torch.tensor(sizes + [float(in_order)], dtype=torch.float64)
    else:
        out["attack_batches"] = torch.tensor([float(len(received))], dtype=torch.float64)
    out["model_untouched"] = torch.cat([untouched_flags(model, before), modes(model)])


ACCURACY_CASES = (
    {"N": 10, "batch_size": 4, "eps": 0.08, "mode": "train"},
    {"N": 9, "batch_size": 3, "eps": 0.05, "mode": "eval"},
    {"N": 7, "batch_size": 16, "eps": 0.12, "mode": "train"},
    {"N": 5, "batch_size": 1, "eps": 0.05, "mode": "eval"},
    {"N": 12, "batch_size": 5, "eps": 0.0, "mode": "train"},
    {"N": 12, "batch_size": 5, "eps": 0.05, "mode": "eval"},
)


# ------------------------------------------------------------ q6: adversarial training
def exercise_training_step(api, case, rng, out):
    shape = (1, 4, 4)
    model = make_model(rng, "cnn", shape, 3)
    model[6] = nn.Identity()  # no dropout: the train-mode forward must be deterministic
    set_mode(model, case["mode"])
    add_stale_grads(model, rng)
    optimizer = torch.optim.SGD(model.parameters(), lr=case["lr"], momentum=0.9)
    batches = [
        (make_images(rng, case["N"], shape, 0.0, 1.0), randint(rng, 3, case["N"])) for _ in range(2)
    ]
    states, losses = [], []
    with substituted(api, fgsm=trusted_fgsm):
        for x, y in batches:
            losses.append(
                as_float(
                    api.adversarial_training_step(model, optimizer, x, y, case["eps"]),
                    "adversarial_training_step",
                )
            )
            states.append(
                torch.cat(
                    [v.detach().reshape(-1).to(torch.float64) for v in model.state_dict().values()]
                )
            )
    out["parameters"] = torch.cat(states)
    out["loss"] = torch.stack(losses)
    out["mode"] = modes(model)


TRAINING_CASES = (
    {"N": 6, "eps": 0.2, "lr": 0.1, "mode": "eval"},
    {"N": 1, "eps": 0.1, "lr": 0.05, "mode": "train"},
    {"N": 8, "eps": 0.3, "lr": 0.2, "mode": "train"},
)


CHECKS = [
    Check(
        name="concepts",
        question="q1",
        uses=("linear_max_change", "expected_max_change"),
        exercise=exercise_concepts,
        cases=CONCEPT_CASES,
        outputs=(
            Output(
                "linear_max_change",
                rtol=1e-9,
                atol=1e-12,
                hint="The largest |w . delta| with every |delta_i| <= eps is reached by "
                "delta = eps * sign(w): eps times the L1 norm of w (sum of |w_i|), "
                "not the L2 norm and not the largest |w_i|.",
            ),
            Output(
                "expected_max_change",
                rtol=1e-9,
                atol=1e-12,
                hint="E|w_i| = weight_std * sqrt(2 / pi) for a normal w_i, and the L1 norm "
                "adds dim of them: eps * dim * weight_std * sqrt(2 / pi), linear in "
                "dim (not sqrt(dim)).",
            ),
        ),
    ),
    Check(
        name="fgsm",
        question="q2",
        uses=("fgsm",),
        exercise=make_attack_exercise("fgsm"),
        cases=FGSM_CASES,
        timeout_s=20.0,
        outputs=attack_outputs(
            "x_adv = clamp(x + eps * sign(grad)) with grad the gradient of the MEAN "
            "cross-entropy of model(x) with respect to x, computed with the model in eval "
            "mode; targeted=True steps the other way (x - eps * sign(grad), y are the "
            "targets); sign(0) = 0 (torch.sign); clamp to the range given by `clamp`.",
            "Flags [within eps of x, within the clamp range, no graph]: clamp to the valid "
            "range last, and return a tensor that does not require grad (.detach()).",
        ),
    ),
    Check(
        name="pgd",
        question="q3",
        uses=("pgd",),
        exercise=make_attack_exercise("pgd"),
        cases=PGD_CASES,
        timeout_s=20.0,
        outputs=attack_outputs(
            "Random start exactly x + (2 * torch.rand(x.shape, generator=generator, "
            "dtype=x.dtype) - 1) * eps, clamped to the range (one draw per call); then each "
            "step: x_adv + alpha * sign(grad at x_adv) (minus when targeted), projected onto "
            "[x - eps, x + eps] around the ORIGINAL x, then clamped to the range; `steps` "
            "steps, each with the gradient at the current iterate.",
            "Flags [within eps of the original x, within the clamp range, no graph]: project "
            "onto the ball around the original x after every step.",
        ),
    ),
    Check(
        name="apply_patch",
        question="q4",
        uses=("apply_patch",),
        exercise=exercise_apply_patch,
        cases=PATCH_CASES,
        outputs=(
            Output(
                "patched",
                points=1,
                rtol=0.0,
                atol=0.0,
                hint="out[i, :, top_i:top_i + kh, left_i:left_i + kw] = patch (replaced, "
                "not added), everything else as in images; top is the row, left the "
                "column; int positions apply to the whole batch, (N,) tensors one per "
                "image; a (1, kh, kw) patch goes into every channel.",
            ),
            Output(
                "grad_patch",
                points=0.5,
                hint="The result must be differentiable with respect to the patch (no "
                "torch.no_grad(), .detach() or .data on it): train_patch needs that "
                "gradient.",
            ),
            Output(
                "images_untouched",
                points=0.5,
                rtol=0.0,
                atol=0.0,
                hint="Flags [images unchanged, images.requires_grad still False]: paste "
                "into a copy (images.clone()), never into images itself.",
            ),
        ),
    ),
    Check(
        name="train_patch",
        question="q4",
        uses=("train_patch",),
        replaces=("apply_patch",),
        exercise=exercise_train_patch,
        cases=({"mode": "train"},),
        timeout_s=60.0,
        outputs=(
            Output(
                "success",
                points=2,
                rtol=0.0,
                atol=0.0,
                hint="Train the patch for the TARGET class (descend the cross-entropy "
                "towards target_class) with the patch pasted at NEW random positions "
                "in every step (one per image, drawn from the generator): a patch "
                "trained at one position does not work elsewhere.",
            ),
            Output(
                "patch_valid",
                points=0.5,
                rtol=0.0,
                atol=0.0,
                hint="Flags [shape (C, patch_size, patch_size), values in [0, 1], the "
                "images' dtype, no graph]: keep the patch in the valid range (e.g. "
                "patch = sigmoid(param)) and return it detached.",
            ),
            Output(
                "reproducible",
                points=0.5,
                rtol=0.0,
                atol=0.0,
                hint="Draw every random position from the generator argument; the same "
                "seed must give the same patch.",
            ),
            Output(
                "model_untouched",
                points=0.5,
                rtol=0.0,
                atol=0.0,
                hint="Flags [parameters and buffers unchanged, .grad unchanged, "
                "requires_grad unchanged], then the modules' training flags: only "
                "the patch is optimised (torch.autograd.grad(loss, param), or an "
                "optimizer over [param] only and no loss.backward() into the model), "
                "the model runs in eval mode and its mode is restored.",
            ),
        ),
    ),
    Check(
        name="accuracy_under_attack",
        question="q5",
        uses=("accuracy_under_attack",),
        exercise=exercise_accuracy,
        cases=ACCURACY_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "accuracy",
                points=1,
                rtol=0.0,
                atol=1e-12,
                hint="(number of examples still classified correctly) / N over ALL "
                "examples (not a mean of per-batch accuracies); predictions in eval "
                "mode; the attack needs gradients, so call it outside torch.no_grad() "
                "(only the prediction goes inside); attack=None means clean accuracy.",
            ),
            Output(
                "attack_batches",
                points=0.5,
                rtol=0.0,
                atol=0.0,
                hint="The sizes of the batches the attack received, then a flag for 'they "
                "were x[0:b], x[b:2b], ... in order': call attack(model, xb, yb) once "
                "per consecutive batch of batch_size examples (the last may be "
                "shorter); with attack=None nothing is called.",
            ),
            Output(
                "model_untouched",
                points=0.5,
                rtol=0.0,
                atol=0.0,
                hint="Flags [parameters and buffers unchanged, .grad unchanged, "
                "requires_grad unchanged], then the modules' training flags: evaluate "
                "in eval mode and restore the mode the model had.",
            ),
        ),
    ),
    Check(
        name="adversarial_training_step",
        question="q6",
        uses=("adversarial_training_step",),
        replaces=("fgsm",),
        exercise=exercise_training_step,
        cases=TRAINING_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "parameters",
                points=1.5,
                rtol=1e-7,
                atol=1e-9,
                hint="Parameters and batch-norm statistics after each of two steps in a "
                "row. x_adv = fgsm(model, x, y, eps) (call fgsm: the grader substitutes "
                "its own), then model.train(), optimizer.zero_grad(), the mean "
                "cross-entropy of model(x_adv) against y (one forward pass), "
                "loss.backward(), optimizer.step().",
            ),
            Output(
                "loss",
                points=0.5,
                rtol=1e-7,
                atol=1e-9,
                hint="Return the loss on the adversarial batch, computed before the "
                "optimizer step, as a float.",
            ),
            Output(
                "mode",
                points=0.5,
                rtol=0.0,
                atol=0.0,
                hint="The training flags after the step: the update happens in train mode, "
                "and the model stays in train mode.",
            ),
        ),
    ),
]
