#!/usr/bin/env python3
"""A syntax sanity pass for Julia sources, for machines without Julia.

Checks that every file tokenizes (strings, comments and characters are closed), that brackets
balance, and that every block keyword (`function`, `if`, `for`, `struct`, `do`, `begin`, ...)
has its `end` — telling generator clauses (`[x for x in v if p]`) and `end`/`begin` used as
indices (`v[end]`) apart. When the `tree_sitter_julia` package is importable, each file is also
parsed with that grammar and its syntax errors are reported.

Usage: julia_lint.py PATH... (files or folders). Exit status 1 on any problem.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_declarations import DeclError, _jl_tokens  # noqa: E402

BLOCK_KEYWORDS = {"function", "macro", "module", "baremodule", "struct", "if", "for", "while",
                  "let", "begin", "quote", "try", "do"}
OPENING = {"(": ")", "[": "]", "{": "}"}


def lint_source(source: str, name: str = "<source>") -> list[str]:
    try:
        tokens = _jl_tokens(source)
    except DeclError as e:
        return [f"{name}: {e}"]
    problems: list[str] = []
    stack: list[tuple[str, str, int]] = []  # ("block", keyword, line) / ("bracket", char, line)

    def in_brackets() -> str | None:
        """The innermost bracket that is not inside a block, if any."""
        for kind, what, _ in reversed(stack):
            if kind == "block":
                return None
            return what
        return None

    def inside_index() -> bool:
        for kind, what, _ in reversed(stack):
            if kind == "block":
                return False
            if what == "[":
                return True
        return False

    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        if tok.kind == "op" and tok.text in OPENING:
            stack.append(("bracket", tok.text, tok.line))
        elif tok.kind == "op" and tok.text in OPENING.values():
            if not stack or stack[-1][0] != "bracket":
                opened = f" (a `{stack[-1][1]}` block from line {stack[-1][2]} is open)" \
                    if stack else ""
                problems.append(f"{name}:{tok.line}: unexpected `{tok.text}`{opened}")
                continue
            _, what, line = stack.pop()
            if OPENING[what] != tok.text:
                problems.append(f"{name}:{tok.line}: `{tok.text}` closes `{what}` of line {line}")
        elif tok.kind == "id" and prev is not None and prev.text == "." and prev.kind == "op":
            continue  # a field or a qualified name (Base.end is not a keyword)
        elif tok.kind == "id" and tok.text == "end":
            if stack and stack[-1][0] == "block":
                stack.pop()
            elif inside_index():
                continue  # v[end]
            else:
                problems.append(f"{name}:{tok.line}: `end` without a block to close")
        elif tok.kind == "id" and tok.text in ("abstract", "primitive") and i + 1 < len(tokens) \
                and tokens[i + 1].text == "type":
            stack.append(("block", tok.text + " type", tok.line))
        elif tok.kind == "id" and tok.text in BLOCK_KEYWORDS:
            bracket = in_brackets()
            if tok.text == "begin" and inside_index():
                continue  # v[begin]
            if tok.text in ("for", "if") and bracket is not None:
                continue  # a generator or comprehension clause
            stack.append(("block", tok.text, tok.line))
    for kind, what, line in stack:
        problems.append(f"{name}:{line}: `{what}` is never closed" if kind == "block"
                        else f"{name}:{line}: `{what}` is never closed")
    return problems


def tree_sitter_problems(source: bytes, name: str) -> list[str]:
    try:
        import tree_sitter
        import tree_sitter_julia
    except ImportError:
        return []
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_julia.language()))
    problems = []

    def walk(node):
        if node.type == "ERROR" or node.is_missing:
            what = "missing " + node.type if node.is_missing else "syntax error"
            problems.append(f"{name}:{node.start_point[0] + 1}: {what} (tree-sitter-julia)")
            return
        for child in node.children:
            walk(child)

    walk(parser.parse(source).root_node)
    return problems


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    files: list[Path] = []
    for arg in argv:
        path = Path(arg)
        files.extend(sorted(path.rglob("*.jl")) if path.is_dir() else [path])
    problems = []
    for path in files:
        source = path.read_text(encoding="utf-8")
        problems += lint_source(source, str(path))
        problems += tree_sitter_problems(source.encode("utf-8"), str(path))
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"julia lint: {len(files)} files: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
