"""Screens: the main viewer screen (the mediator) and the help screen."""
