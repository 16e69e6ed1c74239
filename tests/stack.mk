# tests/stack.mk: test fragment (filled by its owner)
