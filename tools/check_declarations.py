#!/usr/bin/env python3
"""Checks the bindings' foreign declarations against include/natsbridge.h.

No binding is ever loaded: the declarations are read as text, so the check runs where no Julia,
Node or working Python binding exists. Read are

- the C header (cbindgen's output): functions, opaque handles, structs, aliases, callbacks;
- Python: the `SIGNATURES = {"nb_x": (restype, [argtypes])}` dict of
  bindings/python/natsbridge/_ffi.py (ctypes spellings, parsed with `ast`), its callback types
  (`NAME = CFUNCTYPE(...)`), aliases (`NAME = POINTER(...)`) and `Structure` classes;
- Node: the koffi C prototypes in bindings/node/lib/ffi.js (`lib.func('...')`,
  `koffi.proto('...')`, `koffi.opaque`, `koffi.alias`, `koffi.struct`);
- Julia: every `ccall` / `@ccall` of a `nb_` function under bindings/julia, and the Julia
  structs that mirror a header struct.

Each declared function must exist in the header with the same number of arguments and
compatible types; each mirrored struct must have the same fields. The rules are deliberately
narrow (see `compatible`): integers match only the same width and signedness as spelled in the
header; a pointer matches only a pointer, `void*`-style pointers match any pointer,
C strings only `char*`, byte pointers only `uint8_t*`, double pointers only `T**`, and a
function-pointer parameter only `void*` or a callback type of the same signature.

Exit status: 0 when everything agrees, 1 on any mismatch (each reported with file:line, the
binding's declaration and the header's), 2 on a usage error. A missing binding file is reported
as not checked (an error with --require-all); a binding file without declarations is an error.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HEADER = "include/natsbridge.h"
DEFAULT_PYTHON = "bindings/python/natsbridge/_ffi.py"
DEFAULT_NODE = "bindings/node/lib/ffi.js"
DEFAULT_JULIA = "bindings/julia"


class DeclError(Exception):
    """A declaration that cannot be read; reported like a mismatch."""


# --------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------

# Canonical C spellings of the scalar types, shared by the header and every binding.
C_KEYWORDS = {"void", "char", "short", "int", "long", "float", "double", "signed", "unsigned",
              "bool", "_Bool"}
_CANONICAL_WORDS = {
    "_Bool": "bool",
    "unsigned": "unsigned int",
    "signed": "int",
    "signed int": "int",
    "long int": "long",
    "unsigned long int": "unsigned long",
    "long long int": "long long",
    "unsigned long long int": "unsigned long long",
    "signed char": "signed char",
    "short int": "short",
    "unsigned short int": "unsigned short",
}


def canonical_scalar(words: str) -> str:
    words = " ".join(words.split())
    return _CANONICAL_WORDS.get(words, words)


@dataclass(frozen=True)
class CType:
    """A header type: `base` with `ptr` levels of pointer (`const` is dropped)."""

    base: str
    ptr: int = 0
    name: str = ""  # the parameter's name, for messages

    def __str__(self) -> str:
        return self.base + (" " + "*" * self.ptr if self.ptr else "")


@dataclass(frozen=True)
class CFunc:
    name: str
    ret: CType
    params: tuple[CType, ...]
    line: int
    text: str = ""  # the declaration as the header spells it

    def __str__(self) -> str:
        return self.text or f"{self.name}(...)"


def _c_join(tokens) -> str:
    """Tokens back to C text: `const char *nb_version(void)`."""
    out = ""
    for text, _ in tokens:
        if text in ("(", ")", ",") or not out or out[-1] in "(*":
            out += text
        elif text == "*":
            out += " *"
        else:
            out += " " + text
    return re.sub(r" +", " ", out.replace(",", ", "))


@dataclass(frozen=True)
class BType:
    """A binding's type, language-neutral.

    kind: 'scalar' (name: canonical C name), 'void', 'voidptr' (any pointer), 'cstring'
    (a `char*`), 'ptr' (target: the pointee), 'struct' (name), 'callback' (name, sig).
    `spelled` is the binding's own spelling, for messages.
    """

    kind: str
    spelled: str
    name: str = ""
    target: "BType | None" = None
    sig: "BSig | None" = None


@dataclass(frozen=True)
class BSig:
    ret: BType
    params: tuple[BType, ...]


@dataclass
class Decl:
    """One foreign declaration of a binding."""

    name: str
    ret: BType
    params: list[BType]
    path: Path
    line: int
    text: str  # the declaration as written (shortened)


@dataclass
class StructDecl:
    name: str
    fields: list[tuple[str, BType]]
    path: Path
    line: int
    mutable: bool = False


@dataclass
class Binding:
    language: str
    paths: list[Path]
    decls: list[Decl] = field(default_factory=list)
    structs: list[StructDecl] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# The C header
# --------------------------------------------------------------------------------------------

_C_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<pre>\#[^\n]*(?:\\\n[^\n]*)*)
  | (?P<str>"(?:\\.|[^"\\])*")
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>\d\w*)
  | (?P<op>.)
""", re.S | re.X)


@dataclass
class Header:
    path: Path
    functions: dict[str, CFunc] = field(default_factory=dict)
    opaque: set[str] = field(default_factory=set)
    structs: dict[str, list[CType]] = field(default_factory=dict)  # fields carry their names
    aliases: dict[str, CType] = field(default_factory=dict)
    callbacks: dict[str, CFunc] = field(default_factory=dict)

    def type_names(self) -> set[str]:
        return self.opaque | set(self.structs) | set(self.aliases) | set(self.callbacks)

    def resolve(self, t: CType) -> CType:
        seen = set()
        while t.base in self.aliases and t.base not in seen:
            seen.add(t.base)
            alias = self.aliases[t.base]
            t = CType(alias.base, alias.ptr + t.ptr, t.name)
        return t

    def spelled(self, t: CType) -> str:
        """`nb_status` → `nb_status (= int32_t)`: the header's spelling with what it means."""
        resolved = self.resolve(t)
        return str(t) if resolved.base == t.base else f"{t} (= {resolved})"


def _c_tokens(text: str) -> list[tuple[str, int]]:
    tokens = []
    line = 1
    for m in _C_TOKEN.finditer(text):
        kind = m.lastgroup
        if kind in ("id", "num", "op", "str"):
            tokens.append((m.group(), line))
        line += m.group().count("\n")
    return tokens


def _split_statements(tokens):
    """Top-level statements (ending with ';'), skipping `extern "C" {` wrappers."""
    stmt, depth, i = [], 0, 0
    while i < len(tokens):
        tok, line = tokens[i]
        if depth == 0 and not stmt and tok == "extern" and i + 2 < len(tokens) \
                and tokens[i + 1][0] == '"C"' and tokens[i + 2][0] == "{":
            i += 3
            continue
        if depth == 0 and not stmt and tok == "}":  # the end of extern "C" { ... }
            i += 1
            continue
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
        if tok == ";" and depth == 0:
            if stmt:
                yield stmt
            stmt = []
        else:
            stmt.append((tok, line))
        i += 1
    if stmt:
        raise DeclError(f"unterminated declaration at line {stmt[0][1]}")


