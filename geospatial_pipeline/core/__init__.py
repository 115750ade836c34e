"""Pure domain logic: no Dagster, no boto3, no storage paths."""
