"""The ``vbench`` commands, one module per verb: Typer parameters in, library calls, printed output."""
