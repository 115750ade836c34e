"""The lake: object keys, storage backends and the writers of every published object."""
