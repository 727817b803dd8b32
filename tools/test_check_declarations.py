"""Tests of tools/check_declarations.py: small fixtures that agree with a tiny header pass; each
kind of drift fails with a message naming the function; the real repository passes.

Run: python3 -m unittest tools/test_check_declarations.py (or pytest).
"""

import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_declarations as cd  # noqa: E402

HEADER = """\
#ifndef TINY_H
#define TINY_H
#include <stdint.h>
#define NB_OK 0
/** A handle. */
typedef struct nb_client nb_client;
typedef int32_t nb_status;
typedef int (*nb_wake_callback)(void *ctx);
typedef struct {
    /** name */
    const char *dataname;
    const uint8_t *data;
    size_t len;
} nb_payload_in;
#ifdef __cplusplus
extern "C" {
#endif
/** Version. */
const char *nb_version(void);
nb_status nb_client_connect(const char *url,
                            nb_client **out);
nb_status nb_send(const nb_client *client,
                  const nb_payload_in *payloads,
                  size_t count,
                  uint64_t timeout_ms);
nb_status nb_bytes(const nb_client *client, const uint8_t **data, size_t *len);
nb_status nb_set_wake(nb_client *client, nb_wake_callback wake, void *ctx);
bool nb_is_open(const nb_client *client);
void nb_client_free(nb_client *client);
#ifdef __cplusplus
}
#endif
#endif
"""

PYTHON = """\
from ctypes import CFUNCTYPE, POINTER, Structure, c_bool, c_char_p, c_int, c_int32, \\
    c_size_t, c_uint8, c_uint64, c_void_p

nb_wake_callback = CFUNCTYPE(c_int, c_void_p)
handle_p = c_void_p

class nb_payload_in(Structure):
    _fields_ = [("dataname", c_char_p), ("data", POINTER(c_uint8)), ("len", c_size_t)]

SIGNATURES = {
    "nb_version": (c_char_p, []),
    "nb_client_connect": (c_int32, [c_char_p, POINTER(c_void_p)]),
    "nb_send": (c_int32, [handle_p, POINTER(nb_payload_in), c_size_t, c_uint64]),
    "nb_bytes": (c_int32, [c_void_p, POINTER(POINTER(c_uint8)), POINTER(c_size_t)]),
    "nb_set_wake": (c_int32, [c_void_p, nb_wake_callback, c_void_p]),
    "nb_is_open": (c_bool, [c_void_p]),
    "nb_client_free": (None, [c_void_p]),
}
"""

NODE = """\
'use strict';
const koffi = require('koffi');
const lib = koffi.load(`${__dirname}/libtiny.so`);  // a template literal with ${...}
koffi.alias('nb_status', 'int32_t');
koffi.opaque('nb_client');
koffi.struct('nb_payload_in', { dataname: 'const char *', data: 'const uint8_t *', len: 'size_t' });
const wake = koffi.proto('int nb_wake_callback(void *ctx)');
// lib.func('void nb_commented_out(int x)') is not a declaration
const fn = {
  nb_version: lib.func('const char *nb_version(void)'),
  nb_client_connect: lib.func('nb_status nb_client_connect(const char *url, _Out_ nb_client **out)'),
  nb_send: lib.func(
    'nb_status nb_send(const nb_client *client, const nb_payload_in *payloads, ' +
      'size_t count, uint64_t timeout_ms)',
  ),
  nb_bytes: lib.func('nb_bytes', 'int32_t', ['const nb_client *', '_Out_ const uint8_t **', '_Out_ size_t *']),
  nb_set_wake: lib.func('nb_status nb_set_wake(nb_client *client, nb_wake_callback *wake, void *ctx)'),
  nb_is_open: lib.func('bool nb_is_open(const nb_client *client)'),
  nb_client_free: lib.func('void nb_client_free(nb_client *client)'),
};
"""

JULIA = """\
module Tiny
# ccall((:nb_commented_out, lib), Cvoid, ()) is not a declaration
\"\"\"A docstring mentioning ccall(:nb_nothing) is not one either.\"\"\"
struct nb_payload_in
    dataname::Ptr{Cchar}
    data::Ptr{UInt8}
    len::Csize_t
end
struct NotMirrored
    anything::Dict{String,Any}
end
cfunc(name) = C_NULL
version() = unsafe_string(ccall(cfunc(:nb_version), Ptr{Cchar}, ()))
connect(url, out) = ccall((:nb_client_connect, "libtiny"), Int32, (Cstring, Ref{Ptr{Cvoid}}), url, out)
send(c, p, n, t) = @gcsafe ccall(cfunc(:nb_send), Int32,
                                 (Ptr{Cvoid}, Ptr{nb_payload_in}, Csize_t, UInt64), c, p, n, t)
bytes(c, d, l) = @ccall "libtiny".nb_bytes(c::Ptr{Cvoid}, d::Ref{Ptr{UInt8}}, l::Ref{Csize_t})::Int32
wake(c, w, x) = @ccall gc_safe=true $(cfunc(:nb_set_wake))(c::Ptr{Cvoid}, w::Ptr{Cvoid}, x::Ptr{Cvoid})::Int32
isopen(c) = ccall(cfunc(:nb_is_open), Bool, (Ptr{Cvoid},), c)
free(c) = ccall(cfunc(:nb_client_free), Cvoid, (Ptr{Cvoid},), c)
state() = ccall(:jl_gc_safe_enter, Int8, ())  # the Julia runtime's: not checked
end
"""


