"""Audio codec internals: the MP3 round trip (real LAME) and mel spectrograms.

The public face is :mod:`helmholtz.audio`.
"""
