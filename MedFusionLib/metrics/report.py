def format_table(r): return ""
