"""Autodetection: comparing models with the schema the migrations build, and the
operations written for what differs (online-safe forms, enums, renames, names)."""