def _split_commas(tokens, opening="({[", closing=")}]"):
    parts, part, depth = [], [], 0
    for tok in tokens:
        text = tok[0]
        if text in opening:
            depth += 1
        elif text in closing:
            depth -= 1
        if text == "," and depth == 0:
            parts.append(part)
            part = []
        else:
            part.append(tok)
    if part or parts:
        parts.append(part)
    return parts


def _c_decl(tokens, known_types: set[str], allow_unnamed: bool) -> CType:
    """`const nb_client *client` → CType('nb_client', 1, 'client')."""
    words, ptr = [], 0
    for text, _ in tokens:
        if text in ("const", "volatile", "restrict", "struct", "enum"):
            continue
        if text == "*":
            ptr += 1
        elif text == "[":
            ptr += 1
        elif text in ("]",) or text.isdigit():
            continue
        elif re.fullmatch(r"[A-Za-z_]\w*", text):
            words.append(text)
        else:
            raise DeclError(f"unsupported declaration `{' '.join(t for t, _ in tokens)}`")
    name = ""
    if len(words) >= 2 and words[-1] not in C_KEYWORDS and words[-1] not in known_types \
            and not re.fullmatch(r"u?int\d+_t|s?size_t|u?intptr_t", words[-1]):
        name = words.pop()
    elif not allow_unnamed and len(words) >= 2:
        name = words.pop()
    if not words:
        raise DeclError(f"no type in `{' '.join(t for t, _ in tokens)}`")
    return CType(canonical_scalar(" ".join(words)), ptr, name)


def _c_params(tokens, known: set[str]) -> tuple[CType, ...]:
    parts = _split_commas(tokens)
    if len(parts) == 1 and [t for t, _ in parts[0]] == ["void"]:
        return ()
    if parts == [[]] or not parts:
        return ()
    return tuple(_c_decl(p, known, allow_unnamed=True) for p in parts)


