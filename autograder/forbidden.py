"""Static scan of a submission for forbidden API use ("from scratch" chapters).

Runs in the judge on the submission's source; nothing is executed. Every top-level definition
(a class, a function, an assigned name, or a statement that patches one of them) is scanned
for references to forbidden names, resolved through import aliases and simple re-bindings.
A check is charged with the hits of every definition reachable from the names it uses, so a
helper function that calls ``F.linear`` on behalf of ``Linear`` is found too.

Name forms in a chapter's ``FORBIDDEN``:
    ``torch.nn``        the module and everything under it;
    ``torch.softmax``   one function;
    ``Tensor.backward`` a tensor method; for ``backward`` only calls that look like autograd's
                        (no positional argument, or an autograd keyword) count, since the
                        students' own layers have a ``backward(dupstream)`` method.
In a chapter with a forbidden list, dynamic lookups that could hide a call are forbidden as
well: ``getattr`` with a computed name on a module from which a forbidden name is reachable
(``getattr(torch, name)`` when ``torch.softmax`` is forbidden; ``getattr(F, name)`` is fine
when nothing under ``torch.nn.functional`` is), ``getattr`` passed as a value,
``operator.attrgetter``/``methodcaller``, ``sys.modules``, ``eval``, ``exec``,
``__import__``, ``importlib``, ``globals()``, ``vars()``, ``__dict__``, ``__getattribute__``;
so are torch's private internals (``torch._C._nn.linear``, ``torch._refs``,
``torch._C.DisableTorchFunction`` ...), which reach the same operators around the names listed
and can switch the run-time trap off. A computed ``getattr`` on any other object (``self``, a
tensor) is not flagged: the run-time trap catches a forbidden function or tensor method however
it was looked up. A forbidden tensor method is also caught when named through the class
(``torch.Tensor.backward(loss)``). :func:`describe_rules` states all of this to the student.
"""

from __future__ import annotations

import ast
from collections import defaultdict

from autograder.submission import describe_location

DYNAMIC_CALLS = {"eval", "exec", "compile", "__import__", "globals", "vars", "locals"}
DYNAMIC_ATTRIBUTES = {"__dict__", "__getattribute__", "__builtins__", "__globals__"}
AUTOGRAD_KEYWORDS = {"gradient", "retain_graph", "create_graph", "inputs"}
DYNAMIC_NAMES = ("sys.modules", "operator.attrgetter", "operator.methodcaller")


def _indirect(resolved: str, methods: set[str]) -> str | None:
    """Why a resolved name that is not itself listed still reaches forbidden API, if it does."""
    parts = resolved.split(".")
    if any(resolved == name or resolved.startswith(name + ".") for name in DYNAMIC_NAMES):
        return f"dynamic lookup {resolved}"
    if parts[0] == "torch" and any(
        part.startswith("_") and not part.endswith("__") for part in parts[1:]
    ):
        return f"torch private internals {resolved}"
    if parts[:2] == ["torch", "Tensor"] and len(parts) > 2 and parts[2] in methods:
        return f"Tensor.{parts[2]} via {resolved}"
    return None


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The fully qualified name an expression like ``F.linear`` refers to, if known."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    base = aliases.get(node.id)
    if base is None:
        return None
    return ".".join([base, *reversed(parts)])


