"""Presentation: terminal and Markdown tables, the report, its figures and analysis, history."""