class Fixture:
    """A temporary repository with the tiny header and one file per binding."""

    def __init__(self, python=PYTHON, node=NODE, julia=JULIA):
        self.dir = tempfile.TemporaryDirectory()
        root = Path(self.dir.name)
        self.header = root / "tiny.h"
        self.header.write_text(HEADER)
        self.python = root / "_ffi.py"
        self.node = root / "ffi.js"
        self.julia = root / "julia"
        self.julia.mkdir()
        for path, text in ((self.python, python), (self.node, node),
                           (self.julia / "Tiny.jl", julia)):
            if text is not None:
                path.write_text(textwrap.dedent(text))

    def run(self, **kwargs):
        return cd.run_check(self.header, python=self.python, node=self.node, julia=self.julia,
                            **kwargs)

    def close(self):
        self.dir.cleanup()


class CheckerTest(unittest.TestCase):
    def check(self, **sources):
        fixture = Fixture(**sources)
        self.addCleanup(fixture.close)
        return fixture.run()

    def assert_fails(self, report, *fragments):
        self.assertFalse(report.ok, "the check passed; expected a failure")
        text = "\n".join(report.errors)
        for fragment in fragments:
            self.assertIn(fragment, text)

    def test_header_is_parsed(self):
        fixture = Fixture()
        self.addCleanup(fixture.close)
        header = cd.parse_header(fixture.header)
        self.assertEqual(sorted(header.functions), sorted(
            ["nb_version", "nb_client_connect", "nb_send", "nb_bytes", "nb_set_wake",
             "nb_is_open", "nb_client_free"]))
        send = header.functions["nb_send"]
        self.assertEqual([str(p) for p in send.params],
                         ["nb_client *", "nb_payload_in *", "size_t", "uint64_t"])
        self.assertEqual(header.resolve(send.ret), cd.CType("int32_t"))
        self.assertIn("nb_client", header.opaque)
        self.assertEqual([f.name for f in header.structs["nb_payload_in"]],
                         ["dataname", "data", "len"])
        self.assertEqual(len(header.callbacks["nb_wake_callback"].params), 1)

    def test_agreeing_bindings_pass(self):
        report = self.check()
        self.assertTrue(report.ok, "\n".join(report.errors))
        summary = "\n".join(report.lines)
        self.assertIn("python", summary)
        self.assertIn("7 declarations of 7 functions, 1 structs: ok", summary)

    def test_wrong_argument_count(self):
        report = self.check(python=PYTHON.replace(
            '"nb_send": (c_int32, [handle_p, POINTER(nb_payload_in), c_size_t, c_uint64])',
            '"nb_send": (c_int32, [handle_p, POINTER(nb_payload_in), c_size_t])'))
        self.assert_fails(report, "nb_send: 3 arguments, the header has 4", "_ffi.py:")

    def test_wrong_integer_width(self):
        report = self.check(node=NODE.replace("size_t count, uint64_t timeout_ms",
                                              "size_t count, uint32_t timeout_ms"))
        self.assert_fails(report, "nb_send: argument 4 (timeout_ms)", "uint32_t is not uint64_t")

    def test_signedness_and_spelling_matter(self):
        report = self.check(julia=JULIA.replace("Csize_t, UInt64), c, p, n, t)",
                                                "UInt64, UInt64), c, p, n, t)"))
        self.assert_fails(report, "nb_send: argument 3 (count)", "uint64_t is not size_t")

    def test_pointer_integer_swap(self):
        report = self.check(node=NODE.replace("_Out_ nb_client **out", "uint64_t out"))
        self.assert_fails(report, "nb_client_connect: argument 2 (out)",
                          "a non-pointer where the header has a pointer")
        report = self.check(julia=JULIA.replace("(Cstring, Ref{Ptr{Cvoid}}), url, out)",
                                                "(Csize_t, Ref{Ptr{Cvoid}}), url, out)"))
        self.assert_fails(report, "nb_client_connect: argument 1 (url)",
                          "a non-pointer where the header has a pointer")

    def test_double_pointer_needs_two_levels(self):
        report = self.check(python=PYTHON.replace("POINTER(POINTER(c_uint8))", "POINTER(c_uint8)"))
        self.assert_fails(report, "nb_bytes: argument 2 (data)")

    def test_byte_pointer_only_for_uint8(self):
        report = self.check(julia=JULIA.replace("(Cstring, Ref{Ptr{Cvoid}})",
                                                "(Ptr{UInt8}, Ref{Ptr{Cvoid}})"))
        self.assert_fails(report, "nb_client_connect: argument 1 (url)", "uint8_t is not char")

    def test_cstring_only_for_char_pointer(self):
        report = self.check(python=PYTHON.replace(
            "[c_void_p, POINTER(POINTER(c_uint8)), POINTER(c_size_t)]",
            "[c_char_p, POINTER(POINTER(c_uint8)), POINTER(c_size_t)]"))
        self.assert_fails(report, "nb_bytes: argument 1 (client)",
                          "a C string stands only for char*")
        report = self.check(python=PYTHON.replace(
            '("data", POINTER(c_uint8))', '("data", c_char_p)'))
        self.assert_fails(report, "struct nb_payload_in", "field data",
                          "a C string stands only for char*")

    def test_callback_signature(self):
        report = self.check(python=PYTHON.replace("CFUNCTYPE(c_int, c_void_p)",
                                                  "CFUNCTYPE(None, c_void_p)"))
        self.assert_fails(report, "nb_set_wake: argument 2 (wake)", "callback return")
        report = self.check(node=NODE.replace("int nb_wake_callback(void *ctx)",
                                              "int nb_wake_callback(void *ctx, int extra)"))
        self.assert_fails(report, "nb_set_wake", "callback takes 2 arguments")

    def test_unknown_function(self):
        report = self.check(julia=JULIA.replace("cfunc(:nb_is_open)", "cfunc(:nb_is_opened)"))
        self.assert_fails(report, "nb_is_opened: not in")
        report = self.check(node=NODE.replace("void nb_client_free(", "void nb_client_release("))
        self.assert_fails(report, "nb_client_release: not in")

    def test_julia_tuple_needs_a_comma(self):
        report = self.check(julia=JULIA.replace("Bool, (Ptr{Cvoid},), c)", "Bool, (Ptr{Cvoid}), c)"))
        self.assert_fails(report, "nb_is_open: `(Ptr{Cvoid})` is not a tuple")

    def test_julia_argument_count_against_its_own_types(self):
        report = self.check(julia=JULIA.replace("(Ptr{Cvoid},), c)", "(Ptr{Cvoid},), c, c)"))
        self.assert_fails(report, "1 argument types but 2 arguments")

    def test_struct_layout(self):
        report = self.check(julia=JULIA.replace("    len::Csize_t\n", "    len::UInt32\n"))
        self.assert_fails(report, "struct nb_payload_in: field len", "uint32_t is not size_t")
        report = self.check(julia=JULIA.replace("struct nb_payload_in", "mutable struct nb_payload_in"))
        self.assert_fails(report, "struct nb_payload_in: declared `mutable`")
        report = self.check(node=NODE.replace(" len: 'size_t' ", " "))
        self.assert_fails(report, "struct nb_payload_in: 2 fields, the header's nb_payload_in has 3")

    def test_missing_binding_is_reported_not_silent(self):
        fixture = Fixture(node=None)
        self.addCleanup(fixture.close)
        report = fixture.run()
        self.assertTrue(report.ok)
        self.assertTrue(any("node" in line and "not found, not checked" in line
                            for line in report.lines), report.lines)
        report = fixture.run(require_all=True)
        self.assert_fails(report, "not found, not checked")

    def test_binding_without_declarations_fails(self):
        report = self.check(python="SIGNATURES = {}\n")
        self.assert_fails(report, "no natsbridge declarations found")
        report = self.check(node="const x = require('koffi');\n")
        self.assert_fails(report, "no natsbridge declarations found")

    def test_unknown_binding_type_fails(self):
        report = self.check(julia=JULIA.replace("Bool, (Ptr{Cvoid},), c)", "Any, (Ptr{Cvoid},), c)"))
        self.assert_fails(report, "unknown Julia type `Any`")

    def test_command_line_exits_non_zero_on_drift(self):
        fixture = Fixture(python=PYTHON.replace("c_uint64]", "c_int64]"))
        self.addCleanup(fixture.close)
        script = Path(cd.__file__)
        args = [sys.executable, str(script), "--header", str(fixture.header),
                "--python", str(fixture.python), "--node", str(fixture.node),
                "--julia", str(fixture.julia)]
        bad = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        self.assertIn("nb_send: argument 4 (timeout_ms): binding `c_int64`", bad.stderr)
        self.assertIn("int64_t is not uint64_t", bad.stderr)
        good = Fixture()
        self.addCleanup(good.close)
        args[args.index("--python") + 1] = str(good.python)
        ok = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)

    def test_real_repository_passes(self):
        report = cd.run_check(cd.ROOT / cd.DEFAULT_HEADER, python=cd.ROOT / cd.DEFAULT_PYTHON,
                              node=cd.ROOT / cd.DEFAULT_NODE, julia=cd.ROOT / cd.DEFAULT_JULIA)
        self.assertTrue(report.ok, "\n".join(report.errors))
        julia = [line for line in report.lines if line.startswith("julia")]
        self.assertTrue(julia and julia[0].endswith(": ok"), report.lines)


if __name__ == "__main__":
    unittest.main()
