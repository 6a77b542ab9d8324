"""Running the fusion networks: weight loading, threads, precision, slice batching, 3-D tiling, tri-planar
schemes and weight-map blending. ``networks/`` holds the modules themselves."""
