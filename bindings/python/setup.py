"""Builds libnatsbridge.so with cargo and bundles it into the package.

``pip install ./bindings/python`` runs this from the repository: it compiles the library
(``cargo build --release --lib`` in the repository root) and copies ``libnatsbridge.so`` next
to the Python modules, so the installed package needs nothing else. To bundle a library built
elsewhere instead, set ``NATSBRIDGE_PREBUILT_LIB`` to its path.

The wheel is tagged for the platform (it holds a native library) but not for a Python
version: the library is loaded with ctypes.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
LIBRARY = "libnatsbridge.so"


def fail(message):
    sys.stderr.write(f"\nnatsbridge: {message}\n\n")
    raise SystemExit(1)


def repository_root():
    root = HERE.parent.parent
    if not (root / "Cargo.toml").is_file():
        fail(
            f"cannot find the natsbridge Rust crate (expected {root / 'Cargo.toml'}); build "
            "from a clone of the repository, or set NATSBRIDGE_PREBUILT_LIB to a built "
            f"{LIBRARY}"
        )
    return root


def cargo_build():
    """Runs cargo and returns the path of the shared library it made."""
    cargo = shutil.which(os.environ.get("CARGO", "cargo"))
    if cargo is None:
        fail(
            "building the Python package compiles the Rust library, which needs `cargo`: "
            "install Rust (https://rustup.rs) and retry, or set NATSBRIDGE_PREBUILT_LIB to "
            f"an existing {LIBRARY}"
        )
    root = repository_root()
    cmd = [cargo, "build", "--release", "--lib", "--message-format=json-render-diagnostics"]
    print("natsbridge: " + " ".join(cmd[1:4]) + f" (in {root})", file=sys.stderr)
    proc = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        fail(f"`cargo build --release --lib` failed (exit {proc.returncode}); see above")
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and "cdylib" in msg["target"]["kind"]:
            for name in msg.get("filenames", []):
                if name.endswith(LIBRARY):
                    return Path(name)
    fail(f"cargo finished but reported no {LIBRARY}")


class BuildPyWithLibrary(build_py):
    """build_py, then the native library into the package."""

    def run(self):
        super().run()
        prebuilt = os.environ.get("NATSBRIDGE_PREBUILT_LIB")
        source = Path(prebuilt) if prebuilt else cargo_build()
        if not source.is_file():
            fail(f"{source} does not exist")
        dest = Path(self.build_lib) / "natsbridge" / LIBRARY
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        os.chmod(dest, 0o755)
        # The release profile keeps debug info for profiling; the bundled copy does not need it.
        strip = shutil.which("strip")
        if strip and not os.environ.get("NATSBRIDGE_KEEP_DEBUG_INFO"):
            subprocess.run([strip, "--strip-debug", str(dest)], check=False)


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel})
