# tests/unit.mk: test fragment (filled by its owner)
