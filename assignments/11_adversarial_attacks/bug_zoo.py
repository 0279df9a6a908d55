"""Bug zoo of chapter 11: mistakes students really make; each must lose exactly its items.

Every bug redefines one function of the solution notebook (a cell appended at the end), so the
zoo holds only the mistake. ``fgsm_with``/``pgd_with`` write an attack from a few lines that
differ from the reference.
"""

from tools.zoo import Bug


def items(check: str, *outputs: str) -> set[str]:
    return {f"{check}: {output}" for output in outputs}


GRADIENT = """
    was_training = model.training
    model.eval()
    leaf = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(leaf), y)
    (grad,) = torch.autograd.grad(loss, leaf)
    model.train(was_training)"""


def fgsm_with(
    gradient: str = GRADIENT,
    step: str = "x.detach() + (-1.0 if targeted else 1.0) * eps * grad.sign()",
    finish: str = "x_adv.clamp(clamp[0], clamp[1])",
) -> str:
    """An fgsm that computes `grad` with `gradient`, `x_adv = step`, and returns `finish`."""
    return f"""
def fgsm(model, x, y, eps, targeted=False, clamp=(0.0, 1.0)):{gradient}
    x_adv = {step}
    return {finish}
"""


def pgd_with(
    start: str = "x0 + (2 * torch.rand(x.shape, generator=generator, dtype=x.dtype) - 1) * eps",
    clamp_start: bool = True,
    gradient_at: str = "x_adv",
    step: str = "x_adv + direction * alpha * input_gradient(model, {at}, y).sign()",
    project: str = "torch.min(torch.max(x_adv, x0 - eps), x0 + eps)",
    count: str = "steps",
) -> str:
    """A pgd whose random start, gradient point, step, projection and step count are given."""
    start_clamp = "x_adv = x_adv.clamp(clamp[0], clamp[1])" if clamp_start else "pass"
    return f"""
def pgd(model, x, y, eps, alpha, steps, random_start=True, generator=None, targeted=False,
        clamp=(0.0, 1.0)):
    x0 = x.detach()
    direction = -1.0 if targeted else 1.0
    x_adv = x0.clone()
    if random_start:
        x_adv = {start}
        {start_clamp}
    for _ in range({count}):
        x_adv = {step.format(at=gradient_at)}
        x_adv = {project}
        x_adv = x_adv.clamp(clamp[0], clamp[1])
    return x_adv
"""


