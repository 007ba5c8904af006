"""Sandbox runs in real containers. Every resource carries kit's labels and is removed
afterwards, also after a failure or an interrupt."""
