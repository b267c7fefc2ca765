"""The `pixmorph data TOOL` subcommands besides synth: one module per tool."""

from pixmorph.commands.data_tools import check, colorize, combine, edges, split, unpair

TOOLS = [combine, split, edges, colorize, unpair, check]
