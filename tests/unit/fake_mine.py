"""A stand-in for Salt's mine.get over a dict {function: {minion: data}}."""

from unittest.mock import Mock

import salt.modules.mine


def mine_get(published: dict) -> Mock:
    """A Mock of mine.get answering from `published` (changes to it are seen): a function
    gives {minion: data}, a list of functions {function: {minion: data}} as Salt does."""

    def one(tgt, fun):
        data = published.get(fun, {})
        return data if tgt == "*" else {k: v for k, v in data.items() if k == tgt}

    def fake(tgt, fun, **_):
        if isinstance(fun, list):
            return {name: one(tgt, name) for name in fun if one(tgt, name)}
        return one(tgt, fun)

    mock = Mock(spec=salt.modules.mine.get, side_effect=fake)
    mock.published = published
    return mock
