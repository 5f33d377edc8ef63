#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile VMDK images for tests/integration/vmdk-bad.t.

    vmdk-bad.py DIR MONO STREAM

MONO is a monolithicSparse image with data in its first grains (made by
qemu-img), STREAM a streamOptimized one with the GD at the end (made by
vstor).  Writes one malformed image (or descriptor set) per case into
DIR and prints one line per case, tab-separated:

    NAME  FILE  INFO  INFO_RE  READ  READ_RE

INFO is "fail" (`vstor img info -f vmdk FILE` exits 1, stderr matches
INFO_RE) or "ok"; READ likewise for `vbd-io -f vmdk --readonly FILE dump
/dev/null`.  The regexes are bash ERE.  Damage to the header or the
descriptor refuses the open; damage to a table entry or a grain fails
only the reads through it.
"""
import os
import struct
import sys

# Header fields: (offset, struct format), little-endian.
F = {
    "magic": (0, "I"), "version": (4, "I"), "flags": (8, "I"),
    "capacity": (12, "Q"), "grain": (20, "Q"), "desc_offset": (28, "Q"),
    "desc_size": (36, "Q"), "num_gtes": (44, "I"), "rgd_offset": (48, "Q"),
    "gd_offset": (56, "Q"), "overhead": (64, "Q"), "compress": (77, "H"),
}
GD_AT_END = 0xFFFFFFFFFFFFFFFF


class Img:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.b = bytearray(f.read())

    def get(self, field, base=0):
        off, fmt = F[field]
        return struct.unpack_from("<" + fmt, self.b, base + off)[0]

    def set(self, base=0, **fields):
        for k, v in fields.items():
            off, fmt = F[k]
            struct.pack_into("<" + fmt, self.b, base + off, v)
        return self

    def u32(self, off, v=None):
        if v is None:
            return struct.unpack_from("<I", self.b, off)[0]
        struct.pack_into("<I", self.b, off, v)
        return self

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.b)


def rename(img, new):
    """The embedded descriptor (sectors 1-20 in both base images) names
    its own file: name the copy instead, keeping the region's size."""
    region = bytes(img.b[512:512 + 20 * 512])
    for base in (b'"mono.vmdk"', b'"stream.vmdk"'):
        if base in region:
            text = region.replace(base, b'"' + new.encode() + b'"')
            text = text.rstrip(b"\0")[:20 * 512].ljust(20 * 512, b"\0")
            if len(img.b) >= 512 + 20 * 512:
                img.b[512:512 + 20 * 512] = text


