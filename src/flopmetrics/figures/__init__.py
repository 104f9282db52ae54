"""Figures: the registry (one entry per figure) and the plot functions, by stage."""
