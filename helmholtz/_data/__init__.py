"""Data set loaders: one path resolver, image and audio loaders, the registry of data sets by name."""
