"""Tests of tools/julia_lint.py. Run: python3 -m unittest tools/test_julia_lint.py"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from julia_lint import lint_source  # noqa: E402

GOOD = '''
module M
"""A docstring with `end` and an interpolation $(f("x)"))."""
abstract type Shape end
function f end
mutable struct S
    x::Int
end
function g(v; k = 1)
    w = [i^2 for i in v if isodd(i)]
    s = "a string with function and ( in it"
    c = 'e'
    t = v'
    r = @static if Sys.iswindows()
        1
    else
        2
    end
    map(v) do x
        x + 1
    end
    try
        v[end] + v[begin] + v[(end - 1)]
    catch e
        rethrow()
    finally
        nothing
    end
    #= a block comment #= nested =# with begin =#
    return w[end], Base.:(==)(1, 1), :end
end
end
'''


class JuliaLintTest(unittest.TestCase):
    def test_good_source_passes(self):
        self.assertEqual(lint_source(GOOD), [])

    def test_missing_end(self):
        problems = lint_source(GOOD.replace("        x + 1\n    end\n", "        x + 1\n"))
        self.assertTrue(problems)
        self.assertTrue(any("never closed" in p for p in problems), problems)

    def test_stray_end(self):
        problems = lint_source("f(x) = x\nend\n")
        self.assertEqual(len(problems), 1)
        self.assertIn("`end` without a block", problems[0])

    def test_unbalanced_brackets_and_strings(self):
        self.assertTrue(lint_source("f(x = [1, 2)\n"))
        self.assertTrue(lint_source('s = "never closed\n'))


if __name__ == "__main__":
    unittest.main()
