"""The library members our code overrides or calls beyond their documented use: each
module lists them (OVERRIDDEN, CALLED, RELIED_ON), and its test checks each one here,
so that a library upgrade that renames one or changes its parameters fails by name."""

import inspect


def assert_unchanged(owner: type, name: str, parameters: tuple[str, ...]) -> None:
    """``owner`` still has ``name``, with exactly these parameters."""
    member = f"{owner.__module__}.{owner.__qualname__}.{name}"
    original = getattr(owner, name, None)
    assert original is not None, f"{member}() is gone"
    found = tuple(inspect.signature(original).parameters)
    assert found == parameters, f"{member}{found} is not {member}{parameters}"
