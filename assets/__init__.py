"""Breeze's packaged data: the model catalog."""
