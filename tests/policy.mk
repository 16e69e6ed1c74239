# tests/policy.mk: test fragment (filled by its owner)