BUG_STEP = "x_adv + direction * alpha * _bug_gradient(model, {at}, y).sign()"
BUGS = [
    # ------------------------------------------------------------------------ concepts
    Bug(
        "linear max change with the L2 norm",
        items("concepts", "linear_max_change"),
        """
def linear_max_change(w, eps):
    return eps * w.norm()
""",
    ),
    Bug(
        "linear max change with the largest weight",
        items("concepts", "linear_max_change"),
        """
def linear_max_change(w, eps):
    return eps * w.abs().max()
""",
    ),
    Bug(
        "expected change grows with sqrt(dim)",
        items("concepts", "expected_max_change"),
        """
def expected_max_change(dim, eps, weight_std):
    return eps * math.sqrt(dim) * weight_std * math.sqrt(2.0 / math.pi)
""",
    ),
    Bug(
        "expected change forgets E|w| = std sqrt(2/pi)",
        items("concepts", "expected_max_change"),
        """
def expected_max_change(dim, eps, weight_std):
    return eps * dim * weight_std
""",
    ),
    # ---------------------------------------------------------------------------- fgsm
    Bug(
        "fgsm targeted attack steps up the loss",
        items("fgsm", "x_adv"),
        fgsm_with(step="x.detach() + eps * grad.sign()"),
        pattern="targeted",
    ),
    Bug(
        "fgsm raw gradient instead of its sign",
        items("fgsm", "x_adv", "x_adv_valid"),
        fgsm_with(step="x.detach() + (-1.0 if targeted else 1.0) * eps * grad"),
        pattern="eps",
    ),
    Bug(
        "fgsm sign of 0 taken as +1",
        items("fgsm", "x_adv"),
        fgsm_with(
            step="x.detach() + (-1.0 if targeted else 1.0) * eps * torch.where(grad >= 0, "
            "torch.ones_like(grad), -torch.ones_like(grad))"
        ),
        pattern="eps",
    ),
    Bug(
        "fgsm without clamp",
        items("fgsm", "x_adv", "x_adv_valid"),
        fgsm_with(finish="x_adv"),
        pattern="eps",
    ),
    Bug(
        "fgsm attacks in train mode",
        items("fgsm", "x_adv", "model_untouched"),
        fgsm_with("""
    leaf = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(leaf), y), leaf)"""),
        pattern=None,
    ),
    Bug(
        "fgsm does not restore the mode",
        items("fgsm", "mode_restored"),
        fgsm_with("""
    model.eval()
    leaf = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(leaf), y), leaf)"""),
    ),
    Bug(
        "fgsm accumulates gradients into the parameters",
        items("fgsm", "model_untouched"),
        fgsm_with("""
    was_training = model.training
    model.eval()
    leaf = x.detach().clone().requires_grad_(True)
    F.cross_entropy(model(leaf), y).backward()
    grad = leaf.grad
    model.train(was_training)"""),
    ),
    Bug(
        "fgsm sets requires_grad on the input",
        items("fgsm", "input_untouched"),
        fgsm_with("""
    was_training = model.training
    model.eval()
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    model.train(was_training)"""),
    ),
    Bug(
        "fgsm modifies the input in place",
        items("fgsm", "x_adv", "x_adv_valid", "input_untouched"),
        fgsm_with(
            step="x.data.add_((-1.0 if targeted else 1.0) * eps * grad.sign())",
            finish="x_adv.clamp_(clamp[0], clamp[1])",
        ),
        pattern="eps",
    ),
    Bug(
        "fgsm returns a tensor with a graph",
        items("fgsm", "x_adv_valid"),
        fgsm_with(
            """
    was_training = model.training
    model.eval()
    leaf = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(leaf), y), leaf)
    model.train(was_training)""",
            step="leaf + (-1.0 if targeted else 1.0) * eps * grad.sign()",
        ),
    ),
    # ----------------------------------------------------------------------------- pgd
    Bug(
        "pgd projects around the current iterate",
        items("pgd", "x_adv", "x_adv_valid"),
        pgd_with(
            step="(lambda before: torch.min(torch.max(before + direction * alpha * "
            "input_gradient(model, before, y).sign(), before - eps), before + eps))"
            "({at})",
            project="x_adv",
        ),
        pattern="eps",
    ),
    Bug("pgd without projection", items("pgd", "x_adv", "x_adv_valid"), pgd_with(project="x_adv")),
    Bug(
        "pgd random start outside the ball (normal noise)",
        items("pgd", "x_adv"),
        pgd_with(start="x0 + eps * torch.randn(x.shape, generator=generator, dtype=x.dtype)"),
        pattern="eps",
    ),
    Bug(
        "pgd random start ignores the generator",
        items("pgd", "x_adv"),
        pgd_with(start="x0 + (2 * torch.rand_like(x0) - 1) * eps"),
        pattern="eps",
    ),
    Bug("pgd gradient always at the original x", items("pgd", "x_adv"), pgd_with(gradient_at="x0")),
    Bug(
        "pgd attacks in train mode",
        items("pgd", "x_adv", "model_untouched"),
        """
def _bug_gradient(model, x, y):
    leaf = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(F.cross_entropy(model(leaf), y), leaf)[0]
"""
        + pgd_with(step=BUG_STEP),
    ),
    Bug(
        "pgd does not restore the mode",
        items("pgd", "mode_restored"),
        """
def _bug_gradient(model, x, y):
    model.eval()
    leaf = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(F.cross_entropy(model(leaf), y), leaf)[0]
"""
        + pgd_with(step=BUG_STEP),
    ),
    Bug(
        "pgd accumulates gradients into the parameters",
        items("pgd", "model_untouched"),
        """
def _bug_gradient(model, x, y):
    was_training = model.training
    model.eval()
    leaf = x.detach().clone().requires_grad_(True)
    F.cross_entropy(model(leaf), y).backward()
    model.train(was_training)
    return leaf.grad
"""
        + pgd_with(step=BUG_STEP),
    ),
    # ---------------------------------------------------------------------- apply_patch
    Bug(
        "apply_patch pastes into the images in place",
        items("apply_patch", "patched", "images_untouched"),
        """
def apply_patch(images, patch, top, left):
    n, c, h, w = images.shape
    kh, kw = patch.shape[-2:]
    tops = torch.as_tensor(top).expand(n)
    lefts = torch.as_tensor(left).expand(n)
    out = images.clone()
    for i in range(n):
        out[i, :, tops[i]:tops[i] + kh, lefts[i]:lefts[i] + kw] = patch
    images.data.copy_(out.detach())
    return out
""",
    ),
    Bug(
        "apply_patch swaps top and left",
        items("apply_patch", "patched", "grad_patch", "images_untouched"),
        """
_apply_patch_reference = apply_patch
def apply_patch(images, patch, top, left):
    return _apply_patch_reference(images, patch, left, top)
""",
    ),
    Bug(
        "apply_patch adds the patch",
        items("apply_patch", "patched"),
        """
_apply_patch_reference = apply_patch
def apply_patch(images, patch, top, left):
    return images + _apply_patch_reference(torch.zeros_like(images), patch, top, left)
""",
    ),
    Bug(
        "apply_patch detaches the patch",
        items("apply_patch", "grad_patch"),
        """
_apply_patch_reference = apply_patch
def apply_patch(images, patch, top, left):
    return _apply_patch_reference(images, patch.detach(), top, left)
""",
    ),
    Bug(
        "apply_patch uses the first image's position",
        items("apply_patch", "patched", "grad_patch"),
        """
_apply_patch_reference = apply_patch
def apply_patch(images, patch, top, left):
    first = lambda p: int(torch.as_tensor(p).reshape(-1)[0])
    return _apply_patch_reference(images, patch, first(top), first(left))
""",
    ),
    # ---------------------------------------------------------------------- train_patch
    Bug(
        "train_patch at a fixed position",
        items("train_patch", "success"),
        """
def train_patch(model, images, target_class, patch_size, steps, lr, generator=None):
    n, c, h, w = images.shape
    param = torch.zeros(c, patch_size, patch_size, dtype=images.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=lr)
    targets = torch.full((n,), target_class, dtype=torch.int64)
    was_training = model.training
    model.eval()
    top = torch.randint(0, h - patch_size + 1, (1,), generator=generator)
    left = torch.randint(0, w - patch_size + 1, (1,), generator=generator)
    for _ in range(steps):
        loss = F.cross_entropy(model(apply_patch(images, torch.sigmoid(param), top, left)), targets)
        (param.grad,) = torch.autograd.grad(loss, param)
        optimizer.step()
    model.train(was_training)
    return torch.sigmoid(param).detach()
""",
    ),
    Bug(
        "train_patch moves away from the target",
        items("train_patch", "success"),
        """
def train_patch(model, images, target_class, patch_size, steps, lr, generator=None):
    n, c, h, w = images.shape
    param = torch.zeros(c, patch_size, patch_size, dtype=images.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=lr, maximize=True)
    targets = torch.full((n,), target_class, dtype=torch.int64)
    was_training = model.training
    model.eval()
    for _ in range(steps):
        top = torch.randint(0, h - patch_size + 1, (n,), generator=generator)
        left = torch.randint(0, w - patch_size + 1, (n,), generator=generator)
        loss = F.cross_entropy(model(apply_patch(images, torch.sigmoid(param), top, left)), targets)
        (param.grad,) = torch.autograd.grad(loss, param)
        optimizer.step()
    model.train(was_training)
    return torch.sigmoid(param).detach()
""",
    ),
    Bug(
        "train_patch draws positions from the global RNG",
        items("train_patch", "reproducible"),
        """
_train_patch_reference = train_patch
def train_patch(model, images, target_class, patch_size, steps, lr, generator=None):
    return _train_patch_reference(model, images, target_class, patch_size, steps, lr, None)
""",
    ),
    Bug(
        "train_patch returns an unbounded patch",
        items("train_patch", "patch_valid"),
        """
_train_patch_reference = train_patch
def train_patch(model, images, target_class, patch_size, steps, lr, generator=None):
    patch = _train_patch_reference(model, images, target_class, patch_size, steps, lr, generator)
    return torch.logit(patch)
""",
    ),
    Bug(
        "train_patch leaves gradients in the model",
        items("train_patch", "model_untouched"),
        """
_train_patch_reference = train_patch
def train_patch(model, images, target_class, patch_size, steps, lr, generator=None):
    patch = _train_patch_reference(model, images, target_class, patch_size, steps, lr, generator)
    F.cross_entropy(model(images), torch.full((len(images),), target_class)).backward()
    return patch
""",
    ),
    # ----------------------------------------------------------- accuracy_under_attack
    Bug(
        "accuracy attacks under torch.no_grad",
        items("accuracy_under_attack", "accuracy", "attack_batches", "model_untouched"),
        """
def accuracy_under_attack(model, x, y, attack, batch_size):
    was_training = model.training
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            x_adv = xb if attack is None else attack(model, xb, yb)
            model.eval()
            correct += int((model(x_adv).argmax(dim=1) == yb).sum())
    model.train(was_training)
    return correct / len(x)
""",
        pattern="eps",
    ),
    Bug(
        "accuracy is a mean of batch accuracies",
        items("accuracy_under_attack", "accuracy"),
        """
def accuracy_under_attack(model, x, y, attack, batch_size):
    was_training = model.training
    accuracies = []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        x_adv = xb if attack is None else attack(model, xb, yb)
        model.eval()
        with torch.no_grad():
            accuracies.append((model(x_adv).argmax(dim=1) == yb).double().mean().item())
    model.train(was_training)
    return sum(accuracies) / len(accuracies)
""",
    ),
    Bug(
        "accuracy predicts in train mode",
        items("accuracy_under_attack", "accuracy", "model_untouched"),
        """
def accuracy_under_attack(model, x, y, attack, batch_size):
    correct = 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        x_adv = xb if attack is None else attack(model, xb, yb)
        with torch.no_grad():
            correct += int((model(x_adv).argmax(dim=1) == yb).sum())
    return correct / len(x)
""",
        pattern="mode",
    ),
    Bug(
        "accuracy attacks the whole set at once",
        items("accuracy_under_attack", "attack_batches"),
        """
def accuracy_under_attack(model, x, y, attack, batch_size):
    was_training = model.training
    x_adv = x if attack is None else attack(model, x, y)
    model.eval()
    with torch.no_grad():
        correct = int((model(x_adv).argmax(dim=1) == y).sum())
    model.train(was_training)
    return correct / len(x)
""",
    ),
    # ------------------------------------------------------- adversarial_training_step
    Bug(
        "adversarial step without zero_grad",
        items("adversarial_training_step", "parameters", "loss"),
        """
def adversarial_training_step(model, optimizer, x, y, eps):
    x_adv = fgsm(model, x, y, eps)
    model.train()
    loss = F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
    ),
    Bug(
        "adversarial step trains on the clean batch",
        items("adversarial_training_step", "parameters", "loss"),
        """
def adversarial_training_step(model, optimizer, x, y, eps):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
    ),
    Bug(
        "adversarial step updates in eval mode",
        items("adversarial_training_step", "parameters", "loss", "mode"),
        """
def adversarial_training_step(model, optimizer, x, y, eps):
    x_adv = fgsm(model, x, y, eps)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
    ),
    Bug(
        "adversarial step returns the loss after the update",
        items("adversarial_training_step", "loss"),
        """
_step_reference = adversarial_training_step
def adversarial_training_step(model, optimizer, x, y, eps):
    _step_reference(model, optimizer, x, y, eps)
    x_adv = fgsm(model, x, y, eps)
    model.eval()
    with torch.no_grad():
        loss = F.cross_entropy(model(x_adv), y)
    model.train()
    return loss.item()
""",
    ),
]
