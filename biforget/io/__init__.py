"""Reading and writing records."""

from biforget.io.jsonl import InputSource, RecordWriter, iter_records, open_input

__all__ = ["InputSource", "RecordWriter", "iter_records", "open_input"]
