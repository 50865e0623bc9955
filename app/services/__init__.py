"""Domain operations: plain functions taking `session=`; they flush, never commit."""
