"""Readers: real source formats -> Documents or labeled examples, with rejects for bad rows.

- :mod:`nlp.readers.records`: raw rows of CSV / JSONL / Parquet with their source line numbers.
- :mod:`nlp.readers.timestamps`: parsing ``published_at`` under the point-in-time rules.
- :mod:`nlp.readers.documents`: the Document contract from any file through a ``ColumnMapping``;
  presets for the shared dated sets and the sample corpus.
- :mod:`nlp.readers.phrasebank`, :mod:`nlp.readers.tfns`: the two labeled sentiment sets in
  their original formats.
- :mod:`nlp.readers.labeled_table`: any labeled CSV / JSONL / Parquet with a label map.
- :mod:`nlp.readers.hub`: Hugging Face hub datasets through ``datasets.load_dataset``.

Names of labeled sets (``fpb:50agree:test``...) resolve in :mod:`nlp.labeled_sets`, above the
canonical splits (:mod:`nlp.splits`) these readers feed.
"""
