"""The foundation every package stands on: errors and exit codes, paths, atomic writes, rejects,
content hashes and the cache folder, the config-file loader, thread settings, process lifecycle,
progress and logging, and the parsing of as-of instants.

It imports no other package of the project (only ``corpora`` for the shipped data's location), so
``nlp``, ``signals``, ``timing`` and the application layer ``altsignal`` can all use it.
"""
