"""What each command does: plain functions that take a project and options and return data
for a renderer. Commands (``sqlmanage.commands``) are thin click layers over these."""
