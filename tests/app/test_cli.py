"""The CLI's one error path: a UserError is one line and exit 2 (traceback only with --debug)."""

from __future__ import annotations

import importlib.util

import pytest

from app import cli
from calib.common.errors import CalibrationError, ConfigError, UserError


def test_a_user_error_is_one_line_and_exit_2_and_debug_adds_the_traceback(capsys):
    def bad() -> int:
        raise ConfigError("rig.yaml: field 'volume.size_mm' must be positive; fix the YAML")

    assert cli._friendly(bad) == cli.USER_ERROR_EXIT == 2
    err = capsys.readouterr().err
    assert err == "error: rig.yaml: field 'volume.size_mm' must be positive; fix the YAML\n"
    assert cli._friendly(bad, debug=True) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("fix the YAML")


def test_a_bug_is_not_hidden_as_an_input_error():
    def bug() -> int:
        raise KeyError("internal")

    with pytest.raises(KeyError):
        cli._friendly(bug)


def test_user_error_names_file_field_and_fix():
    exc = CalibrationError("must be a rotation", file="cams.json", field="R", fix="transpose it")
    assert str(exc) == "cams.json: R: must be a rotation; transpose it"
    assert (exc.file, exc.field, exc.fix) == ("cams.json", "R", "transpose it")
    assert isinstance(exc, UserError) and isinstance(exc, ValueError)  # old `except ValueError` still works


def test_a_real_command_reports_bad_input_with_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert cli.main(["rig", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "Traceback" not in err


def test_every_listed_command_exists():
    for name in cli.COMMANDS:
        assert importlib.util.find_spec(cli._module_name(name)) is not None, name
    help_text = cli.build_parser().format_help()
    assert "not built yet" not in help_text and all(name in help_text for name in cli.COMMANDS)
