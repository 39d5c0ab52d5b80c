"""Chapter 5: the hackathon chatbot, a Vietnamese shopping assistant that finds, orders and pays.

One module per part: ``catalog`` (the shop and the ESCI loader), ``text`` (folding, teen-code,
prices), ``utterances`` (labelled messages), ``nlu`` (intent and slots), ``search`` (BM25 over
accented and folded views), ``dialog`` (the state machine), ``store`` (SQLite or PostgreSQL),
``payments`` (a mock provider and idempotency keys), ``service`` (the turn handler and the FastAPI
app), ``server`` (``serve`` and a test server), ``simulator``, ``evaluate``, ``loadtest``, and for
the page ``story`` and ``figures``. Heavy libraries are imported inside the functions that use them.
"""
