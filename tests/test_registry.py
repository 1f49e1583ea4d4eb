import pytest

from videotl.registry import Registry, RegistryError


def test_register_and_get():
    registry: Registry = Registry("thing")

    @registry.register("a")
    def build_a():
        return 1

    assert registry.get("a") is build_a
    assert "a" in registry and registry.names() == ["a"] and len(registry) == 1


def test_duplicate_names_are_refused():
    registry: Registry = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(RegistryError, match="thing 'a' is already registered"):
        registry.add("a", 2)
    assert registry.get("a") == 1


def test_unknown_name_suggests_close_matches():
    registry: Registry = Registry("model")
    registry.add("vivit_b16", 1)
    registry.add("vivit_l16", 2)
    with pytest.raises(RegistryError, match=r"unknown model 'vivit_b61'; did you mean 'vivit_b16'"):
        registry.get("vivit_b61")
