"""pip install ./python: the attnkit package, with the bin/ of the checkout
it was installed from recorded in attnkit/_where.py, so compress() finds
the programs without PATH or ATTNKIT_BIN (an installed prefix on PATH, or
$ATTNKIT_BIN, comes first)."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPy(build_py):
    def run(self):
        super().run()
        out = os.path.join(self.build_lib, "attnkit", "_where.py")
        checkout_bin = os.path.normpath(os.path.join(HERE, "..", "bin"))
        with open(out, "w", encoding="utf-8") as f:
            f.write('"""Written by setup.py: the bin/ of the checkout attnkit was installed '
                    'from."""\n')
            f.write(f"BIN = {checkout_bin!r}\n")


setup(cmdclass={"build_py": BuildPy})
