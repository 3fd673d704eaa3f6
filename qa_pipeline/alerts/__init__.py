"""Alerts (预警): what the night found that cannot wait for the morning, sent to the centre's IM bot or mail gateway.

``config.py`` reads the policy file's ``notify:`` section; ``events.py`` finds what to send (a
critical fail, a customer threatening a regulator, a reason that doubled, a dispute past its deadline); ``send.py`` posts JSON to a webhook or runs a command, with a timeout and retries, and
logs every attempt to ``OUT/alerts/sent.jsonl`` (an alert already sent is not sent again).
"""