def _matching(tokens, start: int) -> int:
    """Index of the bracket closing the one at `start`."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    opening = tokens[start][0]
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i][0] == opening:
            depth += 1
        elif tokens[i][0] == pairs[opening]:
            depth -= 1
            if depth == 0:
                return i
    raise DeclError(f"unbalanced `{opening}` at line {tokens[start][1]}")


def parse_header(path: Path) -> Header:
    header = Header(path)
    for stmt in _split_statements(_c_tokens(path.read_text(encoding="utf-8"))):
        _header_statement(header, stmt, set())
    return header


def _header_statement(header: Header, stmt, known: set[str]) -> None:
    words = [t for t, _ in stmt]
    line = stmt[0][1]
    if words[0] == "typedef":
        body = stmt[1:]
        if words[1] in ("struct", "union") and "{" in words:
            start = words.index("{")
            end = _matching(stmt, start)
            fields = []
            for member in _split_semicolons(stmt[start + 1:end]):
                fields.append(_c_decl(member, known, allow_unnamed=False))
            header.structs[words[-1]] = fields
        elif words[1] == "struct" and len(words) == 4:
            header.opaque.add(words[-1])
        elif "(" in words and words[words.index("(") + 1] == "*":
            # typedef RET (*NAME)(PARAMS);
            open1 = words.index("(")
            name = words[open1 + 2]
            open2 = open1 + 4
            if words[open1 + 3] != ")" or words[open2] != "(":
                raise DeclError(f"line {line}: unsupported function-pointer typedef")
            close2 = _matching(stmt, open2)
            ret = _c_decl(stmt[1:open1], known, allow_unnamed=True)
            header.callbacks[name] = CFunc(name, ret, _c_params(stmt[open2 + 1:close2], known), line,
                                           _c_join(stmt))
        elif words[1] == "enum":
            header.aliases[words[-1]] = CType("int")
        else:
            alias = _c_decl(body[:-1], known, allow_unnamed=True)
            header.aliases[words[-1]] = alias
        return
    if words[0] in ("struct", "union") and "{" in words and len(words) > 2:
        start = words.index("{")
        end = _matching(stmt, start)
        header.structs[words[1]] = [_c_decl(m, known, allow_unnamed=False)
                                    for m in _split_semicolons(stmt[start + 1:end])]
        return
    if "(" in words and words[-1] == ")" and "=" not in words:
        open_ = words.index("(")
        if _matching(stmt, open_) != len(stmt) - 1:
            raise DeclError(f"line {line}: unsupported declaration")
        name = words[open_ - 1]
        ret = _c_decl(stmt[:open_ - 1], known, allow_unnamed=True)
        func = CFunc(name, CType(ret.base, ret.ptr), _c_params(stmt[open_ + 1:-1], known), line,
                     _c_join(stmt))
        header.functions[name] = func


def _split_semicolons(tokens):
    parts, part = [], []
    for tok in tokens:
        if tok[0] == ";":
            if part:
                parts.append(part)
            part = []
        else:
            part.append(tok)
    if part:
        parts.append(part)
    return parts


# --------------------------------------------------------------------------------------------
# Compatibility
# --------------------------------------------------------------------------------------------

def compatible(b: BType, h: CType, header: Header) -> str | None:
    """None when the binding's type `b` may stand for the header's `h`; otherwise why not."""
    h = header.resolve(h)
    if h.ptr == 0 and h.base in header.callbacks:
        if b.kind == "voidptr":
            return None
        cb = b.target if b.kind == "ptr" and b.target and b.target.kind == "callback" else b
        if cb.kind != "callback":
            return "the header has a function pointer"
        return _signature_mismatch(cb.sig, header.callbacks[h.base], header)
    if h.ptr > 0:
        if b.kind == "voidptr":
            return None
        if b.kind == "cstring":
            return None if (h.base, h.ptr) == ("char", 1) else "a C string stands only for char*"
        if b.kind == "ptr":
            inner = compatible(b.target, CType(h.base, h.ptr - 1), header)
            return None if inner is None else f"pointee: {inner}"
        if b.kind == "callback":
            return "a callback where the header has a data pointer"
        return "a non-pointer where the header has a pointer"
    # A value of the header type.
    if h.base == "void":
        return None if b.kind == "void" else "the header returns nothing"
    if h.base in header.opaque or h.base in header.structs:
        if b.kind == "struct" and _same_name(b.name, h.base):
            return None
        return f"the header has the struct {h.base}"
    if b.kind == "scalar":
        return None if b.name == h.base else f"{b.name} is not {h.base}"
    if b.kind == "void":
        return "void where the header has a value"
    return "a pointer where the header has a value" if b.kind in (
        "ptr", "voidptr", "cstring", "callback") else f"{b.spelled} is not {h.base}"


def _same_name(binding: str, header: str) -> bool:
    norm = lambda s: s.replace("_", "").lower()  # noqa: E731 - nb_payload_in ~ NbPayloadIn
    return norm(binding) == norm(header)


def _signature_mismatch(sig: BSig | None, cfunc: CFunc, header: Header) -> str | None:
    if sig is None:
        return f"callback type without a known signature for {cfunc.name}"
    if len(sig.params) != len(cfunc.params):
        return (f"callback takes {len(sig.params)} arguments, {cfunc.name} takes "
                f"{len(cfunc.params)}")
    why = compatible(sig.ret, cfunc.ret, header)
    if why:
        return f"callback return: {why}"
    for i, (b, c) in enumerate(zip(sig.params, cfunc.params), 1):
        why = compatible(b, c, header)
        if why:
            return f"callback argument {i}: {why}"
    return None


def check_binding(binding: Binding, header: Header) -> list[str]:
    errors = list(binding.errors)
    for d in binding.decls:
        where = f"{_rel(d.path)}:{d.line}: {d.name}"
        func = header.functions.get(d.name)
        if func is None:
            errors.append(f"{where}: not in {_rel(header.path)} (declared as `{d.text}`)")
            continue
        problems = []
        if len(d.params) != len(func.params):
            problems.append(f"{len(d.params)} arguments, the header has {len(func.params)}")
        else:
            for i, (b, c) in enumerate(zip(d.params, func.params), 1):
                why = compatible(b, c, header)
                if why:
                    label = f"argument {i}" + (f" ({c.name})" if c.name else "")
                    problems.append(f"{label}: binding `{b.spelled}`, header "
                                    f"`{header.spelled(c)}`: {why}")
        why = compatible(d.ret, func.ret, header)
        if why:
            problems.append(f"return: binding `{d.ret.spelled}`, header "
                            f"`{header.spelled(func.ret)}`: {why}")
        for p in problems:
            errors.append(f"{where}: {p}\n    binding: {d.text}\n    header:  {func}")
    for s in binding.structs:
        errors.extend(_check_struct(s, header))
    return errors


def _check_struct(s: StructDecl, header: Header) -> list[str]:
    where = f"{_rel(s.path)}:{s.line}: struct {s.name}"
    name = next((n for n in header.structs if _same_name(s.name, n)), None)
    if name is None:
        return []  # not a mirror of a header struct
    fields = header.structs[name]
    problems = []
    if s.mutable:
        problems.append("declared `mutable`: an array of it would hold references, not the C "
                        "layout")
    if len(s.fields) != len(fields):
        problems.append(f"{len(s.fields)} fields, the header's {name} has {len(fields)}")
    else:
        for (fname, b), c in zip(s.fields, fields):
            why = compatible(b, c, header)
            if why:
                label = fname if fname == c.name else f"{fname} (header: {c.name})"
                problems.append(f"field {label}: binding `{b.spelled}`, "
                                f"header `{header.spelled(c)}`: {why}")
    return [f"{where}: {p}" for p in problems]


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# Python (ctypes)
# --------------------------------------------------------------------------------------------

CTYPES_SCALARS = {
    "c_int8": "int8_t", "c_uint8": "uint8_t", "c_ubyte": "uint8_t", "c_byte": "signed char",
    "c_int16": "int16_t", "c_uint16": "uint16_t", "c_int32": "int32_t", "c_uint32": "uint32_t",
    "c_int64": "int64_t", "c_uint64": "uint64_t", "c_int": "int", "c_uint": "unsigned int",
    "c_short": "short", "c_ushort": "unsigned short", "c_long": "long",
    "c_ulong": "unsigned long", "c_longlong": "long long", "c_ulonglong": "unsigned long long",
    "c_size_t": "size_t", "c_ssize_t": "ssize_t", "c_bool": "bool", "c_double": "double",
    "c_float": "float", "c_char": "char",
}


def parse_python(path: Path) -> Binding:
    binding = Binding("python", [path])
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as e:
        binding.errors.append(f"{_rel(path)}:{e.lineno}: not valid Python: {e.msg}")
        return binding
    names: dict[str, ast.expr] = {}      # module-level NAME = <expr>
    classes: dict[str, ast.ClassDef] = {}
    fields_assign: dict[str, ast.expr] = {}  # NAME._fields_ = [...]
    signatures = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            classes[node.name] = node
    for node in tree.body:
        targets, value = _assign_parts(node)
        for t in targets:
            if isinstance(t, ast.Name):
                names[t.id] = value
                if t.id == "SIGNATURES":
                    signatures = (node, value)
            elif isinstance(t, ast.Attribute) and t.attr == "_fields_" \
                    and isinstance(t.value, ast.Name):
                fields_assign[t.value.id] = value
    structs = {n for n, c in classes.items()
               if any(_dotted(b).split(".")[-1] in ("Structure", "Union") for b in c.bases)}
    conv = _PyTypes(path, names, structs)
    for cname in sorted(structs):
        cls = classes[cname]
        fields_node = fields_assign.get(cname)
        for stmt in cls.body:
            targets, value = _assign_parts(stmt)
            if any(isinstance(t, ast.Name) and t.id == "_fields_" for t in targets):
                fields_node = value
        if fields_node is None:
            continue
        try:
            fields = []
            for item in _literal_sequence(fields_node):
                if not isinstance(item, (ast.Tuple, ast.List)) or len(item.elts) < 2:
                    raise DeclError("a _fields_ item is not (name, type)")
                fname = item.elts[0].value if isinstance(item.elts[0], ast.Constant) else "?"
                fields.append((str(fname), conv.type(item.elts[1])))
            binding.structs.append(StructDecl(cname, fields, path, cls.lineno))
        except DeclError as e:
            binding.errors.append(f"{_rel(path)}:{cls.lineno}: struct {cname}: {e}")
    if signatures is None:
        binding.errors.append(f"{_rel(path)}: no module-level `SIGNATURES = {{...}}` dict")
        return binding
    node, value = signatures
    if not isinstance(value, ast.Dict):
        binding.errors.append(f"{_rel(path)}:{node.lineno}: SIGNATURES is not a dict literal")
        return binding
    for key, val in zip(value.keys, value.values):
        line = getattr(key, "lineno", node.lineno)
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            binding.errors.append(f"{_rel(path)}:{line}: a SIGNATURES key is not a string")
            continue
        text = f"{key.value}: {ast.get_source_segment(source, val) or '?'}"
        text = " ".join(text.split())
        try:
            if not (isinstance(val, ast.Tuple) and len(val.elts) == 2):
                raise DeclError("the value is not (restype, [argtypes])")
            ret = conv.type(val.elts[0], allow_void=True)
            params = [conv.type(a) for a in _literal_sequence(val.elts[1])]
        except DeclError as e:
            binding.errors.append(f"{_rel(path)}:{line}: {key.value}: {e}")
            continue
        binding.decls.append(Decl(key.value, ret, params, path, line, text))
    return binding


def _assign_parts(node):
    if isinstance(node, ast.Assign):
        return node.targets, node.value
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return [node.target], node.value
    return [], None


def _literal_sequence(node) -> list:
    if isinstance(node, (ast.List, ast.Tuple)):
        return list(node.elts)
    raise DeclError("expected a list or tuple literal")


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return _dotted(node.value) + "." + node.attr
    return ""


class _PyTypes:
    def __init__(self, path: Path, names: dict, structs: set[str]):
        self.path, self.names, self.structs = path, names, structs
        self.resolving: set[str] = set()

    def type(self, node, allow_void: bool = False) -> BType:
        spelled = ast.unparse(node)
        if isinstance(node, ast.Constant) and node.value is None:
            if not allow_void:
                raise DeclError("None is only a return type")
            return BType("void", "None")
        if isinstance(node, ast.Call):
            fname = _dotted(node.func).split(".")[-1]
            if fname == "POINTER" and len(node.args) == 1:
                return BType("ptr", spelled, target=self.type(node.args[0]))
            if fname in ("CFUNCTYPE", "PYFUNCTYPE") and node.args:
                sig = BSig(self.type(node.args[0], allow_void=True),
                           tuple(self.type(a) for a in node.args[1:]))
                return BType("callback", spelled, name=spelled, sig=sig)
            raise DeclError(f"unsupported type expression `{spelled}`")
        name = _dotted(node).split(".")[-1]
        if not name:
            raise DeclError(f"unsupported type expression `{spelled}`")
        if name in CTYPES_SCALARS:
            return BType("scalar", spelled, name=CTYPES_SCALARS[name])
        if name == "c_void_p":
            return BType("voidptr", spelled)
        if name == "c_char_p":
            return BType("cstring", spelled)
        if name in self.structs:
            return BType("struct", spelled, name=name)
        if name in self.names and name not in self.resolving:
            self.resolving.add(name)
            try:
                t = self.type(self.names[name], allow_void)
            finally:
                self.resolving.discard(name)
            if t.kind == "callback":
                return BType("callback", name, name=name, sig=t.sig)
            return BType(t.kind, name, t.name, t.target, t.sig)
        raise DeclError(f"unknown ctypes type `{spelled}`")


# --------------------------------------------------------------------------------------------
# Node (koffi)
# --------------------------------------------------------------------------------------------

KOFFI_SCALARS = {
    "int8": "int8_t", "int8_t": "int8_t", "uint8": "uint8_t", "uint8_t": "uint8_t",
    "int16": "int16_t", "int16_t": "int16_t", "uint16": "uint16_t", "uint16_t": "uint16_t",
    "int32": "int32_t", "int32_t": "int32_t", "uint32": "uint32_t", "uint32_t": "uint32_t",
    "int64": "int64_t", "int64_t": "int64_t", "uint64": "uint64_t", "uint64_t": "uint64_t",
    "char": "char", "uchar": "unsigned char", "unsigned char": "unsigned char",
    "short": "short", "ushort": "unsigned short", "unsigned short": "unsigned short",
    "int": "int", "uint": "unsigned int", "unsigned int": "unsigned int",
    "long": "long", "ulong": "unsigned long", "unsigned long": "unsigned long",
    "long long": "long long", "longlong": "long long",
    "unsigned long long": "unsigned long long", "ulonglong": "unsigned long long",
    "size_t": "size_t", "ssize_t": "ssize_t", "bool": "bool", "double": "double",
    "float64": "double", "float": "float", "float32": "float",
}
KOFFI_STRINGS = {"str", "string"}
KOFFI_ANNOTATIONS = {"_In_", "_Out_", "_Inout_", "const", "volatile", "struct", "enum"}


@dataclass
class _JsTok:
    kind: str
    text: str
    line: int
    value: str = ""  # a string literal's value


_JS_REGEX_BEFORE = {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void",
                    "throw", "case", "do", "else", "yield", "await"}


def _js_tokens(src: str) -> list[_JsTok]:
    """A JavaScript lexer good enough to find calls: comments, strings, template literals
    (with nested `${...}`), regular-expression literals, identifiers and punctuation."""
    tokens: list[_JsTok] = []
    i, line, n = 0, 1, len(src)

    def regex_allowed() -> bool:
        if not tokens:
            return True
        t = tokens[-1]
        if t.kind in ("num", "str", "tmpl", "regex"):
            return False
        if t.kind == "id":
            return t.text in _JS_REGEX_BEFORE
        return t.text not in (")", "]", "}")

    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            if j < 0:
                raise DeclError(f"line {line}: unterminated comment")
            line += src.count("\n", i, j)
            i = j + 2
        elif c in "'\"":
            j = _js_skip_quoted(src, i)
            tokens.append(_JsTok("str", src[i:j], line, _js_string_value(src[i:j])))
            i = j
        elif c == "`":
            j, plain = _js_skip_template(src, i)
            text = src[i:j]
            tokens.append(_JsTok("str" if plain else "tmpl", text, line,
                                 _js_string_value(text) if plain else ""))
            line += text.count("\n")
            i = j
        elif c == "/" and regex_allowed():
            j, in_class = i + 1, False
            while j < n and src[j] != "\n":
                if src[j] == "\\":
                    j += 2
                    continue
                if src[j] == "[":
                    in_class = True
                elif src[j] == "]":
                    in_class = False
                elif src[j] == "/" and not in_class:
                    break
                j += 1
            j += 1
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            tokens.append(_JsTok("regex", src[i:j], line))
            i = j
        elif c.isalpha() or c in "_$":
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] in "_$"):
                j += 1
            tokens.append(_JsTok("id", src[i:j], line))
            i = j
        elif c.isdigit():
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] in "._"):
                j += 1
            tokens.append(_JsTok("num", src[i:j], line))
            i = j
        else:
            tokens.append(_JsTok("op", c, line))
            i += 1
    return tokens


def _js_skip_quoted(src: str, i: int) -> int:
    quote, j = src[i], i + 1
    while j < len(src):
        if src[j] == "\\":
            j += 2
        elif src[j] == quote:
            return j + 1
        elif src[j] == "\n":
            break
        else:
            j += 1
    raise DeclError(f"unterminated string at offset {i}")


def _js_skip_template(src: str, i: int) -> tuple[int, bool]:
    """End of the template literal at i, and whether it has no ${...} (a plain string)."""
    j, plain = i + 1, True
    while j < len(src):
        if src[j] == "\\":
            j += 2
        elif src[j] == "`":
            return j + 1, plain
        elif src.startswith("${", j):
            plain = False
            j = _js_skip_braces(src, j + 1)
        else:
            j += 1
    raise DeclError(f"unterminated template literal at offset {i}")


def _js_skip_braces(src: str, i: int) -> int:
    """End (after '}') of the braced expression at src[i] == '{'."""
    depth, j = 0, i
    while j < len(src):
        c = src[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        elif c in "'\"":
            j = _js_skip_quoted(src, j)
            continue
        elif c == "`":
            j, _ = _js_skip_template(src, j)
            continue
        elif src.startswith("//", j) or src.startswith("/*", j):
            end = src.find("\n" if src[j + 1] == "/" else "*/", j + 2)
            j = len(src) if end < 0 else end + (0 if src[j + 1] == "/" else 2)
            continue
        j += 1
    raise DeclError(f"unbalanced ${{...}} at offset {i}")


def _js_string_value(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body,
                  flags=re.S)


def _js_call_args(tokens, open_index: int):
    """Arguments (lists of tokens) of the call whose '(' is at open_index, and the end index."""
    depth, args, arg = 0, [], []
    for i in range(open_index, len(tokens)):
        t = tokens[i].text
        if t in "([{":
            depth += 1
            if depth == 1:
                continue
        elif t in ")]}":
            depth -= 1
            if depth == 0:
                if arg:
                    args.append(arg)
                return args, i
        if depth == 1 and t == ",":
            args.append(arg)
            arg = []
        else:
            arg.append(tokens[i])
    raise DeclError(f"line {tokens[open_index].line}: unbalanced call")


def _js_string_arg(arg) -> str | None:
    """The value of `'a' + 'b'` (string literals joined by +), or None."""
    if not arg or len(arg) % 2 == 0:
        return None
    parts = []
    for i, tok in enumerate(arg):
        if i % 2 == 0:
            if tok.kind != "str":
                return None
            parts.append(tok.value)
        elif tok.text != "+":
            return None
    return "".join(parts)


class _CProto:
    """Parses koffi's C prototypes and type strings into BTypes."""

    def __init__(self, header: Header):
        self.header = header
        self.opaque: set[str] = set()
        self.aliases: dict[str, str] = {}
        self.protos: dict[str, BSig] = {}
        self.structs: set[str] = set()

    def known(self, name: str) -> bool:
        return (name in KOFFI_SCALARS or name in KOFFI_STRINGS or name == "void"
                or name in self.opaque or name in self.aliases or name in self.protos
                or name in self.structs or name in self.header.type_names())

    def type(self, text: str) -> tuple[BType, str]:
        """'const nb_client **out' → (ptr(ptr(struct nb_client)), 'out')."""
        spelled = " ".join(text.replace("*", " * ").split())
        words, stars, name = [], 0, ""
        for w in spelled.split():
            if w in KOFFI_ANNOTATIONS:
                continue
            if w == "*" and not name:
                stars += 1
            elif re.fullmatch(r"[A-Za-z_]\w*", w) and not name:
                if stars:
                    name = w  # `char *buf`: the parameter's name follows the stars
                else:
                    words.append(w)
            else:
                raise DeclError(f"unsupported type `{text}`")
        if not name and len(words) >= 2 and not self.known(words[-1]) \
                and words[-1] not in C_KEYWORDS:
            name = words.pop()
        if not words:
            raise DeclError(f"no type in `{text}`")
        base = " ".join(words)
        pretty = " ".join(w for w in spelled.split() if w != name or w in C_KEYWORDS)
        t = self._base(base, pretty)
        for _ in range(stars):
            t = BType("voidptr", pretty) if t.kind == "void" else BType("ptr", pretty, target=t)
        return BType(t.kind, pretty, t.name, t.target, t.sig), name

    def _base(self, base: str, spelled: str) -> BType:
        seen = set()
        while base in self.aliases and base not in seen:
            seen.add(base)
            base = self.aliases[base]
        if base in KOFFI_STRINGS:
            return BType("cstring", spelled)
        if base == "void":
            return BType("void", spelled)
        canon = canonical_scalar(base)
        if base in KOFFI_SCALARS:
            return BType("scalar", spelled, name=KOFFI_SCALARS[base])
        if canon in KOFFI_SCALARS.values():
            return BType("scalar", spelled, name=canon)
        if base in self.protos:
            return BType("callback", spelled, name=base, sig=self.protos[base])
        if base in self.opaque or base in self.structs or base in self.header.opaque \
                or base in self.header.structs:
            return BType("struct", spelled, name=base)
        if base in self.header.aliases:
            resolved = self.header.resolve(CType(base))
            t = self._base(resolved.base, spelled)
            for _ in range(resolved.ptr):
                t = BType("ptr", spelled, target=t)
            return t
        if base in self.header.callbacks:
            raise DeclError(f"`{base}` is the header's callback type; declare it with "
                            f"koffi.proto() first")
        raise DeclError(f"unknown type `{base}`")

    def prototype(self, text: str) -> tuple[str, BSig]:
        m = re.fullmatch(r"\s*(.*?)\b([A-Za-z_]\w*)\s*\((.*)\)\s*;?\s*", text, re.S)
        if not m:
            raise DeclError(f"not a C prototype: `{text}`")
        ret_text, name, params_text = m.groups()
        ret, _ = self.type(ret_text)
        params = []
        parts = [p for p in params_text.split(",")] if params_text.strip() else []
        if [p.strip() for p in parts] == ["void"]:
            parts = []
        for p in parts:
            if p.strip() == "...":
                raise DeclError("variadic prototypes are not supported")
            params.append(self.type(p)[0])
        return name, BSig(ret, tuple(params))


