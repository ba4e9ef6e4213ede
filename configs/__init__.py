"""The experiment configs, installed with the package as ``badger_graph.configs``.

Name one by its path here without ``.yaml`` (``badger fit --config guessing_game``,
``--config compare/bandits_badger``); see :mod:`badger_graph.pretrained`.
"""
