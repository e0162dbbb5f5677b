"""The example project's models. This package imports only the base: sqlmanage finds the
model modules by itself (reviews.py is imported by nothing else)."""

from project.models.base import Base

__all__ = ["Base"]
