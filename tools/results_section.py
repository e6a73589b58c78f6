"""Rewrites one generated block of docs/RESULTS.md: the text between its begin and end markers
(markers included) is replaced, or appended at the end when the document has none yet. Written to a
temporary name and renamed, so an interrupted run leaves the old document. Standard library only;
shared by the scripts that generate RESULTS.md's sections."""
import os


def replace_section(path, begin, end, text):
    with open(path) as f:
        doc = f.read()
    if begin in doc:
        head, rest = doc.split(begin, 1)
        doc = head + text + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    with open(path + ".tmp", "w") as f:
        f.write(doc)
    os.replace(path + ".tmp", path)
