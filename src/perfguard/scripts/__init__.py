"""Stdlib-only scripts that run inside build sandboxes under the target's own interpreter."""
