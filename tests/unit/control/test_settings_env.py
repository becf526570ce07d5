"""Settings from ZEROSERVE_* variables: a value a setting cannot take is refused with the variable's name,
and `zeroserve serve` says so and exits 2 instead of printing a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from zeroserve.cli import app
from zeroserve.config import Settings, SettingsError


def test_numbers_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"ZEROSERVE_TEMPLATE_IDLE_TIMEOUT_S": "12.5", "ZEROSERVE_PORT": "9000"})
    assert settings.template_idle_timeout_s == 12.5 and settings.port == 9000


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ZEROSERVE_IDLE_TIMEOUT_S", "abc", "ZEROSERVE_IDLE_TIMEOUT_S='abc' is not a number"),
        ("ZEROSERVE_PORT", "80.5", "ZEROSERVE_PORT='80.5' is not an integer"),
    ],
)
def test_a_value_the_setting_cannot_take_names_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert str(raised.value) == message


def test_serve_with_a_bad_variable_exits_2_with_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROSERVE_RAY_POLL_S", "often")
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "ZEROSERVE_RAY_POLL_S='often' is not a number" in result.output
