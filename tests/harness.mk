# tests/harness.mk: test fragment (filled by its owner)
