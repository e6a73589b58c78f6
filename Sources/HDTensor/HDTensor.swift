// The HDTensor module; see DESIGN.md §2.