def _collect_aliases(trees: list[ast.Module]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for tree in trees:  # simple re-bindings: lin = F.linear ; G = F
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                resolved = _dotted(node.value, aliases)
                if resolved:
                    aliases[node.targets[0].id] = resolved
    return aliases


def _matches(name: str, forbidden: tuple[str, ...]) -> str | None:
    for entry in forbidden:
        if not entry.startswith("Tensor.") and (name == entry or name.startswith(entry + ".")):
            return entry
    return None


def _reaches_forbidden(base: str, forbidden: tuple[str, ...]) -> bool:
    """Whether some forbidden name lies at or under the module or class ``base``."""
    for entry in forbidden:
        owner = "torch.Tensor" + entry[len("Tensor") :] if entry.startswith("Tensor.") else entry
        if owner == base or owner.startswith(base + ".") or base.startswith(owner + "."):
            return True
    return False


def _hits_in(
    node: ast.AST, aliases: dict[str, str], forbidden: tuple[str, ...]
) -> list[tuple[str, int]]:
    """(what was found, its line) for every forbidden use inside ``node``."""
    hits: list[tuple[str, int]] = []
    methods = {entry.split(".", 1)[1] for entry in forbidden if entry.startswith("Tensor.")}
    covered: set[int] = set()  # inner parts of a chain already reported (torch.nn in torch.nn.X)
    called = {id(sub.func) for sub in ast.walk(node) if isinstance(sub, ast.Call)}
    for sub in ast.walk(node):
        line = getattr(sub, "lineno", 0)
        if isinstance(sub, (ast.Name, ast.Attribute)) and id(sub) not in covered:
            resolved = _dotted(sub, aliases)
            entry = _matches(resolved, forbidden) if resolved else None
            indirect = _indirect(resolved, methods) if resolved and not entry else None
            if entry or indirect:
                hits.append((indirect or str(resolved), line))
                covered.update(id(inner) for inner in ast.walk(sub))
            if isinstance(sub, ast.Name) and sub.id == "getattr" and id(sub) not in called:
                hits.append(("getattr passed as a value", line))
            if isinstance(sub, ast.Attribute) and sub.attr in DYNAMIC_ATTRIBUTES:
                hits.append((f"dynamic attribute access .{sub.attr}", line))
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Name) and func.id in DYNAMIC_CALLS:
                hits.append((f"{func.id}()", line))
            if isinstance(func, ast.Name) and func.id == "getattr" and len(sub.args) >= 2:
                name_arg = sub.args[1]
                if isinstance(name_arg, ast.Constant) and isinstance(name_arg.value, str):
                    base = _dotted(sub.args[0], aliases)
                    target = f"{base}.{name_arg.value}" if base else None
                    if target and _matches(target, forbidden):
                        hits.append((f"{target} via getattr", line))
                    elif name_arg.value in methods:
                        hits.append((f"Tensor.{name_arg.value} via getattr", line))
                else:
                    base = _dotted(sub.args[0], aliases)
                    if base and _reaches_forbidden(base, forbidden):
                        hits.append((f"getattr({base}, <computed name>)", line))
            receiver = func.value if isinstance(func, ast.Attribute) else None
            own_method = (
                isinstance(receiver, ast.Call)
                and isinstance(receiver.func, ast.Name)
                and receiver.func.id == "super"
            ) or (isinstance(receiver, ast.Name) and receiver.id == "self")
            if isinstance(func, ast.Attribute) and func.attr in methods and not own_method:
                if (
                    func.attr != "backward"
                    or not sub.args
                    or any(kw.arg in AUTOGRAD_KEYWORDS for kw in sub.keywords)
                ):
                    hits.append((f"Tensor.{func.attr}()", line))
            resolved = _dotted(func, aliases) if isinstance(func, ast.Attribute) else None
            if resolved and resolved.startswith("importlib"):
                hits.append((resolved, line))
    return hits


def _function_at(stmt: ast.stmt, line: int) -> str:
    """The qualified name of the innermost function or class of ``stmt`` holding ``line``."""
    found = ""

    def visit(node: ast.AST, prefix: str) -> None:
        nonlocal found
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if child.lineno <= line <= (child.end_lineno or child.lineno):
                    found = name
                    visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.Module(body=[stmt], type_ignores=[]), "")
    return found


