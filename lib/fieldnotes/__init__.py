"""Field Notes, Rebuilt: the tested package behind the book's notebooks.

One subpackage per chapter (``memory``, ``vlm``, ``trips``, ``robot``) plus the book's own
machinery (``book`` for seeding and key numbers, ``runner`` for executing and building).
Heavy engines (Spark, DeepSpeed, PyBullet) are imported inside the functions that need them,
so ``import fieldnotes`` stays fast.
"""

from fieldnotes.book import record_key_numbers, seed_everything

__all__ = ["record_key_numbers", "seed_everything"]
__version__ = "0.1.0"
