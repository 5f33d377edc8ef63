#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A seeded random write pattern for the qcow2 matrix test.

    qcow2-pattern.py SEED SIZE CLUSTER OUTDIR

writes three files into OUTDIR:
  vbd-io.ops  the pattern as tests/tools/vbd-io operations, one per line
  qemu-io.cmd the same as qemu-io commands (whole aligned clusters never
              written before use 'write -c', so that qemu-io writes
              compressed clusters too)
  model.raw   what a raw disk holds after the pattern, as vstor's qcow2
              driver defines discard: whole clusters read as zeros,
              partial ones keep their data (discard is advisory)

Writes overlap, are unaligned or cluster-aligned, cross cluster and L2
table boundaries; some ranges are zeroed (with and without unmap) and
some discarded; flushes come every few operations.
"""
import os
import random
import sys


def main():
    seed, size, cluster, outdir = (int(sys.argv[1]), int(sys.argv[2]),
                                   int(sys.argv[3]), sys.argv[4])
    rnd = random.Random(seed)
    model = bytearray(size)
    ops, cmds = [], []
    # Clusters something wrote to: qemu-io compresses only into clusters
    # that were never allocated (QEMU refuses to overwrite with -c).
    touched = set()

    def touch(off, length):
        fresh = all(c not in touched
                    for c in range(off // cluster,
                                   (off + length - 1) // cluster + 1))
        touched.update(range(off // cluster,
                             (off + length - 1) // cluster + 1))
        return fresh

    def pick_range(maxlen):
        if rnd.random() < 0.3:
            # whole clusters
            n = rnd.randint(1, max(1, min(maxlen // cluster, 8)))
            start = rnd.randrange(0, size // cluster - n + 1) * cluster
            return start, n * cluster
        length = rnd.randint(1, maxlen)
        start = rnd.randrange(0, size - length + 1)
        return start, length

    for i in range(60):
        r = rnd.random()
        if r < 0.7:
            off, length = pick_range(300 * 1024)
            pat = rnd.randint(1, 255)
            model[off:off + length] = bytes([pat]) * length
            ops.append("write %d %d 0x%02x" % (off, length, pat))
            aligned = off % cluster == 0 and length % cluster == 0
            aligned = touch(off, length) and aligned
            cmds.append("write %s-P 0x%02x %d %d" %
                        ("-c " if aligned else "", pat, off, length))
        elif r < 0.85:
            off, length = pick_range(200 * 1024)
            unmap = rnd.random() < 0.5
            model[off:off + length] = bytes(length)
            touch(off, length)
            ops.append("zero %d %d%s" % (off, length,
                                         " unmap" if unmap else ""))
            cmds.append("write -z %s%d %d" % ("-u " if unmap else "", off,
                                              length))
        else:
            off, length = pick_range(200 * 1024)
            a = -(-off // cluster) * cluster
            b = (off + length) // cluster * cluster
            if off + length == size:
                b = -(-size // cluster) * cluster
            if a < b:
                model[a:min(b, size)] = bytes(min(b, size) - a)
            ops.append("discard %d %d" % (off, length))
            cmds.append("discard %d %d" % (off, length))
        if i % 7 == 6:
            ops.append("flush")
            cmds.append("flush")

    with open(os.path.join(outdir, "vbd-io.ops"), "w") as f:
        f.write("\n".join(ops) + "\n")
    with open(os.path.join(outdir, "qemu-io.cmd"), "w") as f:
        f.write("\n".join(cmds) + "\n")
    with open(os.path.join(outdir, "model.raw"), "wb") as f:
        f.write(model)


if __name__ == "__main__":
    main()
