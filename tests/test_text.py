"""The words' one home (bot.text): each name is defined by one module of the package."""

import ast
import inspect

from bot import text


def test_every_name_has_one_home():
    homes: dict[str, list[str]] = {}
    for area in text.__all__:
        tree = ast.parse(inspect.getsource(getattr(text, area)))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            else:
                continue
            for name in names:
                homes.setdefault(name, []).append(area)
    assert {name: areas for name, areas in homes.items() if len(areas) > 1} == {}
    assert "HEADER" in homes and "deny_message" in homes  # the walk found the words
