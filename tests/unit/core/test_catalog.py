"""The prompt catalog keeps names unique and order stable."""

import pytest

from ctxfy.core.catalog import PromptCatalog
from ctxfy.core.errors import ConfigurationError
from ctxfy.core.params import ParamSpec
from ctxfy.core.prompt import PromptSpec
from ctxfy.prompts import BUILTIN_PROMPTS, builtin_catalog, prompt_schema


def spec(name: str, source: str = "builtin") -> PromptSpec:
    return PromptSpec(
        name=name, description="d", params=(ParamSpec("x"),), template="{{x}}", source=source
    )


def test_builtin_catalog_has_the_contract_prompts_in_order() -> None:
    assert builtin_catalog().names() == ("context_stack", "prp", "technical_spec")
    assert len(builtin_catalog()) == len(BUILTIN_PROMPTS)


def test_a_clashing_name_names_both_sources() -> None:
    with pytest.raises(ConfigurationError, match=r"'prp' from /x/prp\.md clashes .* from builtin"):
        builtin_catalog().extended([spec("prp", "/x/prp.md")])


def test_extended_appends_and_get_finds() -> None:
    catalog = PromptCatalog([spec("a")]).extended([spec("b")])
    assert [p.name for p in catalog] == ["a", "b"]
    assert catalog.get("b") is not None
    assert catalog.get("zzz") is None


@pytest.mark.parametrize(
    ("name", "required"),
    [
        ("context_stack", ["objective"]),
        ("prp", ["feature"]),
        ("technical_spec", ["business_requirements"]),
    ],
)
def test_builtin_schemas_name_their_required_argument(name: str, required: list[str]) -> None:
    schema = prompt_schema(name)
    assert schema["required"] == required
    assert schema["additionalProperties"] is False


def test_unknown_builtin_schema_raises_key_error() -> None:
    with pytest.raises(KeyError):
        prompt_schema("nope")
