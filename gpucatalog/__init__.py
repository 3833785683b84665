"""NVIDIA GPU facts shared by inventory and placement: the board catalog and the vGPU profile-name parser.

A leaf package: it imports neither app nor Django (an import-linter contract enforces it).
"""