def parse_node(path: Path, header: Header) -> Binding:
    binding = Binding("node", [path])
    try:
        tokens = _js_tokens(path.read_text(encoding="utf-8"))
    except DeclError as e:
        binding.errors.append(f"{_rel(path)}: {e}")
        return binding
    proto = _CProto(header)
    calls = []  # (method, args, line), in source order
    for i, tok in enumerate(tokens[:-1]):
        if tok.kind == "id" and tokens[i + 1].text == "(" and i > 0 and tokens[i - 1].text == "." \
                and tok.text in ("func", "proto", "opaque", "alias", "struct"):
            try:
                args, _ = _js_call_args(tokens, i + 1)
            except DeclError as e:
                binding.errors.append(f"{_rel(path)}: {e}")
                continue
            calls.append((tok.text, args, tok.line))
    # Type declarations first, in order: opaque, alias, proto, struct.
    for method, args, line in calls:
        first = _js_string_arg(args[0]) if args else None
        try:
            if method == "opaque" and first:
                proto.opaque.add(first)
            elif method == "alias" and first and len(args) >= 2:
                target = _js_string_arg(args[1])
                if target is None:
                    raise DeclError("koffi.alias target is not a string")
                proto.aliases[first] = " ".join(target.split())
            elif method == "struct" and first:
                proto.structs.add(first)
            elif method == "proto" and first:
                sig_name, sig = _node_signature(proto, args)
                proto.protos[sig_name] = sig
        except DeclError as e:
            binding.errors.append(f"{_rel(path)}:{line}: {e}")
    for method, args, line in calls:
        try:
            if method == "func":
                if not args:
                    raise DeclError(".func() without arguments")
                name, sig = _node_signature(proto, args)
                text = _js_string_arg(args[0]) if len(args) == 1 else \
                    " ".join(t.text for a in args for t in a)
                binding.decls.append(Decl(name, sig.ret, list(sig.params), path, line,
                                          " ".join((text or "").split())))
            elif method == "struct" and len(args) >= 2:
                binding.structs.append(_node_struct(proto, args, path, line))
        except DeclError as e:
            binding.errors.append(f"{_rel(path)}:{line}: {e}")
    return binding


