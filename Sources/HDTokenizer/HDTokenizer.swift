// The HDTokenizer module; see DESIGN.md §2.
