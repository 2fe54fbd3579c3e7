"""How ``portrait serve-bi`` decides where and for whom to serve, before any Spark starts, and the set-up step
that compiles its JVM classes. The server itself, attacked by a real client, is tests/test_serve_bi.py."""

from __future__ import annotations

import hashlib
import shutil
import zipfile

import pytest

from portrait import jvm
from portrait.serve import (
    KEYSTORE_PASSWORD_ENV,
    PASSWORD_ENV,
    PASSWORD_SHA256_ENV,
    USER_ENV,
    Credentials,
    ServeError,
    credentials_from,
    drop_secrets,
    endpoint,
)
from tests.conftest import make_config

PASSWORD = "a-long-random-password"


@pytest.fixture()
def cfg(tmp_path):
    return make_config(tmp_path)


def test_a_plain_password_is_kept_only_as_its_sha256_and_a_digest_is_taken_as_given():
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    assert credentials_from({USER_ENV: "analyst", PASSWORD_ENV: PASSWORD}) == Credentials("analyst", digest)
    assert credentials_from({USER_ENV: "analyst", PASSWORD_SHA256_ENV: digest.upper()}) == Credentials("analyst", digest)
    assert credentials_from({}) is None


@pytest.mark.parametrize("environ, message", [
    ({USER_ENV: "analyst"}, "neither"),
    ({PASSWORD_ENV: PASSWORD}, "not"),
    ({USER_ENV: "analyst", PASSWORD_ENV: "short"}, "shorter than"),
    ({USER_ENV: "analyst", PASSWORD_SHA256_ENV: "not-hex"}, "64-digit"),
    ({USER_ENV: "analyst", PASSWORD_ENV: PASSWORD, PASSWORD_SHA256_ENV: "0" * 64}, "not both"),
])
def test_an_incomplete_or_weak_login_is_refused(environ, message):
    with pytest.raises(ServeError, match=message):
        credentials_from(environ)


def test_the_server_environment_loses_the_pseudonym_keys_and_passwords_but_keeps_the_rest():
    environ = {"PORTRAIT_PSEUDONYM_KEY": "k" * 32, "PORTRAIT_PSEUDONYM_KEY_PREVIOUS": "p" * 32,
               PASSWORD_ENV: PASSWORD, PASSWORD_SHA256_ENV: "0" * 64, KEYSTORE_PASSWORD_ENV: "changeit",
               USER_ENV: "analyst", "PATH": "/usr/bin", "PORTRAIT__BI__PORT": "10001"}
    assert sorted(drop_secrets(environ)) == sorted([
        "PORTRAIT_PSEUDONYM_KEY", "PORTRAIT_PSEUDONYM_KEY_PREVIOUS", PASSWORD_ENV, PASSWORD_SHA256_ENV,
        KEYSTORE_PASSWORD_ENV])
    assert environ == {USER_ENV: "analyst", "PATH": "/usr/bin", "PORTRAIT__BI__PORT": "10001"}


def test_without_a_login_the_server_refuses_to_start_unless_told_to_serve_this_machine_only(cfg):
    with pytest.raises(ServeError, match=USER_ENV):
        endpoint(cfg, None, None, environ={"PORTRAIT_PSEUDONYM_KEY": "k" * 32})
    environ = {"PORTRAIT_PSEUDONYM_KEY": "k" * 32}
    local = endpoint(cfg, None, 10001, no_auth_local_only=True, environ=environ)
    assert (local.host, local.port, local.credentials, local.tls) == ("127.0.0.1", 10001, None, None)
    assert environ == {}  # the key is gone before any JVM could inherit it
    with pytest.raises(ServeError, match="this machine only"):
        endpoint(cfg, "0.0.0.0", None, no_auth_local_only=True, environ={})
    with pytest.raises(ServeError, match="drop one"):
        endpoint(cfg, None, None, no_auth_local_only=True, environ={USER_ENV: "analyst", PASSWORD_ENV: PASSWORD})


def test_with_a_login_any_address_may_be_served_and_tls_needs_its_keystore_and_password(cfg, tmp_path):
    login = {USER_ENV: "analyst", PASSWORD_ENV: PASSWORD}
    served = endpoint(cfg, "0.0.0.0", None, environ=dict(login))
    assert (served.host, served.port, served.credentials.user) == ("0.0.0.0", cfg.bi.port, "analyst")
    with pytest.raises(ServeError, match="no such file"):
        endpoint(cfg, None, None, tls_keystore=str(tmp_path / "missing.p12"), environ=dict(login))
    keystore = tmp_path / "bi.p12"
    keystore.write_bytes(b"not parsed here")
    with pytest.raises(ServeError, match=KEYSTORE_PASSWORD_ENV):
        endpoint(cfg, None, None, tls_keystore=str(keystore), environ=dict(login))
    environ = {**login, KEYSTORE_PASSWORD_ENV: "changeit"}
    tls = endpoint(cfg, None, None, tls_keystore=str(keystore), environ=environ).tls
    assert (tls.keystore, tls.password) == (keystore, "changeit") and KEYSTORE_PASSWORD_ENV not in environ


def test_the_set_up_step_builds_the_guard_and_login_classes_into_a_jar_named_by_its_sources(tmp_path, monkeypatch):
    jar = jvm.build()
    with zipfile.ZipFile(jar) as archive:
        names = set(archive.namelist())
    assert {"portrait/bi/BiGuard.class", "portrait/bi/BiGuardExtension.class",
            "portrait/bi/BiAuthenticator.class"} <= names
    assert jvm.guard_jar() == jar
    copy = tmp_path / "src"
    shutil.copytree(jvm.SOURCES, copy)
    monkeypatch.setattr(jvm, "SOURCES", copy)
    assert jvm.jar_path() == jar  # same sources, same jar
    (copy / "portrait" / "bi" / "BiGuard.java").write_text("// changed\n", encoding="utf-8")
    assert jvm.jar_path() != jar  # a changed source is built again rather than served stale
