"""Session fixture of the recipe smoke tests: the smoke-size synth_en data, built once (see recipe_util)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from recipe_util import DATA_CMD, copy_recipe_tree, run  # noqa: E402


@pytest.fixture(scope="session")
def smoke_recipe(tmp_path_factory):
    """(egs/synth_en copy, output of the data stages, their wall time): stages 1-3 at smoke size, once."""
    recipe = copy_recipe_tree(tmp_path_factory.mktemp("recipe"))
    out, t = run(DATA_CMD, recipe / "asr")
    return recipe, out, t
