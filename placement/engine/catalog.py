"""Moved to ``gpucatalog.catalog`` (a leaf package both apps import); this name stays for older imports."""

from gpucatalog.catalog import *  # noqa: F403
from gpucatalog.catalog import CATALOG_PATH, HGX8_PARTITIONS_BY_MODULE, load_catalog  # noqa: F401
