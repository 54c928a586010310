"""Codec internals: validation, the Coefficients container, the NumPy reference, backends.

The public face is :mod:`helmholtz.jpeg` (and :mod:`helmholtz.info` for the
information measures). Modules here import nothing above the codec layer.
"""
