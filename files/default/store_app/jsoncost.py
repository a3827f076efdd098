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
* 4 KB for the decoder itself;
* the text twice (the decoded str and the parsed strings), four bytes per
  character when it may hold characters outside Latin-1.

Checked against every shape above: the estimate is 1.0x to 9x what json
actually used, never less (1.2x for unique keys, the closest a document can
get while its estimate stays small); for real events it is 1.1x to 2.5x
what they use, i.e. 2.5x to 13x their size.  Characters inside strings are
not counted (escapes are handled), and all of it runs in C: a copy or two
of the document, one translate() down to the characters that count, a split
per 64 KiB window of that, and counts (about 2 ms for 1 MB).
"""

DICT_BYTES = 192
LIST_BYTES = 96
KEY_BYTES = 48
ITEM_BYTES = 40
STRING_BYTES = 56
# What any parse costs (the decoder's own objects: about 1.4 KB measured).
BASE_BYTES = 4096

# The most one byte of JSON can cost: a "{" and its share of the text.
MAX_BYTES_PER_BYTE = DICT_BYTES + 8

# Strings are cut out one window at a time, so that the pieces split() makes
# for a document of millions of tiny strings stay few at any moment.
WINDOW = 64 * 1024
# Everything but the characters that count is dropped in one translate().
_DROP = bytes(b for b in range(256) if b not in b'{[:,"')


def _cost(data, dicts, lists, keys, items, strings):
    # Bytes per character of the decoded str: 1 for ASCII, up to 4 once a
    # character (raw, or escaped as backslash-u) may be beyond Latin-1.
    # (One byte is found at memchr speed, two 30 times slower: look for a
    # backslash first.)
    width = 1 if data.isascii() and (b"\\" not in data or b"\\u" not in data) else 4
    return (BASE_BYTES + DICT_BYTES * dicts + LIST_BYTES * lists
            + KEY_BYTES * keys + ITEM_BYTES * items + STRING_BYTES * strings
            + 2 * width * len(data))


def estimate(data):
    """Upper bound, in bytes, of what ``json.loads(data.decode())`` uses."""
    if b"\\" in data:
        # Neutralise escapes, left to right as JSON pairs them: an escaped
        # backslash first, then escaped quotes.  Every '"' left delimits a
        # string.
        data_ = data.replace(b"\\\\", b"\0\0").replace(b'\\"', b"\0\0")
    else:
        data_ = data
    # The document reduced to { [ : , and quotes.
    skeleton = data_.translate(None, _DROP)
    del data_
    dicts = lists = keys = items = 0
    pos, size = 0, len(skeleton)
    while pos < size:
        end = min(pos + WINDOW, size)
        if skeleton.count(b'"', pos, end) % 2:
            # The window would end inside a string: extend it past the string.
            close = skeleton.find(b'"', end)
            end = size if close < 0 else close + 1
        # Even pieces are outside strings (each window starts outside one).
        outside = b"".join(skeleton[pos:end].split(b'"')[::2])
        dicts += outside.count(b"{")
        lists += outside.count(b"[")
        keys += outside.count(b":")
        items += outside.count(b",")
        pos = end
    return _cost(data, dicts, lists, keys, items, skeleton.count(b'"') // 2)


def rough_estimate(data):
    """An upper bound of estimate(): every character that can count (even
    inside a string) charged as a "{".  One translate(), no split: about a
    third of estimate()'s time."""
    return _cost(data, len(data.translate(None, _DROP)), 0, 0, 0, 0)


def fits(data, budget):
    """True if json.loads(data.decode()) stays within ``budget`` bytes.

    A document too small to reach the budget even if every byte were a "{"
    is not looked at (most events); one whose rough_estimate() fits needs
    nothing more (most of the others); the rest pay for estimate().
    """
    return (BASE_BYTES + len(data) * MAX_BYTES_PER_BYTE <= budget
            or rough_estimate(data) <= budget
            or estimate(data) <= budget)