def _node_signature(proto: _CProto, args) -> tuple[str, BSig]:
    strings = [_js_string_arg(a) for a in args]
    if len(args) == 1 and strings[0] is not None:
        return proto.prototype(strings[0])
    # lib.func('name', 'ret', ['type', ...]) and koffi.proto('name', 'ret', [...])
    if len(args) == 3 and strings[0] is not None and strings[1] is not None:
        arr = args[2]
        if not arr or arr[0].text != "[":
            raise DeclError("the argument types are not an array literal")
        items, _ = _js_call_args(arr, 0)
        params = []
        for item in items:
            s = _js_string_arg(item)
            if s is None:
                raise DeclError("an argument type is not a string")
            params.append(proto.type(s)[0])
        return strings[0], BSig(proto.type(strings[1])[0], tuple(params))
    raise DeclError("not a C prototype string nor (name, ret, [args])")


def _node_struct(proto: _CProto, args, path: Path, line: int) -> StructDecl:
    name = _js_string_arg(args[0])
    obj = args[1]
    if not obj or obj[0].text != "{":
        raise DeclError(f"koffi.struct('{name}', ...) fields are not an object literal")
    items, _ = _js_call_args(obj, 0)
    fields = []
    for item in items:
        if len(item) < 3 or item[1].text != ":":
            raise DeclError(f"struct {name}: a field is not `name: 'type'`")
        fname = item[0].value if item[0].kind == "str" else item[0].text
        ftype = _js_string_arg(item[2:])
        if ftype is None:
            raise DeclError(f"struct {name}: field {fname} has no type string")
        fields.append((fname, proto.type(ftype)[0]))
    return StructDecl(name, fields, path, line)


