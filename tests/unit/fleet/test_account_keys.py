"""A fleet account's keys: its environment first, else its secrets folder; never a value in an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordersync.config import account_credentials, secret_values
from ordersync.domain.errors import ConfigError


def test_keys_come_from_the_accounts_environment_variables_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "acct-7").mkdir()
    (tmp_path / "acct-7" / "key_id").write_text("FROM-FILE")
    (tmp_path / "acct-7" / "secret_key").write_text("file-secret")
    monkeypatch.setenv("ORDERSYNC_ACCOUNT_ACCT_7_KEY_ID", "FROM-ENV")
    monkeypatch.setenv("ORDERSYNC_ACCOUNT_ACCT_7_SECRET_KEY", "env-secret")
    keys = account_credentials("acct-7", tmp_path)
    assert keys.key_id.get_secret_value() == "FROM-ENV"
    assert keys.secret_key.get_secret_value() == "env-secret"


def test_keys_come_from_the_secrets_folder_stripped_of_the_newline_a_mounted_secret_has(
    tmp_path: Path,
) -> None:
    (tmp_path / "acct-8").mkdir()
    (tmp_path / "acct-8" / "key_id").write_text("AK-8\n")
    (tmp_path / "acct-8" / "secret_key").write_text("secret-eight\n")
    keys = account_credentials("acct-8", tmp_path)
    assert (keys.key_id.get_secret_value(), keys.secret_key.get_secret_value()) == ("AK-8", "secret-eight")
    assert "secret-eight" in secret_values(tmp_path), "values from the folder are redacted from logs too"
    assert "secret-eight" not in repr(keys)


def test_missing_keys_name_where_they_were_looked_for_never_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "acct-9").mkdir()
    (tmp_path / "acct-9" / "key_id").write_text("AK-9-half")  # the secret is missing: not usable
    monkeypatch.setenv("ORDERSYNC_ACCOUNT_ACCT_9_KEY_ID", "AK-9-env-half")
    with pytest.raises(ConfigError) as refused:
        account_credentials("acct-9", tmp_path)
    message = str(refused.value)
    assert "ORDERSYNC_ACCOUNT_ACCT_9_KEY_ID" in message
    assert str(tmp_path / "acct-9") in message
    assert "AK-9" not in message
