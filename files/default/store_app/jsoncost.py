"""An upper bound on the memory json.loads will use for a document, computed
at C speed before parsing, so that a small body cannot build a huge tree.

Why: the decoded-size cap does not bound the Python objects.  Measured with
tracemalloc on CPython 3.11 (1 MiB documents, peak of decode + json.loads,
as a multiple of the document size):

    [[],[],...] 22x   [[[[]]]],... 37x   [{},{},...] 25x   [{"":{}},...] 33x
    [0,0,...]-style lists 25x   {"k1":0,"k2":0,...} (unique keys) 15x
    real SDK events (Python, JavaScript, transactions) 2x to 6x

The estimate charges each structural token outside strings for the largest
object it can stand for, plus the text itself:

* ``{``  192 bytes: a dict with up to five keys (184) and its slot;
* ``[``   96 bytes: a list with up to four items (88) and its slot;
* ``:``   48 bytes: a key beyond the fifth (dict growth, with over-allocation)
  and the memo entry of a key seen for the first time;
* ``,``   40 bytes: a list slot and a number object (int or float);
* each string 56 bytes of object header (its characters are in the text);
* the text twice (the decoded str and the parsed strings), four bytes per
  character when it may hold characters outside Latin-1.

Checked against every shape above: the estimate is 1.0x to 9x what json
actually used, never less (1.2x for unique keys, the closest a document can
get while its estimate stays small); for real events it is 1.1x to 2.5x
what they use, i.e. 2.5x to 13x their size.  Characters inside strings are not counted (escapes are
handled), and all of it runs in C: a few copies of the document, a split
per 64 KiB window, and counts.
"""

DICT_BYTES = 192
LIST_BYTES = 96
KEY_BYTES = 48
ITEM_BYTES = 40
STRING_BYTES = 56

# Strings are cut out one window at a time, so that the pieces split() makes
# for a document of millions of tiny strings stay few at any moment.
WINDOW = 64 * 1024


def estimate(data):
    """Upper bound, in bytes, of what ``json.loads(data.decode())`` uses."""
    # Neutralise escapes, left to right as JSON pairs them: an escaped
    # backslash first, then escaped quotes.  Every '"' left delimits a
    # string.  (NUL cannot occur in valid JSON, so it counts as nothing.)
    plain = data.replace(b"\\\\", b"\0\0").replace(b'\\"', b"\0\0")
    dicts = lists = keys = items = 0
    pos, size = 0, len(plain)
    while pos < size:
        end = min(pos + WINDOW, size)
        if plain.count(b'"', pos, end) % 2:
            # The window would end inside a string: extend it past the string.
            close = plain.find(b'"', end)
            end = size if close < 0 else close + 1
        # Even pieces are outside strings (each window starts outside one).
        outside = b"".join(plain[pos:end].split(b'"')[::2])
        dicts += outside.count(b"{")
        lists += outside.count(b"[")
        keys += outside.count(b":")
        items += outside.count(b",")
        pos = end
    strings = plain.count(b'"') // 2
    objects = (DICT_BYTES * dicts + LIST_BYTES * lists + KEY_BYTES * keys
               + ITEM_BYTES * items + STRING_BYTES * strings)
    # Bytes per character of the decoded str: 1 for ASCII, up to 4 once a
    # character (raw, or escaped as backslash-u) may be beyond Latin-1.
    width = 1 if data.isascii() and b"\\u" not in data else 4
    return objects + 2 * width * len(data)
