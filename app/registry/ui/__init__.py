"""Approval pages: Jinja2 templates and the static files they use (no build step, no CDN)."""
