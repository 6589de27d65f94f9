"""Compiler flags shared by every target of the project."""

ARENA_COPTS = [
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
]
