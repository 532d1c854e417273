"""Data the project owns: the sample corpus, split manifests, alias table and dataset cards.

A package only so that it ships inside the wheel and is found with importlib.resources
(``core.paths``); it holds no code.
"""
