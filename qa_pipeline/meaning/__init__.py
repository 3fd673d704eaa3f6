"""Meaning: a multilingual sentence encoder shipped inside a registry wheel, behind a small interface.

``encoder.py`` turns texts into unit vectors (one implementation per wheel, registered by name);
``cache.py`` keeps each text's vector on disk, keyed by the text and the encoder's version, so a
re-score never encodes the same utterance twice.
"""
