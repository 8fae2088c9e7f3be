"""`nox -s bench`: issue 4's table, each figure with its baseline measured in the same run."""
