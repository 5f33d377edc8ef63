#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile qcow2 images for tests/integration/qcow2-bad.t.

    qcow2-bad.py DIR

Makes base images with qemu-img and qemu-io in DIR, then one malformed
copy per case (bytes poked big-endian, as the spec lays them out), and
prints one line per case, tab-separated:

    NAME  INFO  INFO_RE  READ  READ_RE  WRITE  WRITE_RE

INFO is "fail" (`vstor img info -f qcow2` exits 1, stderr matches
INFO_RE) or "ok" (exits 0, stdout matches INFO_RE).  READ is "fail OFF
LEN PAT" or "ok OFF LEN PAT" for `vbd-io -f qcow2 --readonly FILE read
OFF LEN PAT`; WRITE is "fail [OFF]" or "ok [OFF]" for `vbd-io -f qcow2
FILE write OFF 4k 0x11` on a copy (OFF 0 unless given).  The regexes are bash ERE, matched against stderr
for failures.  Header damage refuses every open with the same message;
damage in the tables fails only the reads (and writes) that go through
it, naming the table's offset and the index.
"""
import os
import shutil
import struct
import subprocess
import sys

CL = 65536
SIZE = 8 << 20
COPIED = 1 << 63
COMPRESSED = 1 << 62
OFFSET_MASK = 0x00FFFFFFFFFFFE00

# Header fields: (offset, struct format).
F = {
    "magic": (0, "I"), "version": (4, "I"),
    "backing_file_offset": (8, "Q"), "backing_file_size": (16, "I"),
    "cluster_bits": (20, "I"), "size": (24, "Q"), "crypt_method": (32, "I"),
    "l1_size": (36, "I"), "l1_table_offset": (40, "Q"),
    "refcount_table_offset": (48, "Q"), "refcount_table_clusters": (56, "I"),
    "nb_snapshots": (60, "I"), "snapshots_offset": (64, "Q"),
    "incompatible_features": (72, "Q"), "compatible_features": (80, "Q"),
    "autoclear_features": (88, "Q"), "refcount_order": (96, "I"),
    "header_length": (100, "I"), "compression_type": (104, "B"),
}


class Img:
    """A malformed copy of a base image, poked in memory, then saved."""

    def __init__(self, base):
        with open(base, "rb") as f:
            self.b = bytearray(f.read())

    def get(self, field):
        off, fmt = F[field]
        return struct.unpack_from(">" + fmt, self.b, off)[0]

    def set(self, **fields):
        for k, v in fields.items():
            off, fmt = F[k]
            struct.pack_into(">" + fmt, self.b, off, v)
        return self

    def u64(self, off):
        return struct.unpack_from(">Q", self.b, off)[0]

    def put64(self, off, v):
        struct.pack_into(">Q", self.b, off, v)

    def l1(self):
        return self.get("l1_table_offset")

    def l2(self):
        """Host offset of the first L2 table."""
        return self.u64(self.l1()) & OFFSET_MASK

    def ext_start(self):
        return self.get("header_length") if self.get("version") >= 3 else 72

    def save(self, path, length=None):
        with open(path, "wb") as f:
            f.write(self.b if length is None else self.b[:length])


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def make_bases(d):
    bases = {}
    for name, opts in (("v3", "compat=1.1"), ("v2", "compat=0.10")):
        p = os.path.join(d, "base-%s.qcow2" % name)
        sh("qemu-img", "create", "-q", "-f", "qcow2", "-o",
           opts + ",cluster_size=%d" % CL, p, str(SIZE))
        sh("qemu-io", "-f", "qcow2", "-c", "write -P 0xa1 0 64k",
           "-c", "write -P 0xa2 1M 64k", p)
        bases[name] = p
    p = os.path.join(d, "base-v3-4k.qcow2")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096",
       p, str(SIZE))
    sh("qemu-io", "-f", "qcow2", "-c", "write -P 0xa1 0 64k", p)
    bases["v3-4k"] = p
    p = os.path.join(d, "base-comp.qcow2")
    sh("qemu-img", "convert", "-c", "-O", "qcow2", "-o",
       "compression_type=zlib,cluster_size=%d" % CL, bases["v3"], p)
    bases["comp"] = p
    p = os.path.join(d, "base-snap.qcow2")
    shutil.copy(bases["v3"], p)
    sh("qemu-img", "snapshot", "-c", "s1", p)
    bases["snap"] = p
    return bases


def main():
    d = sys.argv[1]
    bases = make_bases(d)
    v3 = Img(bases["v3"])
    # The layout this relies on (qemu-img's, 64 KiB clusters): cluster 0
    # the header, 1 the refcount table, 2 a refcount block, 3 the L1
    # table, 4 the first L2 table, 5 guest cluster 0 (0xa1).
    assert v3.get("refcount_table_offset") == CL and v3.l1() == 3 * CL
    assert v3.l2() == 4 * CL and v3.u64(4 * CL) == COPIED | 5 * CL

    cases = []
    # What every open of a header-damaged image says.
    HEADER = object()

    def case(name, img, info, info_re, read=HEADER, read_re=None,
             write="fail", write_re=None, length=None):
        path = os.path.join(d, name + ".qcow2")
        img.save(path, length)
        if read is HEADER:
            read, read_re = "fail 0 4k 0xa1", info_re
        if write_re is None:
            write_re = "-" if write.startswith("ok") else info_re
        cases.append((name, info, info_re, read, read_re or "-", write,
                      write_re))

    def hdr(name, info_re, base="v3", length=None, **fields):
        case(name, Img(bases[base]).set(**fields), "fail", info_re,
             length=length)

    # The header proper.
    hdr("magic", r"magic 0x514649fa is not qcow2", magic=0x514649FA)
    hdr("version-1", r"qcow2 version 1 is not supported", version=1)
    hdr("version-4", r"qcow2 version 4 is not supported", version=4)
    hdr("cluster-bits-8", r"cluster_bits 8 is outside 9\.\.21",
        cluster_bits=8)
    hdr("cluster-bits-22", r"cluster_bits 22 is outside 9\.\.21",
        cluster_bits=22)
    hdr("header-length-small", r"header_length 96 is not", header_length=96)
    hdr("header-length-big", r"header_length 65544 is not",
        header_length=CL + 8)
    hdr("header-truncated", r"truncated qcow2 header: the file has 50",
        length=50)
    hdr("header-v3-truncated", r"truncated qcow2 version 3 header: 90 of",
        length=90)
    hdr("size-2-63", r"size 9223372036854775808 does not fit", size=1 << 63)
    hdr("l1-size-huge", r"l1_size 268435456 makes an L1 table larger than "
        r"32 MiB", l1_size=0x10000000)
    hdr("l1-size-too-small", r"l1_size 1 is too small for size 1073741824",
        size=1 << 30)
    hdr("l1-unaligned", r"l1_table_offset 0x30200 is not aligned",
        l1_table_offset=3 * CL + 512)
    hdr("l1-past-end", r"l1_table_offset 0x1000000 with l1_size 1 is past "
        r"the end of the file", l1_table_offset=256 * CL)
    hdr("l1-over-header", r"l1_table_offset 0x0 \(the L1 table, 8 bytes\) "
        r"overlaps the header cluster", l1_table_offset=0)
    hdr("l1-over-refcount-table", r"refcount_table_offset 0x10000 \(the "
        r"refcount table, 65536 bytes\) overlaps l1_table_offset 0x10000 "
        r"\(the L1 table, 8 bytes\)",
        l1_table_offset=CL)
    hdr("rt-unaligned", r"refcount_table_offset 0x10008 is not aligned",
        refcount_table_offset=CL + 8)
    hdr("rt-zero", r"refcount_table_offset 0x0 \(the refcount table, 65536 "
        r"bytes\) overlaps the header cluster", refcount_table_offset=0)
    hdr("rt-over-l1", r"refcount_table_offset 0x30000 \(.*\) overlaps "
        r"l1_table_offset 0x30000 \(the L1 table", refcount_table_offset=3 * CL)
    hdr("rt-past-end", r"refcount_table_offset 0x1000000 with "
        r"refcount_table_clusters 1 is past the end",
        refcount_table_offset=256 * CL)
    hdr("rt-clusters-huge", r"refcount_table_clusters 129 makes a refcount "
        r"table larger than 8 MiB", refcount_table_clusters=129)
    hdr("rt-clusters-zero", r"refcount_table_clusters 0: the image has no "
        r"refcount table", refcount_table_clusters=0)
    hdr("refcount-order-7", r"refcount_order 7 is larger than 6",
        refcount_order=7)
    hdr("crypt-aes", r"encrypted images are not supported \(crypt_method "
        r"1\)", crypt_method=1)
    hdr("crypt-luks", r"encrypted images are not supported \(crypt_method "
        r"2\)", crypt_method=2)
    hdr("incompat-bit-17", r"unknown incompatible feature bit 17 in "
        r"incompatible_features 0x20000", incompatible_features=1 << 17)
    hdr("incompat-bit-63", r"unknown incompatible feature bit 63",
        incompatible_features=1 << 63)
    hdr("data-file-bit", r"incompatible feature bit 2 \(external data "
        r"file\) is not supported", incompatible_features=1 << 2)
    # Subclusters need clusters of 16 KiB at least.
    hdr("extended-l2-small-cluster", r"extended L2 entries \(incompatible "
        r"bit 4\) with cluster_bits 12: subclusters need clusters of at "
        r"least 16 KiB",
        base="v3-4k", incompatible_features=1 << 4)
    hdr("compression-type-2", r"compression_type 2 is unknown",
        incompatible_features=1 << 3, compression_type=2)
    hdr("compression-bit-no-field", r"incompatible feature bit 3 "
        r"\(compression type\) is set but header_length 104 leaves no room "
        r"for compression_type", incompatible_features=1 << 3,
        header_length=104)
    hdr("compression-bit-clear-zstd", r"compression_type 1 does not match "
        r"incompatible feature bit 3 \(clear\)", compression_type=1)
    # Snapshots, as far as the header tells.
    hdr("nb-snapshots-huge", r"nb_snapshots 2147483647 is more than 65536",
        nb_snapshots=0x7FFFFFFF, snapshots_offset=6 * CL)
    hdr("snapshots-unaligned", r"snapshots_offset 0x60008 is not aligned",
        nb_snapshots=1, snapshots_offset=6 * CL + 8)
    hdr("snapshots-past-end", r"snapshots_offset 0x1000000 with "
        r"nb_snapshots 1 is past the end", nb_snapshots=1,
        snapshots_offset=256 * CL)
    hdr("snapshots-over-header", r"snapshots_offset 0x0 \(the snapshot "
        r"table, 40 bytes\) overlaps the header cluster", nb_snapshots=1,
        snapshots_offset=0)
    hdr("snapshots-over-l1", r"snapshots_offset 0x30000 \(the snapshot "
        r"table, 40 bytes\) overlaps l1_table_offset 0x30000",
        nb_snapshots=1, snapshots_offset=3 * CL)
    snap = Img(bases["snap"])
    left = len(snap.b) - snap.get("snapshots_offset")
    n = left // 40 + 1
    case("snapshots-count-past-end", snap.set(nb_snapshots=n), "fail",
         r"snapshots_offset 0x[0-9a-f]+ with nb_snapshots %d is past the "
         r"end" % n)
    # The backing file name.
    name = b"b" * 1024
    img = Img(bases["v3"])
    img.b[0x400:0x400 + len(name)] = name
    case("backing-name-1024", img.set(backing_file_offset=0x400,
                                      backing_file_size=1024), "fail",
         r"backing_file_size 1024 is not between 1 and 1023")
    hdr("backing-offset-past-cluster", r"backing_file_offset 65530 with "
        r"backing_file_size 10 is outside the first cluster",
        backing_file_offset=CL - 6, backing_file_size=10)
    hdr("backing-over-header", r"backing_file_offset 16 overlaps the header "
        r"\(header_length 112\)", backing_file_offset=16,
        backing_file_size=8)
    img = Img(bases["v3"])
    img.b[0x400:0x408] = b"ab\0cdefg"
    case("backing-name-nul", img.set(backing_file_offset=0x400,
                                     backing_file_size=8), "fail",
         r"the backing file name at offset 1024 contains a NUL byte")
    # The spec leaves backing_file_size undefined without a backing file:
    # QEMU ignores it, and so do we.
    case("backing-size-no-offset", Img(bases["v3"]).set(
        backing_file_size=5000), "ok", r"file format: qcow2",
        "ok 0 64k 0xa1", None, "ok")
    # Header extensions: one, then the end marker, replacing qemu-img's.
    def ext(img, typ, data, length=None):
        e = img.ext_start()
        n = len(data) if length is None else length
        struct.pack_into(">II", img.b, e, typ, n)
        img.b[e + 8:e + 8 + len(data)] = data
        end = e + 8 + (len(data) + 7) // 8 * 8
        img.b[end:end + 8] = bytes(8)
        return img

    def feature(kind, bit, name):
        return struct.pack(">BB46s", kind, bit, name)

    e = Img(bases["v3"]).ext_start()
    case("ext-past-cluster", ext(Img(bases["v3"]), 0x6803F857, b"", CL),
         "fail", r"header extension 0x6803f857 at offset %d with length "
         r"65536 runs past the end of the first cluster" % e)
    img = ext(Img(bases["v3"]), 0x6803F857, feature(0, 17, b"bit17") * 3)
    case("feature-table-truncated", img, "fail", r"header extension "
         r"0x6803f857 at offset %d with length 144 runs past the end of the "
         r"file" % e, length=e + 8 + 100)
    img = ext(Img(bases["v3"]), 0xE2792ACA, b"q" * 100)
    case("backing-format-too-long", img, "fail", r"backing format "
         r"extension at offset %d \(length 100\) is not a format name" % e)
    # The feature name table names an unknown bit.
    img = ext(Img(bases["v3"]).set(incompatible_features=1 << 17),
              0x6803F857, feature(1, 0, b"compat") +
              feature(0, 17, b"frobnication"))
    case("incompat-bit-named", img, "fail",
         r"unknown incompatible feature bit 17 \(frobnication\)")

    # Tables: the header is fine, reads through the damage fail.
    def table(name, base, poke, read_re, write="fail", write_re=None,
              read="fail 0 4k 0xa1"):
        img = Img(bases[base])
        poke(img)
        case(name, img, "ok", r"file format: qcow2", read, read_re, write,
             write_re or read_re)

    eio = r".*Input/output error"
    table("l2-entry-unaligned", "v3",
          lambda i: i.put64(i.l2(), COPIED | (5 * CL + 512)),
          r"corrupt image: data cluster not aligned: L2 table at offset "
          r"0x40000, index 0: entry 0x8000000000050200" + eio,
          write_re=r"L2 table at offset 0x40000, index 0" + eio)
    table("l2-entry-past-end", "v3",
          lambda i: i.put64(i.l2(), COPIED | (1 << 40)),
          r"corrupt image: data cluster past the end of the file: L2 table "
          r"at offset 0x40000, index 0" + eio,
          write_re=r"L2 table at offset 0x40000, index 0" + eio)
    table("l1-entry-unaligned", "v3",
          lambda i: i.put64(i.l1(), COPIED | (4 * CL + 512)),
          r"corrupt image: L2 table not cluster-aligned inside the file: L1 "
          r"table at offset 0x30000, index 0" + eio)
    table("l1-entry-past-end", "v3",
          lambda i: i.put64(i.l1(), COPIED | (1 << 40)),
          r"corrupt image: L2 table not cluster-aligned inside the file: L1 "
          r"table at offset 0x30000, index 0" + eio)
    table("zero-flag-v2", "v2", lambda i: i.put64(i.l2(), i.u64(i.l2()) | 1),
          r"corrupt image: zero flag in a version 2 image: L2 table at "
          r"offset 0x[0-9a-f]+, index 0" + eio)

    comp = Img(bases["comp"])
    ent = comp.u64(comp.l2())
    assert ent & COMPRESSED, "guest cluster 0 is not compressed"
    x = 62 - (16 - 8)
    host = ent & ((1 << x) - 1)

    def past_end(i):
        i.put64(i.l2(), (ent & ~((1 << x) - 1)) | (len(i.b) + 4096))

    table("compressed-past-end", "comp", past_end,
          r"corrupt image: compressed cluster past the end of the file: L2 "
          r"table at offset 0x[0-9a-f]+, index 0" + eio)

    def garbage(i):
        i.b[host:host + 64] = b"\xff" * 64

    table("compressed-garbage", "comp", garbage,
          r"compressed cluster at host offset 0x%x .* does not decompress"
          % host + eio)

    # Refcounts are read only when writing.
    table("refcount-block-unaligned", "v3",
          lambda i: i.put64(CL, 2 * CL + 512), None, read="ok 0 64k 0xa1",
          write_re=r"refcount table entry 0 is 0x20200 \(not a cluster "
          r"inside the file")
    # Metadata that points at other metadata: the image is corrupt, and
    # writing through it would overwrite its own tables.
    table("l2-entry-at-l1-table", "v3",
          lambda i: i.put64(i.l2(), COPIED | 3 * CL),
          r"data cluster over the image's own metadata: L2 table at "
          r"offset 0x40000, index 0" + eio, read="fail 8 8 0",
          write_re=r"L1 table|overlap|metadata")
    table("l1-entry-at-refcount-table", "v3",
          lambda i: i.put64(i.l1(), COPIED | CL),
          r"L2 table over the image's own metadata: L1 table at offset "
          r"0x30000, index 0" + eio, read="fail 0 4k 0",
          write_re=r"refcount table|overlap|metadata")

    table("refcount-block-at-l1-table", "v3",
          lambda i: i.put64(CL, 3 * CL), None, read="ok 0 64k 0xa1",
          write="fail 64k", write_re=r"refcount|overlap|metadata")

    for c in cases:
        print("\t".join(c))


if __name__ == "__main__":
    main()
