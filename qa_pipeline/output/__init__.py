"""What people read: Parquet tables and HTML report cards (customers' numbers masked)."""
