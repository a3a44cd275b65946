#!/usr/bin/env python3
"""Counts the pages that differ between two SQLite files of one database (before and after a change), and writes
the differing pages of the second file to OUT, one after another: what a page-level incremental backup would carry
at the least, and their page numbers to OUT.idx (8 bytes each, little-endian). Usage: pagediff.py BEFORE AFTER OUT

   pagediff.py --apply FILE OUT   writes OUT's pages into FILE at their places and fsyncs it: the work of a restore
                                  that applies a page-level incremental to the image already written."""
import os
import sys

if sys.argv[1] == '--apply':
    target, src = sys.argv[2:4]
    with open(src + '.idx', 'rb') as f:
        idx = f.read()
    fd = os.open(target, os.O_WRONLY)
    with open(src, 'rb') as pages:
        size = os.path.getsize(src) // (len(idx) // 8) if idx else 0
        for k in range(0, len(idx), 8):
            os.pwrite(fd, pages.read(size), int.from_bytes(idx[k:k + 8], 'little') * size)
    os.fsync(fd)
    os.close(fd)
    print(f"applied {len(idx) // 8} pages")
    sys.exit(0)

before, after, out = sys.argv[1:4]
with open(after, 'rb') as f:
    header = f.read(100)
page = int.from_bytes(header[16:18], 'big')
page = 65536 if page == 1 else page
chunk = page * 4096
same = differ = grown = 0
with open(before, 'rb') as b, open(after, 'rb') as a, open(out, 'wb') as o, open(out + '.idx', 'wb') as ix:
    n = 0
    while True:
        x = a.read(chunk)
        if not x:
            break
        y = b.read(len(x))
        if x == y:
            same += len(x) // page
            n += len(x) // page
            continue
        for i in range(0, len(x), page):
            p = x[i:i + page]
            q = y[i:i + page]
            if len(q) < page:
                grown += 1
                o.write(p)
                ix.write(n.to_bytes(8, 'little'))
            elif p != q:
                differ += 1
                o.write(p)
                ix.write(n.to_bytes(8, 'little'))
            else:
                same += 1
            n += 1
total = same + differ + grown
print(f"page_size={page} pages={total} same={same} differ={differ} grown={grown} "
      f"changed_pct={100.0 * (differ + grown) / total:.1f} changed_bytes={(differ + grown) * page}")
