"""hfp8sim: a cycle-level, bit-accurate simulator of an FP8 (Hybrid-FP8) AI core."""

__version__ = "0.1.0"