# --------------------------------------------------------------------------------------------
# Julia (ccall / @ccall)
# --------------------------------------------------------------------------------------------

@dataclass
class _JlTok:
    kind: str  # id, sym, str, num, op, macro, chr
    text: str
    line: int


_JL_ID_START = re.compile(r"[^\W\d]|_", re.U)
_JL_ID_CHAR = re.compile(r"[\w!]", re.U)


def _jl_tokens(src: str) -> list[_JlTok]:
    """A Julia tokenizer good enough to find calls: comments, strings (with interpolation),
    chars, symbols, macros, identifiers and punctuation."""
    tokens: list[_JlTok] = []
    i, line, n = 0, 1, len(src)

    def prev_is_value() -> bool:
        if not tokens:
            return False
        t = tokens[-1]
        return t.kind in ("id", "num", "str", "chr", "sym") or t.text in (")", "]", "}", "'")

    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("#=", i):
            j = _jl_skip_block_comment(src, i)
            line += src.count("\n", i, j)
            i = j
        elif c == "#":
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif c == '"' or c == "`":
            j = _jl_skip_string(src, i, interpolate=True)
            tokens.append(_JlTok("str", src[i:j], line))
            line += src.count("\n", i, j)
            i = j
        elif c == "'" and not prev_is_value():
            j = _jl_skip_char(src, i)
            tokens.append(_JlTok("chr", src[i:j], line))
            i = j
        elif c == ":" and i + 1 < n and (_JL_ID_START.match(src[i + 1])) \
                and not prev_is_value() and not src.startswith("::", i):
            j = i + 2
            while j < n and _JL_ID_CHAR.match(src[j]):
                j += 1
            tokens.append(_JlTok("sym", src[i:j], line))
            i = j
        elif c == "@" and i + 1 < n and _JL_ID_START.match(src[i + 1]):
            j = i + 2
            while j < n and (_JL_ID_CHAR.match(src[j]) or
                             (src[j] == "." and j + 1 < n and _JL_ID_START.match(src[j + 1]))):
                j += 1
            tokens.append(_JlTok("macro", src[i:j], line))
            i = j
        elif _JL_ID_START.match(c):
            j = i + 1
            while j < n and _JL_ID_CHAR.match(src[j]):
                j += 1
            if j < n and src[j] in '"`' and src[i:j] not in ("in", "isa"):  # r"..." b"..."
                k = _jl_skip_string(src, j, interpolate=False)
                tokens.append(_JlTok("str", src[i:k], line))
                line += src.count("\n", i, k)
                i = k
            else:
                tokens.append(_JlTok("id", src[i:j], line))
                i = j
        elif c.isdigit():
            m = re.compile(r"0x[0-9a-fA-F_]+|0b[01_]+|\d[\d_]*(\.\d+)?([eE][+-]?\d+)?").match(src, i)
            j = m.end() if m else i + 1
            tokens.append(_JlTok("num", src[i:j], line))
            i = j
        elif src.startswith("::", i):
            tokens.append(_JlTok("op", "::", line))
            i += 2
        else:
            tokens.append(_JlTok("op", c, line))
            i += 1
    return tokens


