"""A real-speech anti-spoofing benchmark built only from Debian packages (see README.md)."""
