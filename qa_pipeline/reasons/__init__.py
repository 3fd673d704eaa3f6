"""Why customers called (来电原因): the customer's request, embedded, and grouped per period.

``request.py`` finds the request (the first substantive customer turns); ``pinned.py`` reads a
centre's own reasons (policy section ``reasons:``, example sentences each) and classifies a request
to the closest; ``groups.py`` groups the other requests by meaning and names each group by its top
words (jieba); ``assign.py`` gives every call of a period its reason; ``table.py`` writes
``OUT/reasons/`` (Parquet, partitioned by call_date like the scores).
"""