def _jl_skip_block_comment(src: str, i: int) -> int:
    depth = 0
    while i < len(src):
        if src.startswith("#=", i):
            depth += 1
            i += 2
        elif src.startswith("=#", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise DeclError("unterminated #= comment")


def _jl_skip_char(src: str, i: int) -> int:
    j = i + 1
    if j < len(src) and src[j] == "\\":
        j += 2
        while j < len(src) and src[j] != "'":
            j += 1
    else:
        j += 1
    if j >= len(src) or src[j] != "'":
        raise DeclError("bad character literal")
    return j + 1


def _jl_skip_string(src: str, i: int, interpolate: bool) -> int:
    """End index of the string (or command) literal starting at i."""
    quote = src[i]
    triple = src.startswith(quote * 3, i)
    delim = quote * 3 if triple else quote
    j = i + len(delim)
    while j < len(src):
        if src[j] == "\\":
            j += 2
        elif src.startswith(delim, j):
            return j + len(delim)
        elif interpolate and src.startswith("$(", j):
            j = _jl_skip_parens(src, j + 1)
        else:
            j += 1
    raise DeclError("unterminated string")


def _jl_skip_parens(src: str, i: int) -> int:
    """End index (after ')') of the parenthesised expression starting at src[i] == '('."""
    depth = 0
    j = i
    while j < len(src):
        c = src[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
        elif c in '"`':
            j = _jl_skip_string(src, j, interpolate=True)
            continue
        elif c == "#":
            j = _jl_skip_block_comment(src, j) if src.startswith("#=", j) else src.find("\n", j)
            continue
        j += 1
    raise DeclError("unbalanced $( in a string")


JULIA_SCALARS = {
    "Int8": "int8_t", "UInt8": "uint8_t", "Int16": "int16_t", "UInt16": "uint16_t",
    "Int32": "int32_t", "UInt32": "uint32_t", "Int64": "int64_t", "UInt64": "uint64_t",
    "Cint": "int", "Cuint": "unsigned int", "Cshort": "short", "Cushort": "unsigned short",
    "Clong": "long", "Culong": "unsigned long", "Clonglong": "long long",
    "Culonglong": "unsigned long long", "Csize_t": "size_t", "Cssize_t": "ssize_t",
    "Bool": "bool", "Cchar": "char", "Cuchar": "unsigned char", "Float64": "double",
    "Cdouble": "double", "Float32": "float", "Cfloat": "float",
}
CALLING_CONVENTIONS = {"cdecl", "stdcall", "fastcall", "thiscall", "llvmcall"}


def _jl_group_end(tokens, start: int) -> int:
    """Index of the bracket closing tokens[start]."""
    depth = 0
    for i in range(start, len(tokens)):
        t = tokens[i].text if tokens[i].kind == "op" else ""
        if t in ("(", "[", "{"):
            depth += 1
        elif t in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return i
    raise DeclError(f"line {tokens[start].line}: unbalanced `{tokens[start].text}`")


def _jl_split(tokens, sep: str = ","):
    parts, part, depth = [], [], 0
    for t in tokens:
        if t.kind == "op" and t.text in ("(", "[", "{"):
            depth += 1
        elif t.kind == "op" and t.text in (")", "]", "}"):
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text == sep:
            parts.append(part)
            part = []
        else:
            part.append(t)
    parts.append(part)
    return parts


def _jl_text(tokens) -> str:
    out = ""
    for t in tokens:
        if out and (t.kind in ("id", "num", "sym", "str", "macro") and
                    (out[-1].isalnum() or out[-1] in "_!")):
            out += " "
        out += t.text
        if t.text == ",":
            out += " "
    return out


class _JlTypes:
    def __init__(self, structs: set[str]):
        self.structs = structs

    def type(self, tokens, allow_void: bool = False) -> BType:
        spelled = _jl_text(tokens)
        t, rest = self._parse(tokens, spelled)
        if rest:
            raise DeclError(f"unsupported type expression `{spelled}`")
        if t.kind == "void" and not allow_void:
            raise DeclError("Cvoid is only a return type")
        return t

    def _parse(self, tokens, spelled):
        if not tokens or tokens[0].kind != "id":
            raise DeclError(f"unsupported type expression `{spelled}`")
        i = 0
        name = tokens[0].text
        while i + 2 < len(tokens) and tokens[i + 1].text == "." and tokens[i + 2].kind == "id":
            i += 2
            name = tokens[i].text  # Base.Cstring → Cstring
        rest = tokens[i + 1:]
        if name in ("Ptr", "Ref"):
            if not rest or rest[0].text != "{":
                raise DeclError(f"`{spelled}`: {name} without a type parameter")
            end = _jl_group_end(rest, 0)
            inner = rest[1:end]
            if len(_jl_split(inner)) != 1:
                raise DeclError(f"`{spelled}`: {name} takes one type parameter")
            target, left = self._parse(inner, spelled)
            if left:
                raise DeclError(f"unsupported type expression `{spelled}`")
            t = BType("voidptr", spelled) if target.kind == "void" else \
                BType("ptr", spelled, target=target)
            return t, rest[end + 1:]
        if name in ("Cvoid", "Nothing"):
            return BType("void", spelled), rest
        if name == "Cstring":
            return BType("cstring", spelled), rest
        if name in JULIA_SCALARS:
            return BType("scalar", spelled, name=JULIA_SCALARS[name]), rest
        if name in self.structs:
            return BType("struct", spelled, name=name), rest
        raise DeclError(f"unknown Julia type `{spelled}` (use a C-compatible type)")


def parse_julia(paths: list[Path], header: Header) -> Binding:
    binding = Binding("julia", paths)
    files = []
    for path in paths:
        try:
            files.append((path, _jl_tokens(path.read_text(encoding="utf-8"))))
        except DeclError as e:
            binding.errors.append(f"{_rel(path)}: cannot read: {e}")
    # Only the structs that mirror a header struct are C layouts; the others are Julia's own.
    mirrors = [s for path, tokens in files for s in _jl_structs(tokens, path)
               if any(_same_name(s.name, h) for h in header.structs)]
    types = _JlTypes({s.name for s in mirrors})
    for s in mirrors:
        try:
            s.fields = [(fname, types.type(ftokens)) for fname, ftokens in s.fields]
            binding.structs.append(s)
        except DeclError as e:
            binding.errors.append(f"{_rel(s.path)}:{s.line}: struct {s.name}: {e}")
    for path, tokens in files:
        for i, tok in enumerate(tokens):
            try:
                if tok.kind == "id" and tok.text == "ccall" and i + 1 < len(tokens) \
                        and tokens[i + 1].text == "(":
                    decl = _jl_ccall(tokens, i, path, types)
                elif tok.kind == "macro" and tok.text.split(".")[-1] == "@ccall":
                    decl = _jl_macro_ccall(tokens, i, path, types)
                else:
                    continue
            except DeclError as e:
                binding.errors.append(f"{_rel(path)}:{tok.line}: {e}")
                continue
            if decl is not None:
                binding.decls.append(decl)
    return binding


def _jl_structs(tokens, path: Path) -> list[StructDecl]:
    out = []
    for i, tok in enumerate(tokens):
        if tok.kind != "id" or tok.text != "struct" or i + 1 >= len(tokens) \
                or tokens[i + 1].kind != "id":
            continue
        mutable = i > 0 and tokens[i - 1].text == "mutable"
        name = tokens[i + 1].text
        fields, depth, j = [], 1, i + 2
        openers = {"function", "if", "for", "while", "let", "begin", "quote", "try", "do",
                   "macro", "struct"}
        while j < len(tokens) and depth:
            t = tokens[j]
            if t.kind == "id" and t.text in openers:
                depth += 1
            elif t.kind == "id" and t.text == "end":
                depth -= 1
            elif depth == 1 and t.kind == "id" and j + 1 < len(tokens) \
                    and tokens[j + 1].text == "::" and (tokens[j - 1].line < t.line
                                                       or tokens[j - 1].text == "const"):
                k = j + 2
                while k < len(tokens) and tokens[k].line == tokens[j + 2].line \
                        and tokens[k].text not in (";", "#"):
                    k += 1
                fields.append((t.text, tokens[j + 2:k]))
                j = k
                continue
            j += 1
        out.append(StructDecl(name, fields, path, tok.line, mutable))
    return out


def _jl_nb_name(tokens) -> tuple[str | None, bool]:
    """The nb_ function a ccall's first argument names, and whether it names any function."""
    names = []
    for t in tokens:
        if t.kind == "sym" and t.text[1:].startswith("nb_"):
            names.append(t.text[1:])
        elif t.kind == "str" and re.fullmatch(r'"nb_\w+"', t.text):
            names.append(t.text[1:-1])
    if len(names) > 1:
        raise DeclError(f"ccall names several functions: {', '.join(names)}")
    if names:
        return names[0], True
    named = len(tokens) == 1 and tokens[0].kind in ("sym", "str") or (
        tokens and tokens[0].text == "(" and any(t.kind in ("sym", "str") for t in tokens[1:3]))
    return None, named


def _jl_ccall(tokens, i: int, path: Path, types: _JlTypes) -> Decl | None:
    end = _jl_group_end(tokens, i + 1)
    args = _jl_split(tokens[i + 2:end])
    if len(args) < 3:
        raise DeclError("ccall needs (function, return type, (argument types), arguments...)")
    name, named = _jl_nb_name(args[0])
    if name is None:
        if named:
            return None  # a function of the Julia runtime or another library
        raise DeclError(f"cannot tell which C function `ccall({_jl_text(args[0])}, ...)` calls: "
                        "name it with a :nb_ symbol")
    rest = args[1:]
    if len(rest[0]) == 1 and rest[0][0].text in CALLING_CONVENTIONS:
        rest = rest[1:]
    if len(rest) < 2:
        raise DeclError(f"{name}: ccall without argument types")
    ret = types.type(rest[0], allow_void=True)
    tup = rest[1]
    if not tup or tup[0].text != "(" or _jl_group_end(tup, 0) != len(tup) - 1:
        raise DeclError(f"{name}: the argument types `{_jl_text(tup)}` are not a tuple literal")
    inner = tup[1:-1]
    elems = _jl_split(inner) if inner else []
    if elems and not elems[-1]:
        elems = elems[:-1]  # trailing comma
    elif len(elems) == 1:
        raise DeclError(f"{name}: `{_jl_text(tup)}` is not a tuple: write "
                        f"`({_jl_text(inner)},)`")
    params = [types.type(e) for e in elems]
    values = rest[2:]
    if values == [[]]:
        values = []
    if len(values) != len(params):
        raise DeclError(f"{name}: {len(params)} argument types but {len(values)} arguments")
    text = f"ccall(:{name}, {_jl_text(rest[0])}, {_jl_text(tup)}, ...)"
    return Decl(name, ret, params, path, tokens[i].line, text)


def _jl_macro_ccall(tokens, i: int, path: Path, types: _JlTypes) -> Decl | None:
    j = i + 1
    end = len(tokens)
    if j < len(tokens) and tokens[j].text == "(" and tokens[j].line == tokens[i].line \
            and (j == i + 1):
        end = _jl_group_end(tokens, j)  # @ccall(lib.f(x::T)::R)
        j += 1
    # options such as gc_safe=true
    while j + 2 < end and tokens[j].kind == "id" and tokens[j + 1].text == "=":
        j += 3
    # the callee chain: primary ( '.' id | '(' ... ')' )*, the last group being the arguments
    start = j
    groups = []
    if tokens[j].text == "$":
        j += 1
    while j < end:
        t = tokens[j]
        if t.text == "(" and t.kind == "op":
            close = _jl_group_end(tokens, j)
            groups.append((j, close))
            j = close + 1
        elif t.kind in ("id", "str") or (t.text == "." and t.kind == "op"):
            if groups and t.kind != "op" and tokens[j - 1].text != ".":
                break
            j += 1
        else:
            break
    if not groups:
        raise DeclError("@ccall without an argument list")
    open_, close = groups[-1]
    callee = tokens[start:open_]
    if j >= end or tokens[j].text != "::":
        raise DeclError("@ccall without a return type")
    # The return type: Name(.Name)* with at most one {...} parameter list.
    k = j + 1
    if k >= end or tokens[k].kind != "id":
        raise DeclError("@ccall without a return type")
    k += 1
    while k + 1 < end and tokens[k].text == "." and tokens[k + 1].kind == "id":
        k += 2
    if k < end and tokens[k].text == "{":
        k = _jl_group_end(tokens, k) + 1
    ret_tokens = tokens[j + 1:k]
    name = None
    if callee and callee[-1].kind == "id" and callee[-1].text.startswith("nb_"):
        name = callee[-1].text
    else:
        name, _ = _jl_nb_name(callee)
    if name is None:
        return None  # a Julia runtime or libc function
    inner = tokens[open_ + 1:close]
    if any(t.text == ";" for t in inner):
        raise DeclError(f"{name}: variadic @ccall is not supported")
    params = []
    for arg in (_jl_split(inner) if inner else []):
        if not arg:
            continue
        colons = [k for k, t in enumerate(arg) if t.text == "::"]
        if not colons:
            raise DeclError(f"{name}: @ccall argument `{_jl_text(arg)}` has no ::Type")
        params.append(types.type(arg[colons[-1] + 1:]))
    ret = types.type(ret_tokens, allow_void=True)
    text = f"@ccall {_jl_text(callee)}({_jl_text(inner)})::{_jl_text(ret_tokens)}"
    return Decl(name, ret, params, path, tokens[i].line, text)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # what was checked

    @property
    def ok(self) -> bool:
        return not self.errors


def run_check(header_path: Path, python: Path | None = None, node: Path | None = None,
              julia: Path | None = None, require_all: bool = False,
              verbose: bool = False) -> Report:
    report = Report()
    try:
        header = parse_header(header_path)
    except (OSError, DeclError) as e:
        report.errors.append(f"{_rel(header_path)}: cannot read the header: {e}")
        return report
    if not header.functions:
        report.errors.append(f"{_rel(header_path)}: no function declarations found")
        return report
    report.lines.append(f"header  {_rel(header_path)}: {len(header.functions)} functions")
    declared: set[str] = set()
    checked = 0
    for language, location in (("python", python), ("node", node), ("julia", julia)):
        if location is None:
            continue
        if language == "julia":
            paths = sorted(location.rglob("*.jl")) if location.is_dir() else (
                [location] if location.is_file() else [])
        else:
            paths = [location] if location.is_file() else []
        if not paths:
            note = f"{language:7} {_rel(location)}: not found, not checked"
            (report.errors if require_all else report.lines).append(note)
            continue
        if language == "python":
            binding = parse_python(paths[0])
        elif language == "node":
            binding = parse_node(paths[0], header)
        else:
            binding = parse_julia(paths, header)
        errors = check_binding(binding, header)
        if not binding.decls and not binding.errors:
            errors.append(f"{_rel(location)}: no natsbridge declarations found "
                          f"(is the declaration format still the agreed one?)")
        report.errors.extend(errors)
        checked += 1
        names = {d.name for d in binding.decls}
        declared |= names & set(header.functions)
        files = f" ({len(paths)} files)" if language == "julia" else ""
        structs = f", {len(binding.structs)} structs" if binding.structs else ""
        status = "ok" if not errors else f"{len(errors)} problems"
        report.lines.append(f"{language:7} {_rel(location)}{files}: {len(binding.decls)} "
                            f"declarations of {len(names)} functions{structs}: {status}")
    unused = sorted(set(header.functions) - declared)
    if checked and unused:
        line = f"note: {len(unused)} header functions are declared by no checked binding"
        if verbose:
            line += ": " + ", ".join(unused)
        report.lines.append(line)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    parser.add_argument("--header", type=Path, help=f"default: {DEFAULT_HEADER}")
    parser.add_argument("--python", type=Path, help=f"default: {DEFAULT_PYTHON}")
    parser.add_argument("--node", type=Path, help=f"default: {DEFAULT_NODE}")
    parser.add_argument("--julia", type=Path, help=f"default: {DEFAULT_JULIA} (a folder)")
    parser.add_argument("--only", choices=("python", "node", "julia"), action="append",
                        help="check only these bindings (repeatable)")
    parser.add_argument("--require-all", action="store_true",
                        help="a missing binding file is an error")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="name the header functions no binding declares")
    args = parser.parse_args(argv)
    root = args.root
    chosen = set(args.only or ("python", "node", "julia"))
    pick = lambda lang, given, default: (  # noqa: E731
        (given or root / default) if lang in chosen else None)
    report = run_check(args.header or root / DEFAULT_HEADER,
                       python=pick("python", args.python, DEFAULT_PYTHON),
                       node=pick("node", args.node, DEFAULT_NODE),
                       julia=pick("julia", args.julia, DEFAULT_JULIA),
                       require_all=args.require_all, verbose=args.verbose)
    for line in report.lines:
        print(line)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if report.ok:
        print("declarations match the header")
        return 0
    print(f"{len(report.errors)} declaration problems", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
