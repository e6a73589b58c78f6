// The HDModel module; see DESIGN.md §2.
