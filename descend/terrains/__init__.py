"""Test functions with known minima and saddles, for watching descents.

``get_terrain(name, **knobs)`` returns a :class:`Terrain`: the function (on points
along the last axis), its global minima and value, saddle points, a plotting
domain, standard start points and default learning rates per optimizer.
"""

from descend.terrains.base import Point, Terrain
from descend.terrains.registry import TERRAIN_NAMES, get_terrain

__all__ = ["TERRAIN_NAMES", "Point", "Terrain", "get_terrain"]
