"""The customer's mood (客户情绪): a frustration score per customer turn, from the words and the voice.

``voice.py`` measures pitch and loudness while the call is decoded (cached with the transcript);
``words.py`` is the word side (the complaint classifier, closeness to frustrated and calm example
sentences); ``features.py`` puts each customer turn beside the caller's own first turns; ``model.py``
combines them with the small logistic model in ``data/mood.json`` (trained by ``tools/train_mood.py``)
into each turn's frustration, the call's peak and end, and whether the agent calmed them.
"""
