"""Haystack codecs: Zinc, JSON v3/v4, Trio and CSV behind one encode/decode entry point."""
