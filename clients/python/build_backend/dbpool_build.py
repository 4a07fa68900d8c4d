"""dbpool_build.py — the PEP 517 build backend of the dbpool package.

The package is pure Python and has no dependencies, so a wheel is a zip of
dbpool/*.py plus its .dist-info (METADATA, WHEEL, RECORD with sha256
hashes); this module writes it with the standard library alone, so that
`pip install clients/python` works offline without setuptools or wheel.
The version comes from dbpool/__init__.py (__version__). build_sdist packs
the source tree pip would need to build the wheel again.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

NAME = "dbpool"
SUMMARY = "DB-API 2.0 (PEP 249) client for the dbpoold connection-pooling daemon"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "py3-none-any"


def _version():
    with open(os.path.join(ROOT, NAME, "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _metadata():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n"
            "Requires-Python: >=3.9\nClassifier: Programming Language :: Python :: 3\n"
            "Classifier: Topic :: Database\nDescription-Content-Type: text/markdown\n\n%s"
            % (NAME, _version(), SUMMARY, readme))


def _sources():
    pkg = os.path.join(ROOT, NAME)
    return sorted("%s/%s" % (NAME, f) for f in os.listdir(pkg) if f.endswith(".py"))


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "%s,sha256=%s,%d" % (path, digest.decode("ascii"), len(data))


def _dist_info_files():
    wheel = "Wheel-Version: 1.0\nGenerator: dbpool_build\nRoot-Is-Purelib: true\nTag: %s\n" % TAG
    return {"METADATA": _metadata(), "WHEEL": wheel}


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = "%s-%s.dist-info" % (NAME, _version())
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    for name, text in _dist_info_files().items():
        with open(os.path.join(metadata_directory, info, name), "w", encoding="utf-8") as f:
            f.write(text)
    return info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    version = _version()
    info = "%s-%s.dist-info" % (NAME, version)
    filename = "%s-%s-%s.whl" % (NAME, version, TAG)
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for path in _sources():
            with open(os.path.join(ROOT, path), "rb") as f:
                data = f.read()
            z.writestr(path, data)
            record.append(_record_line(path, data))
        for name, text in _dist_info_files().items():
            data = text.encode("utf-8")
            z.writestr("%s/%s" % (info, name), data)
            record.append(_record_line("%s/%s" % (info, name), data))
        record.append("%s/RECORD,," % info)
        z.writestr("%s/RECORD" % info, "\n".join(record) + "\n")
    return filename


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, _version())
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "build_backend/dbpool_build.py"] + _sources():
            t.add(os.path.join(ROOT, rel), arcname="%s/%s" % (base, rel))
        info = tarfile.TarInfo("%s/PKG-INFO" % base)
        data = _metadata().encode("utf-8")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return filename
