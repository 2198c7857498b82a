"""What every moviepipe service shares: the movie schema, manifest, events, settings and plumbing.

This package knows no service; services import it, never each other.
"""
