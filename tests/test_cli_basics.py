import pytest
from click.testing import CliRunner

from lldif_bench import __version__
from lldif_bench.cli.main import main
from lldif_bench.registry import Registry, RegistryError


def test_version_and_help():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0 and "info" in r.output


def test_info_lists_backends():
    r = CliRunner().invoke(main, ["info"])
    assert r.exit_code == 0, r.output
    assert "torch" in r.output and "device:" in r.output
    assert "face-alignment landmarks" in r.output and "dlib landmarks" in r.output


def test_registry_unknown_name_lists_available():
    reg = Registry("thing")
    reg.register("a", help="first")(object())
    with pytest.raises(RegistryError, match="available: a"):
        reg.get("b")
    with pytest.raises(RegistryError, match="twice"):
        reg.add("a", object())
    assert reg.help("a") == "first" and "a" in reg and len(reg) == 1
