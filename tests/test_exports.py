"""The public face: `swarm.__all__` is sorted, complete and importable (as httpx checks its own)."""

import swarm
import swarm.testing


def test_all_is_sorted_and_importable() -> None:
    for module in (swarm, swarm.testing):
        assert module.__all__ == sorted(module.__all__), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_every_public_class_is_exported() -> None:
    public = {
        name
        for name, value in vars(swarm).items()
        if not name.startswith("_")
        and isinstance(value, type)
        and value.__module__.startswith("swarm")
    }
    assert public <= set(swarm.__all__)


def test_errors_share_one_base() -> None:
    from swarm import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SwarmError)
    assert issubclass(errors.ScenarioError, errors.UserError)
    assert issubclass(errors.Retryable, errors.RunError)
