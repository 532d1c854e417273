"""Text side of altsignal: documents, sentences, entities, sentiment models, evaluation.

`nlp` imports neither `signals` nor `timing` (dependencies flow one way, see DESIGN.md).
"""
