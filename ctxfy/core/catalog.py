"""The prompt catalog: built-in and user prompts under unique names."""

from collections.abc import Iterable, Iterator

import attrs

from ctxfy.core.errors import ConfigurationError
from ctxfy.core.prompt import PromptSpec


def _unique(_instance: object, _attribute: object, value: tuple[PromptSpec, ...]) -> None:
    seen: dict[str, PromptSpec] = {}
    for spec in value:
        if spec.name in seen:
            raise ConfigurationError(
                f"prompt {spec.name!r} from {spec.source} clashes with the prompt of the "
                f"same name from {seen[spec.name].source}"
            )
        seen[spec.name] = spec


def _to_tuple(prompts: Iterable[PromptSpec]) -> tuple[PromptSpec, ...]:
    return tuple(prompts)


@attrs.frozen
class PromptCatalog:
    """An ordered set of prompts with unique names.

    Attributes:
        prompts: The prompts, built-ins first.
    """

    prompts: tuple[PromptSpec, ...] = attrs.field(converter=_to_tuple, validator=_unique)

    def __iter__(self) -> Iterator[PromptSpec]:
        return iter(self.prompts)

    def __len__(self) -> int:
        return len(self.prompts)

    def get(self, name: str) -> PromptSpec | None:
        """Return the prompt called ``name``, if any."""
        return next((p for p in self.prompts if p.name == name), None)

    def names(self) -> tuple[str, ...]:
        """Return every prompt name, in catalog order."""
        return tuple(p.name for p in self.prompts)

    def extended(self, more: Iterable[PromptSpec]) -> "PromptCatalog":
        """Return a catalog with ``more`` prompts appended (names must stay unique).

        Raises:
            ConfigurationError: When a name is already taken.
        """
        return PromptCatalog((*self.prompts, *more))