def main():
    out, mono, stream = sys.argv[1], sys.argv[2], sys.argv[3]
    cases = []

    def case(name, img, info, info_re, read, read_re, ext="vmdk"):
        path = os.path.join(out, name + "." + ext)
        if isinstance(img, Img):
            rename(img, name + "." + ext)
            img.save(path)
        else:
            with open(path, "w") as f:
                f.write(img)
        cases.append((name, path, info, info_re, read, read_re))

    def text_case(name, text, re):
        case(name, text, "fail", re, "fail", re)

    def hdr_case(name, img, re):
        case(name, img, "fail", re, "fail", re)

    m = Img(mono)
    gd = m.get("gd_offset") * 512
    gt = m.u32(gd) * 512
    size = len(m.b)

    # Header fields.
    hdr_case("bad-magic", Img(mono).set(magic=0x4B444D58),
             "control character|no VMDK magic")
    hdr_case("bad-version", Img(mono).set(version=7),
             "version 7 at offset 4 is not supported")
    hdr_case("grain-zero", Img(mono).set(grain=0),
             "grain size 0 sectors at offset 20 is not a power of two")
    hdr_case("grain-not-pow2", Img(mono).set(grain=96),
             "grain size 96 sectors at offset 20 is not a power of two")
    hdr_case("grain-huge", Img(mono).set(grain=1 << 40),
             "is not a power of two from 1 to")
    hdr_case("capacity-huge", Img(mono).set(capacity=1 << 60),
             "capacity [0-9]+ sectors at offset 12 is larger")
    hdr_case("gd-too-many", Img(mono).set(capacity=1 << 45, grain=1),
             "grain directory entries \\(at most")
    hdr_case("gtes-zero", Img(mono).set(num_gtes=0),
             "0 grain table entries per table at offset 44")
    hdr_case("gtes-huge", Img(mono).set(num_gtes=1 << 20),
             "grain table entries per table at offset 44")
    hdr_case("gd-past-eof", Img(mono).set(gd_offset=1 << 40),
             "grain directory at sector [0-9]+ .* lies outside the file")
    hdr_case("gd-entry-past-eof", Img(mono).u32(gd, 1 << 30),
             "grain directory entry 0 at offset 0x[0-9a-f]+ points past "
             "the end of the file")
    hdr_case("gd-entry-at-end", Img(mono).u32(gd, size // 512 - 1),
             "grain directory entry 0 at offset 0x[0-9a-f]+ points past "
             "the end of the file")
    hdr_case("desc-past-eof", Img(mono).set(desc_offset=1 << 40),
             "the descriptor at sector [0-9]+ .* runs past the end")
    hdr_case("desc-size-huge", Img(mono).set(desc_size=1 << 50),
             "descriptor size [0-9]+ sectors at offset 36")
    hdr_case("compress-unknown",
             Img(mono).set(flags=m.get("flags") | (1 << 16), compress=7),
             "compression algorithm 7 at offset 77 is not supported")
    cowd = Img(mono)
    cowd.b[0:4] = b"COWD"
    hdr_case("cowd", cowd, "COWD.*not supported")
    trunc = Img(mono)
    trunc.b = trunc.b[:300]
    hdr_case("truncated-header", trunc, "shorter than a sparse header")

    # Table entries: the open succeeds, reads through them fail.
    case("gte-past-eof", Img(mono).u32(gt, 1 << 28), "ok", "-", "fail",
         "grain table entry 0 of the grain table at offset 0x[0-9a-f]+ "
         "\\(grain 0\\) points past the end of the file")
    case("gte-into-metadata", Img(mono).u32(gt, 2), "ok", "-", "fail",
         "grain table entry 0 .* points into the metadata")

    # Streams.
    s = Img(stream)
    ssize = len(s.b)
    foot = ssize - 1024
    sgd = s.get("gd_offset", foot) * 512
    sgt = s.u32(sgd) * 512
    g0 = s.u32(sgt) * 512  # the marker of the first grain
    t = Img(stream)
    t.b = t.b[:ssize - 1024]
    hdr_case("stream-truncated", t,
             "no footer marker|end-of-stream marker|stream footer")
    t = Img(stream)
    struct.pack_into("<I", t.b, ssize - 512 + 12, 9)
    hdr_case("stream-no-eos", t, "no end-of-stream marker at offset")
    t = Img(stream).set(base=foot, gd_offset=GD_AT_END)
    hdr_case("stream-footer-gd-at-end", t,
             "footer's grain directory offset is also")
    t = Img(stream).set(base=foot, gd_offset=ssize // 512 + 100)
    hdr_case("stream-footer-gd-past-eof", t,
             "grain directory at sector [0-9]+ .* lies outside the file")
    t = Img(stream)
    struct.pack_into("<I", t.b, g0 + 8, 0x7FFFFFFF)
    case("grain-marker-size", t, "ok", "-", "fail",
         "grain marker at offset 0x[0-9a-f]+ \\(grain 0\\) has a bad size")
    t = Img(stream)
    struct.pack_into("<I", t.b, g0 + 8, 0)
    case("grain-marker-size-zero", t, "ok", "-", "fail",
         "grain marker at offset 0x[0-9a-f]+ \\(grain 0\\) has a bad size 0")
    t = Img(stream)
    struct.pack_into("<Q", t.b, g0, 999999)
    case("grain-marker-lba", t, "ok", "-", "fail",
         "grain marker at offset 0x[0-9a-f]+ is for sector 999999")
    t = Img(stream)
    n = struct.unpack_from("<I", t.b, g0 + 8)[0]
    t.b[g0 + 12 + 2:g0 + 12 + n] = b"\xff" * (n - 2)
    case("grain-no-inflate", t, "ok", "-", "fail",
         "compressed grain at offset 0x[0-9a-f]+ \\(grain 0, [0-9]+ bytes\\) "
         "does not inflate")
    t = Img(stream)
    t.b[g0 + 12 + 10:g0 + 12 + n] = bytes(n - 10)
    case("grain-cut-short", t, "ok", "-", "fail", "does not inflate")

    # Descriptors.
    flat = os.path.join(out, "data-flat.bin")
    with open(flat, "wb") as f:
        f.truncate(1 << 20)

    def desc(extents, ctype="monolithicFlat", extra=""):
        return ("# Disk DescriptorFile\nversion=1\nCID=1234abcd\n"
                "parentCID=ffffffff\ncreateType=\"%s\"\n%s\n"
                "# Extent description\n%s\n" % (ctype, extra, extents))

    text_case("desc-extent-absurd",
              desc('RW 99999999999999999999999 FLAT "data-flat.bin" 0'),
              "descriptor line 8 at offset 0x72: extent size is not")
    text_case("desc-extent-huge",
              desc('RW 9999999999999999 FLAT "data-flat.bin" 0'),
              "extent size [0-9]+ sectors is out of range")
    text_case("desc-extent-past-file",
              desc('RW 4096 FLAT "data-flat.bin" 0'),
              "extent 0 \\('.*data-flat.bin'\\): the file has 1048576 "
              "bytes, the descriptor needs 2097152")
    text_case("desc-offset-past-file",
              desc('RW 1024 FLAT "data-flat.bin" 2000'),
              "the file has 1048576 bytes, the descriptor needs 524288 "
              "from offset 1024000")
    text_case("desc-extent-sum",
              desc('RW 1000000000000000 ZERO\nRW 1000000000000000 ZERO'),
              "the extents add up to more than")
    text_case("desc-too-many-extents",
              desc("RW 1 ZERO\n" * 16385),
              "more than 16384 extents")
    text_case("desc-missing-file",
              desc('RW 2048 FLAT "no-such-flat.vmdk" 0'),
              "extent 0: .*no-such-flat.vmdk.*(No such file|cannot open)")
    text_case("desc-unknown-type", desc('RW 2048 WEIRD "data-flat.bin"'),
              "unknown extent type 'WEIRD'")
    text_case("desc-vmfssparse",
              desc('RW 2048 VMFSSPARSE "data-flat.bin"'),
              "VMFSSPARSE extents are not supported")
    text_case("desc-noaccess", desc('NOACCESS 2048 FLAT "data-flat.bin" 0'),
              "NOACCESS extents are not supported")
    text_case("desc-no-quote", desc('RW 2048 FLAT data-flat.bin 0'),
              "file name is missing")
    text_case("desc-open-quote", desc('RW 2048 FLAT "data-flat.bin 0'),
              "no closing quote")
    text_case("desc-no-extents", desc(""), "lists no extents")
    text_case("desc-version", desc('RW 2048 FLAT "data-flat.bin" 0')
              .replace("version=1", "version=9"),
              "descriptor version '9' is not supported")
    text_case("desc-create-type",
              desc('RW 2048 FLAT "data-flat.bin" 0', ctype="fullDevice"),
              "createType \"fullDevice\" is not supported")
    text_case("desc-no-create-type",
              desc('RW 2048 FLAT "data-flat.bin" 0')
              .replace('createType="monolithicFlat"', ""),
              "the descriptor has no createType")
    text_case("desc-bad-cid",
              desc('RW 2048 FLAT "data-flat.bin" 0').replace(
                  "CID=1234abcd", "CID=xyz"),
              "CID 'xyz' is not a 32-bit hex number")
    text_case("desc-parent",
              desc('RW 2048 FLAT "data-flat.bin" 0',
                   extra='parentFileNameHint="base.vmdk"'),
              "cannot open its parent: .*base.vmdk: cannot open")
    text_case("desc-parent-cid-only",
              desc('RW 2048 FLAT "data-flat.bin" 0').replace(
                  "parentCID=ffffffff", "parentCID=0badcafe"),
              "parentCID is 0badcafe but the descriptor names no "
              "parentFileNameHint")
    text_case("desc-parent-self",
              desc('RW 2048 FLAT "data-flat.bin" 0',
                   extra='parentFileNameHint="desc-parent-self.vmdk"'),
              "the backing chain loops back to this image")
    text_case("desc-garbage", desc('RW 2048 FLAT "data-flat.bin" 0')
              + "\x01\x02binary\n", "control character 0x01")
    text_case("desc-sparse-not-sparse",
              desc('RW 2048 SPARSE "data-flat.bin"',
                   ctype="twoGbMaxExtentSparse"),
              "shorter than a sparse header|bad magic 0x00000000")

    for c in cases:
        print("\t".join(c))


main()
