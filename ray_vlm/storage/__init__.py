"""Where a run reads and writes (``location``: local paths, shared filesystems and URIs behind one
API) and the bounded local cache of remote folders (``cache``)."""

from ray_vlm.storage.cache import CACHE_ENV, MAX_GB_ENV
from ray_vlm.storage.location import BLOCK_BYTES, Location, StorageError, is_uri, reach

__all__ = ["BLOCK_BYTES", "CACHE_ENV", "MAX_GB_ENV", "Location", "StorageError", "is_uri", "reach"]