def defined_names(stmt: ast.stmt) -> list[str]:
    """The top-level names ``stmt`` defines or patches (``Linear.forward = f`` patches Linear)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    targets: list[ast.AST] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        targets = [stmt.target]
    names = []
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.append(node.id)
                break
    return names


class ForbiddenScan:
    """The result of scanning a submission: hits per definition and the reference graph."""

    def __init__(self, cells: list[tuple[int, str]], forbidden: tuple[str, ...]):
        self.forbidden = forbidden
        self.hits: dict[str, list[str]] = defaultdict(list)
        self.references: dict[str, set[str]] = defaultdict(set)
        if not forbidden:
            return
        parsed = []
        for number, source in cells:
            try:
                parsed.append((number, source, ast.parse(source)))
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
        aliases = _collect_aliases([tree for _, _, tree in parsed])
        for number, source, tree in parsed:
            lines = source.splitlines()
            for stmt in tree.body:
                names = defined_names(stmt)
                if not names:
                    continue
                found = [
                    f"{hit} ({describe_location(number, lines, line, _function_at(stmt, line))})"
                    for hit, line in _hits_in(stmt, aliases, forbidden)
                ]
                used = {node.id for node in ast.walk(stmt) if isinstance(node, ast.Name)}
                for name in names:
                    self.hits[name].extend(found)
                    self.references[name] |= used - {name}

    def hits_for(self, uses: tuple[str, ...], replaced: tuple[str, ...] = ()) -> list[str]:
        """Forbidden uses in ``uses`` and every definition they reach, except through
        ``replaced`` (names the check swaps for the grader's own while it runs)."""
        seen, stack, hits = set(replaced), list(uses), []
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            for hit in self.hits.get(name, []):
                if hit not in hits:
                    hits.append(hit)
            stack.extend(self.references.get(name, ()))
        return hits


def forbidden_message(hits: list[str], uses: tuple[str, ...] | list[str]) -> str:
    """What the student reads when ``hits`` (from :meth:`ForbiddenScan.hits_for`) cost the
    items of a check that uses ``uses``: the judge's message and the public checks' alike."""
    shown = "; ".join(hits[:3]) + (" ..." if len(hits) > 3 else "")
    return (
        f"uses API this chapter asks you to write yourself: {shown}. "
        f"Remove it from {', '.join(uses)} and its helpers."
    )


RULES_MARKER = "{{FORBIDDEN_RULES}}"


def describe_rules(forbidden: tuple[str, ...] | list[str]) -> str:
    """The notebook's statement of what the grader forbids and how it finds it (markdown).

    The build replaces :data:`RULES_MARKER` in a master's markdown with this text, generated
    from the chapter's ``FORBIDDEN``, so the list students read is the list the grader enforces.
    """
    if not forbidden:
        return "**Rules the grader enforces.** No library function is forbidden in this chapter."
    names = ", ".join(f"`{name}`" for name in forbidden)
    return (
        "**Rules the grader enforces.** Inside the code you submit, these are forbidden "
        f"(a module name covers everything under it): {names}. "
        "How it is checked: the grader reads your code as text before running it and follows "
        "imports, aliases (`import torch.nn.functional as F`), re-bindings and helper "
        "functions; while your code runs, a trap records every call that reaches these "
        "functions, however it was looked up. Lookups that hide a name from the reading are "
        "forbidden too: `getattr(module, name)` with a computed `name` on a module under which "
        "a forbidden name lies (e.g. `getattr(torch, name)`; a computed `getattr` on your own "
        "objects or on a module with nothing forbidden is fine), `getattr` passed as a value, "
        "`eval`/`exec`/`compile`, `__import__`/`importlib`, `globals()`/`vars()`/`__dict__`, "
        "`sys.modules`, `operator.attrgetter`/`methodcaller`, and torch's private internals "
        "(`torch._C`, `torch._refs`, ...). A hit costs the items of the class or function that "
        "uses it (directly or through a helper), and the message names the call and its cell. "
        "Experiment cells (`# EXPERIMENT`) are not graded, so anything is allowed there."
    )
