"""test_install.py — `pip install clients/python` works offline: into a new
virtual environment, from no package index, with and without build
isolation (the package's build backend is standard library only), and the
installed package is the one that imports."""
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Install(unittest.TestCase):
    def test_pip_install_offline_into_a_venv(self):
        with tempfile.TemporaryDirectory() as tmp:
            venv = os.path.join(tmp, "venv")
            r = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True)
            if r.returncode != 0:
                self.skipTest("python3 -m venv unavailable: %s" % r.stderr.decode()[-200:])
            py = os.path.join(venv, "bin", "python")
            if subprocess.run([py, "-m", "pip", "--version"], capture_output=True).returncode:
                self.skipTest("pip unavailable in a new venv")
            env = dict(os.environ, PIP_NO_INDEX="1", PYTHONPATH="")
            for extra in ([], ["--no-build-isolation"]):
                r = subprocess.run([py, "-m", "pip", "install", "--no-index", *extra, ROOT],
                                   capture_output=True, env=env, cwd=tmp)
                self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
            r = subprocess.run([py, "-c", "import dbpool; print(dbpool.__file__, "
                                "dbpool.paramstyle)"], capture_output=True, env=env, cwd=tmp)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertIn(venv, r.stdout.decode())
            self.assertIn("qmark", r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
