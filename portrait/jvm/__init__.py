"""portrait's own JVM classes: the guard and the authentication of ``portrait serve-bi``.

Two things Spark cannot do by configuration are done by small Java classes in ``portrait/jvm/src``:

* ``portrait.bi.BiGuardExtension`` (``spark.sql.extensions``) adds a check rule that refuses every analysed plan
  that is not a read-only query on the served BI tables (``BiGuard``);
* ``portrait.bi.BiAuthenticator`` is HiveServer2's CUSTOM authentication provider (user name and password).

The set-up step compiles them (``python -m portrait.jvm``, after ``python -m portrait.spark fetch-jars``) with
the JDK's ``javac`` against pyspark's and Delta's jars into ``~/.cache/portrait/jvm/portrait-bi-<hash>.jar``.
The hash covers the sources, the compiler's version and the class path's jar names, so a changed source or a
new pyspark or Delta builds a new jar and an unchanged checkout reuses the one it built.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from portrait.spark import SparkSetupError, cache_dir, delta_jars

GUARD_EXTENSION = "portrait.bi.BiGuardExtension"
GUARD_CLASS = "portrait.bi.BiGuard"
AUTHENTICATOR_CLASS = "portrait.bi.BiAuthenticator"
SOURCES = Path(__file__).resolve().parent / "src"


def _pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def _javac() -> str | None:
    """JAVA_HOME's javac when set (the JDK spark-submit runs), else the first on PATH."""
    if os.environ.get("JAVA_HOME"):
        found = shutil.which("javac", path=os.path.join(os.environ["JAVA_HOME"], "bin"))
        if found:
            return found
    return shutil.which("javac")


def _sources() -> list[Path]:
    return sorted(SOURCES.rglob("*.java"))


def _class_path() -> list[Path]:
    return sorted(_pyspark_jars().glob("*.jar")) + delta_jars()


def _fingerprint(javac: str) -> str:
    version = subprocess.run([javac, "-version"], capture_output=True, text=True).stdout.strip()
    digest = hashlib.sha256(version.encode())
    for source in _sources():
        digest.update(f"\0{source.relative_to(SOURCES)}\0".encode() + source.read_bytes())
    for jar in _class_path():
        digest.update(f"\0{jar.name}".encode())
    return digest.hexdigest()[:16]


def jar_path(javac: str | None = None) -> Path:
    """Where the jar for these sources, this compiler and this class path is (or will be) built."""
    javac = javac or _javac()
    if javac is None:
        raise SparkSetupError(_no_javac())
    return cache_dir() / "jvm" / f"portrait-bi-{_fingerprint(javac)}.jar"


def _no_javac() -> str:
    return ("the Java compiler (javac) was not found. serve-bi compiles its guard and authentication classes "
            "once: install a JDK 17 or newer (e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME "
            "to one, then run `python -m portrait.jvm` (`make setup` does it).")


def guard_jar() -> Path:
    """The built jar; raises with what to do when the set-up step has not built it for this checkout."""
    path = jar_path()
    if not path.is_file():
        raise SparkSetupError(f"portrait's JVM classes are not built ({path} is missing): run `python -m "
                              "portrait.jvm` once (`make setup` does it).")
    return path


def build(force: bool = False) -> Path:
    """Compile ``portrait/jvm/src`` into :func:`jar_path` unless it is there already.

    The jar is written under a temporary name and renamed into place, so a JVM never sees half a jar.
    """
    javac = _javac()
    if javac is None:
        raise SparkSetupError(_no_javac())
    target = jar_path(javac)
    if target.is_file() and not force:
        return target
    if not _sources():
        raise SparkSetupError(f"no Java sources under {SOURCES}: serve-bi runs from a source checkout "
                              "(`pip install -e .`)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as staging:
        classes = Path(staging) / "classes"
        # -proc:none: no annotation processors from the class path's jars; javac expands the dir/* wildcard.
        command = [javac, "--release", "17", "-proc:none", "-nowarn", "-d", str(classes),
                   "-cp", os.pathsep.join([str(_pyspark_jars() / "*"), *(str(j) for j in delta_jars())]),
                   *(str(s) for s in _sources())]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise SparkSetupError(f"javac failed on {SOURCES}:\n{(result.stdout + result.stderr)[-4000:]}")
        staged = Path(staging) / target.name
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: portrait.jvm\n\n")
            for compiled in sorted(classes.rglob("*.class")):
                jar.write(compiled, compiled.relative_to(classes).as_posix())
        os.replace(staged, target)
    return target
