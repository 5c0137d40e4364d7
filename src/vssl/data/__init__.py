"""Datasets: item lists read from disk formats, the torch dataset, negative audio."""
